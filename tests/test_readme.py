"""README and .env.example stay true: every setting and every dependency is explained."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from bot.config import Settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def section(title: str) -> str:
    """README's text under `title` (a heading line), up to the next heading of any level."""
    start = README.index(f"{title}\n")
    following = re.search(r"^#{2,3} ", README[start + len(title) :], re.MULTILINE)
    end = start + len(title) + following.start() if following else len(README)
    return README[start:end]


def variable(name: str) -> str:
    field = Settings.model_fields[name]
    return (field.validation_alias if isinstance(field.validation_alias, str) else name).upper()


def test_every_setting_is_in_readmes_configuration_and_in_env_example() -> None:
    env_example = (ROOT / ".env.example").read_text()
    missing = [
        variable(name)
        for name in Settings.model_fields
        if f"`{variable(name)}`" not in README or f"{variable(name)}=" not in env_example
    ]
    assert missing == []


def _package(requirement: str) -> str:
    return re.split(r"[<>=~!\[; ]", requirement, maxsplit=1)[0].lower()


def test_every_dependency_has_a_row_saying_why_it_is_there() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    rows = {}
    table = section("### Dependencies, and why each")
    for row in re.findall(r"^\| ([^|]+?) \| (.+) \|$", table, re.MULTILINE):
        if row == ("package", "why"):
            continue  # a table's heading
        for name in re.findall(r"[A-Za-z][\w.-]*", row[0].split("(")[0]):
            rows[name.lower()] = row[1]
    missing = [_package(r) for r in wanted if _package(r) not in rows]
    assert missing == []
    assert all(len(why.split()) >= 4 for why in rows.values()), rows
