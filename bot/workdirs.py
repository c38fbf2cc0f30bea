"""Temporary work directories: made only when something is written, removed on exit, and those
left by killed runs removed at start (their names carry the process that made them)."""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

_WORKDIR_PREFIX = "transcribot-"
_WORKDIR_NAME = re.compile(r"transcribot-(\d+)\.(\d+)-")


@functools.cache
def _process_tag() -> str:
    """pid.start-time: names this process's work directories, told apart from a dead one's
    even when a new process gets the same pid (pid 1 in every container)."""
    return f"{os.getpid()}.{_start_time(os.getpid())}"


def _start_time(pid: int) -> int | None:
    """When the process started (clock ticks since boot), None if there is no such process;
    0 for a live one where there is no /proc to ask."""
    if not Path("/proc/self/stat").exists():
        return 0 if _alive(pid) else None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def remove_leftovers() -> int:
    """Remove the work directories of runs killed before they could (kill -9, OOM): at start.

    Only those of processes that are gone: another replica on this machine keeps its own.
    """
    removed = 0
    for path in Path(tempfile.gettempdir()).glob(_WORKDIR_PREFIX + "*"):
        match = _WORKDIR_NAME.match(path.name)
        if match is None or not path.is_dir():
            continue
        if _start_time(int(match[1])) == int(match[2]):
            continue  # its process is running
        shutil.rmtree(path, ignore_errors=True)
        removed += 1
    if removed:
        log.info("removed %d temporary directories left by killed runs", removed)
    return removed


class LazyDir:
    """A temporary directory made only when something is written to it, removed on exit.

    Most voice notes go from memory to the API untouched: they should not pay for a mkdir and an
    rmtree each.
    """

    def __init__(self) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def path(self) -> Path:
        if self._tmp is None:
            prefix = f"{_WORKDIR_PREFIX}{_process_tag()}-"
            self._tmp = tempfile.TemporaryDirectory(prefix=prefix)
        return Path(self._tmp.name)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def __enter__(self) -> LazyDir:
        return self

    def __exit__(self, *_: object) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
