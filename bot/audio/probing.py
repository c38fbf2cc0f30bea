"""What a file holds, read with ffprobe and ffmpeg: its container, codec and duration (probe),
the seconds its packets really hold (measure), and whether the API takes it as it is."""

from __future__ import annotations

import asyncio
import functools
import json
import math
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.errors import AudioTooLong, CorruptAudio, UnsupportedAudio
from bot.ffmpeg import run as _run
from bot.ffmpeg import url as _url

PROBE_TIMEOUT = 30.0
_PROBE_ENTRIES = (
    "format=format_name,duration,bit_rate"
    ":stream=codec_type,codec_name,duration,bit_rate:stream_disposition=attached_pic"
)
# Made files stop this far past MAX_AUDIO_SECONDS: enough to tell "longer than the limit".
OVER_LIMIT = 1.0
_OUT_TIME = re.compile(r"^out_time_us=(\d+)$", re.MULTILINE)


@dataclass(frozen=True)
class AudioInfo:
    """What ffprobe says about a file: its container, its first audio stream, its size."""

    format_name: str
    audio_codec: str
    duration: float | None
    has_video: bool
    size: int
    bit_rate: int | None


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


async def measure(path: Path, limit: float = math.inf, *, timeout: float = PROBE_TIMEOUT) -> float:  # noqa: ASYNC109
    """Seconds of audio in the first audio track, read from its packets (nothing decoded).

    A container's duration is its own claim: this reads what is there, up to just past `limit`,
    and raises AudioTooLong beyond it (a 10-hour file is not read for 10 hours).
    """
    args = ["-loglevel", "error", "-nostats", "-progress", "pipe:1"]
    if not math.isinf(limit):
        args += ["-t", f"{limit + OVER_LIMIT:.3f}"]
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


# Metadata calls on local temporary files: quick enough to make from the event loop.
def _size(path: Path) -> int:
    return path.stat().st_size
