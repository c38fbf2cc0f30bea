"""One check's answer: what was checked, whether it is fine, and what was seen or what to do."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Result:
    name: str
    ok: bool
    detail: str  # when ok: what was found (versions, counts); else: what is wrong and what to do

    @property
    def line(self) -> str:
        return f"{'✓' if self.ok else '✗'} {self.name}: {self.detail}"


def passed(name: str, detail: str) -> Result:
    return Result(name, True, detail)


def failed(name: str, detail: str) -> Result:
    return Result(name, False, detail)
