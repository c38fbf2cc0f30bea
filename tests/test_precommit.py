"""The pre-commit hooks run exactly the checks of `make lint typecheck`."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def make_recipe(target: str) -> list[str]:
    """The commands of a Makefile target, with $(BIN) spelled out."""
    lines = (ROOT / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(rf"{target}:", line))
    recipe = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip().replace("$(BIN)", ".venv/bin"))
    return recipe


def hook_entries() -> list[str]:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    return [hook["entry"] for repo in config["repos"] for hook in repo["hooks"]]


def test_every_lint_and_typecheck_command_is_a_hook() -> None:
    wanted = [*make_recipe("lint"), *make_recipe("typecheck")]
    assert wanted == [".venv/bin/ruff check .", ".venv/bin/ruff format --check .", ".venv/bin/mypy"]
    entries = hook_entries()
    # pre-commit passes the changed files where make passes ".": the same checks.
    assert [w.removesuffix(" .") for w in wanted] == [e for e in entries if "uv lock" not in e]


def test_mypy_checks_the_whole_project_like_make_does() -> None:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    (mypy,) = [h for r in config["repos"] for h in r["hooks"] if h["id"] == "mypy"]
    assert mypy["pass_filenames"] is False
