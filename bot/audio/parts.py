"""Cutting a recording into parts the API accepts: the limits a part must fit, where to cut
(in a silence near each limit), and the cuts themselves (packets copied, nothing re-encoded)."""

from __future__ import annotations

import asyncio
import math
import re
import secrets
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from bot.audio.probing import OVER_LIMIT, AudioInfo, probe
from bot.errors import AudioTooLong
from bot.ffmpeg import run as _run
from bot.ffmpeg import url as _url

_SILENCE_WINDOW = 0.2  # look for a silence in the last fifth of a part
_MIN_CUT_SILENCE = 0.3  # seconds of a silence that must lie in the window to cut in it
_SEEK_PREROLL = 5.0  # coarse seek this far before a cut, then drop packets up to it exactly
_SILENCE_EVENT = re.compile(r"silence_(start|end): (\S+)")
SILENCE_FILTER = "silencedetect=noise=-35dB:d=0.3"
Silence = tuple[float, float]


@dataclass(frozen=True)
class AudioPart:
    """One file to upload, and where it sits in the recording (seconds)."""

    path: Path
    filename: str
    start: float
    duration: float


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_seconds: float  # one request's
    total_seconds: float  # the whole recording's (MAX_AUDIO_SECONDS)

    def fit(self, size: int, duration: float) -> bool:
        return size <= self.max_bytes and duration <= self.max_seconds

    def check_total(self, seconds: float) -> None:
        if seconds > self.total_seconds:
            raise AudioTooLong(seconds, int(self.total_seconds))

    def cut(self) -> list[str]:
        """ffmpeg output options that stop a made file just past the whole recording's limit."""
        if math.isinf(self.total_seconds):
            return []
        return ["-t", f"{self.total_seconds + OVER_LIMIT:.3f}"]


def plan_cuts(duration: float, silences: Sequence[Silence], max_part_seconds: float) -> list[float]:
    """Cut times so no part is longer than max_part_seconds, in the middle of a silence if any.

    Greedy: each cut is at most max_part_seconds after the previous one, at the middle of the
    latest silence in the last fifth of that span (0.3 s of it at least), else at the limit.
    """
    if max_part_seconds <= 0:
        raise ValueError("max_part_seconds must be positive")
    cuts: list[float] = []
    previous = 0.0
    while duration - previous > max_part_seconds:
        target = previous + max_part_seconds
        earliest = target - max_part_seconds * _SILENCE_WINDOW
        # A silence only just begun at the limit would put the cut at a word's last sound.
        middles = [
            (max(start, earliest) + min(end, target)) / 2
            for start, end in silences
            if min(end, target) - max(start, earliest) >= _MIN_CUT_SILENCE
        ]
        previous = max(middles, default=target)
        cuts.append(previous)
    return cuts


async def split(
    src: Path, info: AudioInfo, workdir: Path, limits: Limits, silences: list[Silence] | None
) -> list[AudioPart]:
    """Cut an opus file into parts under both limits, copying packets (no re-encoding)."""
    assert info.duration is not None
    duration = info.duration
    bytes_per_second = info.size / duration
    # A copied cut is exact to an opus packet (20 ms), and a part's bitrate varies around the
    # average: margins on both, then measure, and cut shorter if a part still came out over.
    seconds_limit = limits.max_seconds - min(1.0, limits.max_seconds / 100)
    for share in (0.9, 0.75, 0.6):
        part_seconds = min(seconds_limit, limits.max_bytes * share / bytes_per_second)
        if part_seconds < 1:
            raise ValueError(f"cannot cut {bytes_per_second:.0f} bytes/s under {limits}")
        cuts = await _plan(src, duration, part_seconds, silences)
        parts = await _cut_all(src, [0.0, *cuts], [*cuts, None], workdir)
        if all(limits.fit(size, part.duration) for part, size in parts):
            return [part for part, _ in parts]
        remove(*(part.path for part, _ in parts))
    raise RuntimeError(f"could not split {src.name} under {limits}")


