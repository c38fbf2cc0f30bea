"""Probe, extract, convert and split audio with ffmpeg so the transcription API accepts it."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import math
import re
import secrets
import shutil
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.errors import AudioTooLong, CorruptAudio, UnsupportedAudio
from bot.ffmpeg import run as _run
from bot.ffmpeg import url as _url

# The API refuses files over 25 MB; keep a margin for rounding and the multipart envelope.
MAX_UPLOAD_BYTES = 24 * 1024 * 1024
# The gpt-4o transcribe models refuse about 1500 s per request (users' reports, not documented).
MAX_PART_SECONDS = 1400.0
PROBE_TIMEOUT = 30.0
PREPARE_TIMEOUT = 900.0

# Speech stays clear at 32 kbit/s mono opus: 2 hours is ~29 MB. Constrained VBR keeps the
# size close to the bitrate, so a part's size can be planned before it is made.
_OPUS_OUTPUT = (
    *("-ac", "1", "-c:a", "libopus", "-b:a", "32k", "-vbr", "constrained"),
    *("-application", "voip", "-f", "ogg"),
)
_SILENCE_FILTER = "silencedetect=noise=-35dB:d=0.3"
_SILENCE_WINDOW = 0.2  # look for a silence in the last fifth of a part
_MIN_CUT_SILENCE = 0.3  # seconds of a silence that must lie in the window to cut in it
_SEEK_PREROLL = 5.0  # coarse seek this far before a cut, then drop packets up to it exactly
_SILENCE_EVENT = re.compile(r"silence_(start|end): (\S+)")

_PROBE_ENTRIES = (
    "format=format_name,duration,bit_rate"
    ":stream=codec_type,codec_name,duration,bit_rate:stream_disposition=attached_pic"
)
# Made files stop this far past MAX_AUDIO_SECONDS: enough to tell "longer than the limit".
_OVER_LIMIT = 1.0
_OUT_TIME = re.compile(r"^out_time_us=(\d+)$", re.MULTILINE)

Silence = tuple[float, float]


@dataclass(frozen=True)
class AudioInfo:
    """What ffprobe says about a file: its container, its first audio stream, its size."""

    format_name: str
    audio_codec: str
    duration: float | None
    has_video: bool
    size: int
    bit_rate: int | None


@dataclass(frozen=True)
class AudioPart:
    """One file to upload, and where it sits in the recording (seconds)."""

    path: Path
    filename: str
    start: float
    duration: float


@dataclass(frozen=True)
class _Limits:
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
        return ["-t", f"{self.total_seconds + _OVER_LIMIT:.3f}"]


# The API's formats, as (ffprobe format_name, audio codecs) -> extension. Telegram's voice
# notes are ".oga": ogg/opus that must be named ".ogg", since a proxy may not know ".oga".
_ACCEPTED: dict[str, tuple[frozenset[str], str]] = {
    "ogg": (frozenset({"opus", "vorbis", "flac"}), ".ogg"),
    "mp3": (frozenset({"mp3"}), ".mp3"),
    "wav": (frozenset({"pcm_u8", "pcm_s16le", "pcm_s24le", "pcm_s32le", "pcm_f32le"}), ".wav"),
    "flac": (frozenset({"flac"}), ".flac"),
    "mov,mp4,m4a,3gp,3g2,mj2": (frozenset({"aac", "mp3", "alac"}), ".m4a"),
    # ffprobe names both matroska and webm so; webm only holds opus or vorbis audio.
    "matroska,webm": (frozenset({"opus", "vorbis"}), ".webm"),
    "mpeg": (frozenset({"mp2", "mp3"}), ".mpeg"),
}
# Codecs that fit an accepted container as they are: (extension, ffmpeg muxer).
_COPY_TARGETS: dict[str, tuple[str, str]] = {
    "aac": (".m4a", "mp4"),
    "alac": (".m4a", "mp4"),
    "mp3": (".mp3", "mp3"),
    "opus": (".ogg", "ogg"),
    "vorbis": (".ogg", "ogg"),
    "flac": (".flac", "flac"),
}


@functools.cache
def ffmpeg_available() -> bool:
    """Whether both ffmpeg and ffprobe are on PATH (checked once)."""
    return shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None


def check_duration(info: AudioInfo, limit_seconds: int) -> None:
    """Raise AudioTooLong when the recording is known to be longer than the limit."""
    if info.duration is not None and info.duration > limit_seconds:
        raise AudioTooLong(info.duration, limit_seconds)


def api_upload_name(info: AudioInfo, stem: str = "audio") -> str | None:
    """The filename to upload the file under as it is, or None if it must be converted."""
    codecs, extension = _ACCEPTED.get(info.format_name, (frozenset[str](), ""))
    if info.has_video or info.audio_codec not in codecs:
        return None
    return stem + extension


# A `timeout` argument (not only the caller's asyncio.timeout) so each call has a sane bound.
async def probe(path: Path, *, timeout: float = PROBE_TIMEOUT) -> AudioInfo:  # noqa: ASYNC109
    """Read the real format from the bytes; raise CorruptAudio or UnsupportedAudio if unusable."""
    size = _size(path)
    if size == 0:
        raise CorruptAudio("the file is empty")
    # Only the entries used: the whole -show_format JSON carries every tag, and a 1 MB tag of
    # control characters comes out as ~6 MB of escapes.
    args = ("-hide_banner", "-loglevel", "error", "-show_entries", _PROBE_ENTRIES, "-of", "json")
    async with asyncio.timeout(timeout):
        out = await _run("ffprobe", [*args, _url(path)], capture=True)
    try:
        data = json.loads(out)
    except ValueError:
        raise CorruptAudio("ffprobe gave unreadable output") from None
    return _audio_info(data, size)


def _audio_info(data: dict[str, Any], size: int) -> AudioInfo:
    streams: list[dict[str, Any]] = data.get("streams") or []
    if not streams:
        raise CorruptAudio("no streams found")
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    if audio is None:
        raise UnsupportedAudio("no audio stream")
    if not audio.get("codec_name"):
        raise UnsupportedAudio("unknown audio codec")
    container: dict[str, Any] = data.get("format") or {}
    # Cover art in mp3/m4a is a video stream flagged attached_pic: not a video.
    has_video = any(
        s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic")
        for s in streams
    )
    return AudioInfo(
        format_name=str(container.get("format_name", "")),
        audio_codec=str(audio["codec_name"]),
        duration=_positive(container.get("duration")) or _positive(audio.get("duration")),
        has_video=has_video,
        size=size,
        bit_rate=_int(container.get("bit_rate")) or _int(audio.get("bit_rate")),
    )


def _positive(value: object) -> float | None:
    try:
        number = float(str(value))
    except ValueError:
        return None
    return number if math.isfinite(number) and number > 0 else None


def _int(value: object) -> int | None:
    number = _positive(value)
    return None if number is None else int(number)


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


async def measure(path: Path, limit: float = math.inf, *, timeout: float = PROBE_TIMEOUT) -> float:  # noqa: ASYNC109
    """Seconds of audio in the first audio track, read from its packets (nothing decoded).

    A container's duration is its own claim: this reads what is there, up to just past `limit`,
    and raises AudioTooLong beyond it (a 10-hour file is not read for 10 hours).
    """
    args = ["-loglevel", "error", "-nostats", "-progress", "pipe:1"]
    if not math.isinf(limit):
        args += ["-t", f"{limit + _OVER_LIMIT:.3f}"]
    args += ["-i", _url(path), "-map", "0:a:0", "-c", "copy", "-f", "null", "-"]
    async with asyncio.timeout(timeout):
        out = await _run("ffmpeg", args, capture=True)
    times = _OUT_TIME.findall(out.decode(errors="replace"))
    seconds = int(times[-1]) / 1e6 if times else 0.0
    if seconds <= 0:
        raise CorruptAudio("no audio could be read")
    if seconds > limit:
        raise AudioTooLong(seconds, int(limit))
    return seconds


async def prepare_parts(
    src: Path,
    info: AudioInfo,
    workdir: Path,
    *,
    max_bytes: int = MAX_UPLOAD_BYTES,
    max_seconds: float = MAX_PART_SECONDS,
    max_total_seconds: float = math.inf,
    timeout: float = PREPARE_TIMEOUT,  # noqa: ASYNC109
) -> list[AudioPart]:
    """The files to upload for src, in order, each under both limits.

    An accepted file under the limits is returned as it is, once its packets say how long it
    really is. Otherwise the audio is extracted or converted into workdir (stopping just past
    max_total_seconds), and split near silences when it is still too long or too big.
    Raises AudioTooLong past max_total_seconds, measured; TimeoutError after timeout seconds
    (ffmpeg is killed).
    """
    limits = _Limits(max_bytes, max_seconds, max_total_seconds)
    async with asyncio.timeout(timeout):
        return await _prepare(src, info, workdir, limits, None, False)


async def _prepare(
    src: Path,
    info: AudioInfo,
    workdir: Path,
    limits: _Limits,
    silences: list[Silence] | None,
    owned: bool,
) -> list[AudioPart]:
    if info.duration is not None:
        limits.check_total(info.duration)  # what it says is too long already
    name = api_upload_name(info)
    if name is not None and (duration := info.duration) is not None:
        if limits.fit(info.size, duration) and not owned:
            # A stranger's file may hold more than it says: what its packets hold counts.
            duration = max(duration, await measure(src, limits.total_seconds))
            info = dataclasses.replace(info, duration=duration)
        if limits.fit(info.size, duration):
            return [AudioPart(src, name, 0.0, duration)]
        if info.audio_codec == "opus":
            return await _split(src, info, workdir, limits, silences)
    elif (target := _COPY_TARGETS.get(info.audio_codec)) is not None:
        try:
            extracted = await _extract(src, workdir, limits, *target)
        except CorruptAudio:
            pass  # the muxer refused the stream as it is (rare): re-encode it instead
        else:
            return await _prepare_made(extracted, workdir, limits, None)
    converted, silences = await _convert_to_opus(src, workdir, limits)
    if owned:
        _remove(src)
    return await _prepare_made(converted, workdir, limits, silences)


async def _prepare_made(
    path: Path, workdir: Path, limits: _Limits, silences: list[Silence] | None
) -> list[AudioPart]:
    """Carry on with a file made here, deleting it unless it is itself the part."""
    parts: list[AudioPart] = []
    try:
        info = await probe(path)
        if info.duration is None:
            raise CorruptAudio("no audio could be decoded")
        parts = await _prepare(path, info, workdir, limits, silences, True)
        return parts
    finally:
        if all(part.path != path for part in parts):
            _remove(path)


# -map_metadata -1: a stranger's tags (a 1 MB ID3 comment...) stay out of what we make.
async def _extract(src: Path, workdir: Path, limits: _Limits, extension: str, muxer: str) -> Path:
    """Copy the audio track out of a video or an unaccepted container, without re-encoding."""
    out = _new_path(workdir, extension)
    args = ["-loglevel", "error", "-i", _url(src), "-map", "0:a:0", "-map_metadata", "-1"]
    args += ["-c:a", "copy", *limits.cut()]
    await _make(out, [*args, "-f", muxer, "-y", _url(out)])
    return out


async def _convert_to_opus(src: Path, workdir: Path, limits: _Limits) -> tuple[Path, list[Silence]]:
    """Re-encode the first audio track to ogg/opus, finding silences in the same pass."""
    out = _new_path(workdir, ".ogg")
    silences = _SilenceLog()
    args = ["-loglevel", "info", "-nostats", "-i", _url(src), "-map", "0:a:0"]
    args += ["-map_metadata", "-1", *limits.cut(), "-af", _SILENCE_FILTER, *_OPUS_OUTPUT]
    await _make(out, [*args, "-y", _url(out)], on_line=silences.feed)
    return out, silences.silences()


async def _detect_silences(src: Path, start: float, length: float) -> list[Silence]:
    """The silences in [start, start + length) of src, in src's own seconds."""
    silences = _SilenceLog()
    # An input -ss decodes from just before `start` and drops what precedes it: timestamps
    # then count from `start`.
    args = ["-loglevel", "info", "-nostats", "-ss", f"{start:.6f}", "-t", f"{length:.6f}"]
    args += ["-i", _url(src), "-map", "0:a:0", "-af", _SILENCE_FILTER, "-f", "null", "-"]
    await _run("ffmpeg", args, on_line=silences.feed)
    end = start + length
    return [(start + s, min(start + e, end)) for s, e in silences.silences()]


class _SilenceLog:
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


async def _split(
    src: Path, info: AudioInfo, workdir: Path, limits: _Limits, silences: list[Silence] | None
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
        _remove(*(part.path for part, _ in parts))
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
        found += await _detect_silences(src, target - window, window)
        # The windows do not overlap: the cuts planned so far stay as they were.
        cuts = plan_cuts(duration, found, part_seconds)[: len(cuts) + 1]
    return cuts


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
        _remove(*outs)
        raise
    errors = [result for result in results if isinstance(result, BaseException)]
    if errors:
        _remove(*outs)
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


# Metadata calls on local temporary files: quick enough to make from the event loop.
def _size(path: Path) -> int:
    return path.stat().st_size


def _remove(*paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def _new_path(workdir: Path, extension: str) -> Path:
    return workdir / f"{secrets.token_hex(4)}{extension}"


async def _make(
    out: Path, args: Sequence[str], *, on_line: Callable[[str], None] | None = None
) -> None:
    """Run ffmpeg to write out, deleting a half-written out if it fails or is cancelled."""
    try:
        await _run("ffmpeg", args, on_line=on_line)
    except BaseException:
        _remove(out)
        raise
