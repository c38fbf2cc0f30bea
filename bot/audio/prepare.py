"""A file into what the API accepts: as it is, its audio track copied out, or converted to
ogg/opus; then split into parts when it is still too long or too big (bot/audio/parts.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import secrets
from collections.abc import Callable, Sequence
from pathlib import Path

from bot.audio.parts import SILENCE_FILTER, AudioPart, Limits, Silence, SilenceLog, remove, split
from bot.audio.probing import AudioInfo, api_upload_name, measure, probe
from bot.errors import CorruptAudio
from bot.ffmpeg import run as _run
from bot.ffmpeg import url as _url

# The API refuses files over 25 MB; keep a margin for rounding and the multipart envelope.
MAX_UPLOAD_BYTES = 24 * 1024 * 1024
# The gpt-4o transcribe models refuse about 1500 s per request (users' reports, not documented).
MAX_PART_SECONDS = 1400.0
PREPARE_TIMEOUT = 900.0
# Speech stays clear at 32 kbit/s mono opus: 2 hours is ~29 MB. Constrained VBR keeps the
# size close to the bitrate, so a part's size can be planned before it is made.
_OPUS_OUTPUT = (
    *("-ac", "1", "-c:a", "libopus", "-b:a", "32k", "-vbr", "constrained"),
    *("-application", "voip", "-f", "ogg"),
)
# Codecs that fit an accepted container as they are: (extension, ffmpeg muxer).
_COPY_TARGETS: dict[str, tuple[str, str]] = {
    "aac": (".m4a", "mp4"),
    "alac": (".m4a", "mp4"),
    "mp3": (".mp3", "mp3"),
    "opus": (".ogg", "ogg"),
    "vorbis": (".ogg", "ogg"),
    "flac": (".flac", "flac"),
}


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
    limits = Limits(max_bytes, max_seconds, max_total_seconds)
    async with asyncio.timeout(timeout):
        return await _prepare(src, info, workdir, limits, None, False)


async def _prepare(
    src: Path,
    info: AudioInfo,
    workdir: Path,
    limits: Limits,
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
            return await split(src, info, workdir, limits, silences)
    elif (target := _COPY_TARGETS.get(info.audio_codec)) is not None:
        try:
            extracted = await _extract(src, workdir, limits, *target)
        except CorruptAudio:
            pass  # the muxer refused the stream as it is (rare): re-encode it instead
        else:
            return await _prepare_made(extracted, workdir, limits, None)
    converted, silences = await _convert_to_opus(src, workdir, limits)
    if owned:
        remove(src)
    return await _prepare_made(converted, workdir, limits, silences)


async def _prepare_made(
    path: Path, workdir: Path, limits: Limits, silences: list[Silence] | None
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
            remove(path)


# -map_metadata -1: a stranger's tags (a 1 MB ID3 comment...) stay out of what we make.
async def _extract(src: Path, workdir: Path, limits: Limits, extension: str, muxer: str) -> Path:
    """Copy the audio track out of a video or an unaccepted container, without re-encoding."""
    out = _new_path(workdir, extension)
    args = ["-loglevel", "error", "-i", _url(src), "-map", "0:a:0", "-map_metadata", "-1"]
    args += ["-c:a", "copy", *limits.cut()]
    await _make(out, [*args, "-f", muxer, "-y", _url(out)])
    return out


async def _convert_to_opus(src: Path, workdir: Path, limits: Limits) -> tuple[Path, list[Silence]]:
    """Re-encode the first audio track to ogg/opus, finding silences in the same pass."""
    out = _new_path(workdir, ".ogg")
    silences = SilenceLog()
    args = ["-loglevel", "info", "-nostats", "-i", _url(src), "-map", "0:a:0"]
    args += ["-map_metadata", "-1", *limits.cut(), "-af", SILENCE_FILTER, *_OPUS_OUTPUT]
    await _make(out, [*args, "-y", _url(out)], on_line=silences.feed)
    return out, silences.silences()


def _new_path(workdir: Path, extension: str) -> Path:
    return workdir / f"{secrets.token_hex(4)}{extension}"


async def _make(
    out: Path, args: Sequence[str], *, on_line: Callable[[str], None] | None = None
) -> None:
    """Run ffmpeg to write out, deleting a half-written out if it fails or is cancelled."""
    try:
        await _run("ffmpeg", args, on_line=on_line)
    except BaseException:
        remove(out)
        raise
