"""py-spy on the bot while a scenario runs: a flamegraph, raw stacks, and where samples go."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import signal
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

RATE = 250  # samples per second
_LIMIT_SECONDS = 900  # py-spy stops by itself after this, whatever happens to us
# "function (path/to/module.py)" as py-spy writes a frame with --nolineno.
_FRAME = re.compile(r"^(?P<function>.*) \((?P<path>[^()]*)\)$")
# Which part of the stack a frame belongs to, by the path py-spy shows (first match wins).
_AREAS = (
    ("bot", re.compile(r"^bot/")),
    ("python-telegram-bot", re.compile(r"^telegram/")),
    ("httpx/httpcore", re.compile(r"^(httpx|httpcore|h11|anyio|sniffio)/")),
    ("aiohttp", re.compile(r"^(aiohttp|multidict|yarl)/")),
    ("sqlite3", re.compile(r"^(sqlite3/|bot/store/sqlite)")),
    ("json", re.compile(r"^json/")),
    ("logging", re.compile(r"^logging/")),
    ("temporary files (tempfile, shutil)", re.compile(r"^(tempfile|shutil)\.py")),
    ("asyncio/uvloop", re.compile(r"^(asyncio|uvloop)/")),
    ("threading/queue", re.compile(r"^(threading|queue)\.py|^concurrent/")),
)


def _py_spy() -> str:
    beside = Path(sys.executable).parent / "py-spy"
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if found is None:
        raise RuntimeError("py-spy is not installed: .venv/bin/pip install py-spy")
    return found


class Profiler:
    """Two py-spy samplers: a flamegraph and raw stacks.

    py-spy pauses the bot for each sample (tens of µs): with --nonblocking half the stacks came
    back torn, missing their outer frames, which made the inclusive shares meaningless. Not
    --gil: a thread in a syscall (rmtree's unlinks, a socket send) has let the GIL go but is
    still busy, and the event loop's thread is the one whose time counts.
    """

    def __init__(self, pid: int, out: Path) -> None:
        self.pid = pid
        self.svg = out.with_suffix(".svg")
        self.raw = out.with_suffix(".stacks.txt")
        self._procs: list[asyncio.subprocess.Process] = []

    async def start(self) -> None:
        self.svg.parent.mkdir(parents=True, exist_ok=True)
        for fmt, path, extra in (("flamegraph", self.svg, []), ("raw", self.raw, ["--threads"])):
            self._procs.append(
                await asyncio.create_subprocess_exec(
                    *(_py_spy(), "record", "--pid", str(self.pid), "--rate", str(RATE)),
                    *("--nolineno", "--duration", str(_LIMIT_SECONDS)),
                    *("--format", fmt, "--output", str(path), *extra),
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                )
            )
        await asyncio.sleep(0.5)  # attached before the load starts

    async def stop(self) -> None:
        """SIGINT makes py-spy write its file; SIGKILL if it takes too long."""
        for proc in self._procs:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
        for proc in self._procs:
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()


@dataclass
class Hotspots:
    """Sample counts. `threads` covers every thread; the rest covers the event loop's thread,
    whose time is what a note costs (the store's SQLite thread mostly waits, or is in SQLite)."""

    samples: int = 0
    loop_samples: int = 0
    threads: Counter[str] = field(default_factory=Counter)
    inclusive: Counter[str] = field(default_factory=Counter)  # samples with the frame anywhere
    leaf: Counter[str] = field(default_factory=Counter)  # samples with the frame on top
    area_inclusive: Counter[str] = field(default_factory=Counter)
    area_leaf: Counter[str] = field(default_factory=Counter)
    # The innermost frame of our own code: which of the bot's calls the work was done for.
    bot_caller: Counter[str] = field(default_factory=Counter)

    def share(self, count: int, of: int | None = None) -> float:
        total = self.loop_samples if of is None else of
        return 100.0 * count / total if total else 0.0

    def sections(self) -> tuple[tuple[str, Counter[str]], ...]:
        return (
            ("by thread", self.threads),
            ("by library, inclusive (the stack contains it)", self.area_inclusive),
            ("by library, self (top of the stack)", self.area_leaf),
            ("by the bot's own function closest to the top of the stack", self.bot_caller),
            ("functions, inclusive", self.inclusive),
            ("functions, self", self.leaf),
        )

    def as_dict(self, top: int = 25) -> dict[str, object]:
        found: dict[str, object] = {
            "samples": self.samples,
            "event_loop_samples": self.loop_samples,
            "rate_hz": RATE,
        }
        for title, counter in self.sections():
            total = self.samples if counter is self.threads else self.loop_samples
            found[title] = [
                (name, round(self.share(n, total), 1)) for name, n in counter.most_common(top)
            ]
        return found


def analyse(raw: Path) -> Hotspots:
    """Count py-spy's raw stacks (`thread (id): name;frame;...;frame count`, outermost first)."""
    found = Hotspots()
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread = frames[0].partition(": ")[2] if frames[0].startswith("thread (") else "?"
        frames = [f for f in frames if not f.startswith(("thread (", "process "))]
        if not frames:
            continue
        found.samples += count
        if any("bot/store/sqlite" in f for f in frames):
            thread = f"{thread} (the store's SQLite thread)" if thread != "MainThread" else thread
        found.threads[thread] += count
        if thread != "MainThread":
            continue
        found.loop_samples += count
        for name in {_name(f) for f in frames}:
            found.inclusive[name] += count
        for area in {_area(f) for f in frames} - {"other"}:  # "other" holds runpy: always 100%
            found.area_inclusive[area] += count
        found.leaf[_name(frames[-1])] += count
        found.area_leaf[_area(frames[-1])] += count
        ours = [f for f in frames if _area(f) == "bot" and "bot/__main__.py" not in f]
        found.bot_caller[_name(ours[-1]) if ours else "(no frame of bot/)"] += count
    return found


def _name(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    return f"{match['function']} ({match['path']})" if match else frame.strip()


def _area(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    path = match["path"] if match else ""
    for area, pattern in _AREAS:
        if pattern.search(path):
            return area
    return "other"


def render(found: Hotspots, top: int = 15) -> str:
    lines = [
        f"{found.samples} samples of the bot's busy threads (py-spy, {RATE} Hz); below the first "
        f"section, the {found.loop_samples} of the event loop's thread (MainThread) only"
    ]
    for title, counter in found.sections():
        total = found.samples if counter is found.threads else found.loop_samples
        lines.append(f"\n  {title}:")
        for name, count in counter.most_common(top):
            lines.append(f"    {found.share(count, total):5.1f}%  {name}")
    return "\n".join(lines)
