"""Is an upload audio, and how long is it: magic bytes and container headers first, ffprobe last."""

from __future__ import annotations

import asyncio
import tempfile


class UnreadableAudio(Exception):
    """ffprobe could not read the file."""


def sniff_container(head: bytes) -> str | None:
    """The container the first bytes announce, or None if they are not audio or video."""
    if head.startswith(b"OggS"):
        return "ogg"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"  # an ID3 tag or an MPEG audio (or ADTS) frame sync
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "wav"
    if head.startswith(b"fLaC"):
        return "flac"
    if head[4:8] == b"ftyp":
        return "mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "webm"  # EBML: webm or matroska
    if head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"):
        return "mpeg"
    return None


def header_duration(data: bytes, container: str) -> float | None:
    """The duration when the container says it cheaply (Ogg Opus/Vorbis, WAV), else None."""
    try:
        if container == "ogg":
            return _ogg_duration(data)
        if container == "wav":
            return _wav_duration(data)
    except (IndexError, ValueError, ZeroDivisionError):
        return None
    return None


def _ogg_duration(data: bytes) -> float | None:
    # The first page carries the codec header; the last page's granule position counts samples.
    first_packet = 27 + data[26]
    codec = data[first_packet : first_packet + 16]
    if codec.startswith(b"OpusHead"):
        rate, pre_skip = 48_000, int.from_bytes(codec[10:12], "little")  # Opus always 48 kHz
    elif codec.startswith(b"\x01vorbis"):
        rate, pre_skip = int.from_bytes(codec[12:16], "little"), 0
    else:
        return None
    last_page = data.rfind(b"OggS", max(0, len(data) - 65_536))  # an Ogg page is < 64 KiB
    if last_page < 0 or last_page + 14 > len(data):
        return None
    granule = int.from_bytes(data[last_page + 6 : last_page + 14], "little", signed=True)
    if granule < 0:
        return None
    return max(0.0, (granule - pre_skip) / rate)


def _wav_duration(data: bytes) -> float | None:
    pos, byte_rate = 12, 0
    while pos + 8 <= len(data):
        chunk, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        if chunk == b"fmt ":
            byte_rate = int.from_bytes(data[pos + 16 : pos + 20], "little")
        elif chunk == b"data":
            size = min(size, len(data) - pos - 8)  # streamed WAVs write 0xFFFFFFFF here
            return size / byte_rate if byte_rate else None
        pos += 8 + size + (size & 1)
    return None


async def ffprobe_duration(data: bytes, suffix: str) -> float | None:
    """Seconds as ffprobe reads them (None if it gives none); UnreadableAudio if it cannot."""
    with tempfile.NamedTemporaryFile(suffix=suffix) as file:
        file.write(data)
        file.flush()
        process = await asyncio.create_subprocess_exec(
            "ffprobe",
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "default=noprint_wrappers=1:nokey=1",
            file.name,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, _ = await process.communicate()
    if process.returncode != 0:
        raise UnreadableAudio
    try:
        return float(out.decode().strip())
    except ValueError:
        return None