async def _plan(
    src: Path, duration: float, part_seconds: float, silences: list[Silence] | None
) -> list[float]:
    """plan_cuts; when the silences are not known yet, decode only where a cut may fall.

    Each cut lies in the last fifth of a part: listening there alone decodes a fifth of the
    recording rather than all of it (seconds saved per hour of audio).
    """
    if silences is not None:
        return plan_cuts(duration, silences, part_seconds)
    window = part_seconds * _SILENCE_WINDOW
    found: list[Silence] = []
    cuts: list[float] = []
    while duration - (cuts[-1] if cuts else 0.0) > part_seconds:
        target = (cuts[-1] if cuts else 0.0) + part_seconds
        found += await detect_silences(src, target - window, window)
        # The windows do not overlap: the cuts planned so far stay as they were.
        cuts = plan_cuts(duration, found, part_seconds)[: len(cuts) + 1]
    return cuts


async def detect_silences(src: Path, start: float, length: float) -> list[Silence]:
    """The silences in [start, start + length) of src, in src's own seconds."""
    silences = SilenceLog()
    # An input -ss decodes from just before `start` and drops what precedes it: timestamps
    # then count from `start`.
    args = ["-loglevel", "info", "-nostats", "-ss", f"{start:.6f}", "-t", f"{length:.6f}"]
    args += ["-i", _url(src), "-map", "0:a:0", "-af", SILENCE_FILTER, "-f", "null", "-"]
    await _run("ffmpeg", args, on_line=silences.feed)
    end = start + length
    return [(start + s, min(start + e, end)) for s, e in silences.silences()]


class SilenceLog:
    """Collects silencedetect's `silence_start: T` / `silence_end: T` lines from stderr."""

    def __init__(self) -> None:
        self._found: list[Silence] = []
        self._start: float | None = None

    def feed(self, line: str) -> None:
        for kind, value in _SILENCE_EVENT.findall(line):
            with suppress(ValueError):
                if kind == "start":
                    self._start = max(0.0, float(value))
                elif self._start is not None:
                    self._found.append((self._start, float(value)))
                    self._start = None

    def silences(self) -> list[Silence]:
        # Older ffmpeg does not close a silence that lasts to the end of the file.
        tail = [] if self._start is None else [(self._start, math.inf)]
        return self._found + tail


async def _cut_all(
    src: Path, starts: list[float], ends: list[float | None], workdir: Path
) -> list[tuple[AudioPart, int]]:
    """Cut [start, end) ranges, two ffmpeg at a time; returns each part and its size."""
    gate = asyncio.Semaphore(2)
    prefix = secrets.token_hex(4)
    width = len(str(len(starts)))
    outs = [workdir / f"{prefix}-part{i + 1:0{width}d}.ogg" for i in range(len(starts))]

    async def cut(i: int) -> tuple[AudioPart, int]:
        async with gate:
            await _run("ffmpeg", _cut_args(src, starts[i], ends[i], outs[i]))
        measured = await probe(outs[i])
        part = AudioPart(
            outs[i], f"audio-{i + 1:0{width}d}.ogg", starts[i], measured.duration or 0.0
        )
        return part, measured.size

    try:
        # Not a TaskGroup: one failure should not surface as an ExceptionGroup.
        results = await asyncio.gather(
            *(cut(i) for i in range(len(starts))), return_exceptions=True
        )
    except BaseException:  # cancelled: gather has waited for every ffmpeg to be killed
        remove(*outs)
        raise
    errors = [result for result in results if isinstance(result, BaseException)]
    if errors:
        remove(*outs)
        raise errors[0]
    return [result for result in results if not isinstance(result, BaseException)]


def _cut_args(src: Path, start: float, end: float | None, out: Path) -> list[str]:
    # With -c copy an input -ss lands on an ogg page before the cut (up to ~1 s early) and
    # keeps that lead-in; an output -ss drops packets up to the cut exactly but reads from
    # the start. So: a coarse input seek a little early, then an exact output seek.
    coarse = max(0.0, start - _SEEK_PREROLL)
    args = ["-loglevel", "error", "-ss", f"{coarse:.6f}", "-i", _url(src)]
    args += ["-ss", f"{start - coarse:.6f}"]
    if end is not None:
        args += ["-t", f"{end - start:.6f}"]
    return [*args, "-map", "0:a:0", "-c", "copy", "-f", "ogg", "-y", _url(out)]


def remove(*paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
