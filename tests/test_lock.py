"""uv.lock pins every dependency with hashes, and agrees with pyproject.toml."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _locked_packages() -> list[dict[str, Any]]:
    packages = tomllib.loads((ROOT / "uv.lock").read_text())["package"]
    assert isinstance(packages, list)
    return packages


def test_every_locked_package_has_a_version_and_hashes() -> None:
    for package in _locked_packages():
        if package["name"] == "transcribot":
            continue  # the project itself, installed from this tree
        assert package.get("version"), package["name"]
        files = [package.get("sdist"), *package.get("wheels", [])]
        hashes = [f["hash"] for f in files if isinstance(f, dict)]
        assert hashes, f"{package['name']} has no file with a hash"
        assert all(h.startswith("sha256:") for h in hashes), package["name"]


def test_the_lock_covers_every_dependency_named_in_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    locked = {str(p["name"]) for p in _locked_packages()}
    for requirement in wanted:
        name = requirement.split(";")[0].split("[")[0]
        for stop in "<>=~! ":
            name = name.split(stop)[0]
        assert name.lower().replace("_", "-") in locked, requirement


def _uv() -> str | None:
    beside = Path(sys.executable).parent / "uv"
    return str(beside) if beside.exists() else shutil.which("uv")


def test_uv_says_the_lock_matches_pyproject() -> None:
    uv = _uv()
    if uv is None:
        pytest.skip("uv is not installed (make test installs it into .venv)")
    done = subprocess.run(
        [uv, "lock", "--check", "--offline"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_the_uv_that_installs_the_lock_is_pinned_with_hashes() -> None:
    lines = (ROOT / "requirements-uv.txt").read_text().splitlines()
    pins = [line for line in lines if line.startswith("uv==")]
    assert len(pins) == 1
    assert sum("--hash=sha256:" in line for line in lines) >= 2
