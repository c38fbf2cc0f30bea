"""The benchmark's audio: a real 30 s voice note and a ~20 MB mp3, made once with ffmpeg.

Every note must be a distinct file (the fake API's transcript, and so the per-note match,
depends on the bytes), so the files carry a fixed-width marker in their tags that `variant`
rewrites; the audio itself is the same.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

CACHE = Path(__file__).resolve().parent / ".cache"
MARKER = b"bench-000000"  # in a tag: "bench-" and six digits, rewritten per note
NOTE_SECONDS = 30
NOTE_BITRATE = "32k"  # Telegram voice notes: mono opus, 24-32 kbit/s
# Under the cloud Bot API's 20 MiB getFile limit: 128 kbit/s CBR for 1275 s is ~19.5 MiB.
BIG_SECONDS = 1275
BIG_BITRATE = "128k"

_SPEECH = (
    "This is a voice note recorded for the benchmark of the transcription bot. "
    "It talks about the weather, the meeting on Thursday and the train that was late again. "
    "Please remember to buy bread, milk and coffee on the way home, and call your sister "
    "about the weekend. The numbers are one, two, three, four, five, six, seven, eight. "
)


@dataclass(frozen=True)
class Media:
    """The files the scenarios send, and how the updates describe them."""

    note: Path  # ogg/opus voice note
    big: Path  # mp3 "audio" file just under 20 MiB


def ensure_media(cache: Path = CACHE) -> Media:
    """Make the files if the cache lacks them (needs ffmpeg; espeak-ng for real speech)."""
    if shutil.which("ffmpeg") is None:
        raise RuntimeError("ffmpeg is not installed (make system-deps)")
    cache.mkdir(parents=True, exist_ok=True)
    speech = cache / "speech.wav"
    if not speech.exists():
        _make_speech(speech)
    note = cache / f"note-{NOTE_SECONDS}s-{NOTE_BITRATE}.ogg"
    if not note.exists():
        _ffmpeg(
            *("-i", str(speech), "-af", f"apad=whole_dur={NOTE_SECONDS}", "-t", str(NOTE_SECONDS)),
            *("-ac", "1", "-ar", "48000", "-c:a", "libopus", "-b:a", NOTE_BITRATE),
            *("-application", "voip", "-metadata", f"comment={MARKER.decode()}"),
            *("-f", "ogg", str(note)),
        )
    big = cache / f"big-{BIG_SECONDS}s-{BIG_BITRATE}.mp3"
    if not big.exists():
        # Loop the speech rather than encode silence: an mp3 of a real signal, made in seconds.
        _ffmpeg(
            *("-stream_loop", "-1", "-i", str(speech), "-t", str(BIG_SECONDS)),
            *("-ac", "2", "-c:a", "libmp3lame", "-b:a", BIG_BITRATE),
            *("-id3v2_version", "3", "-metadata", f"comment={MARKER.decode()}"),
            *("-f", "mp3", str(big)),
        )
    for path in (note, big):
        if MARKER not in path.read_bytes()[:65_536]:
            raise RuntimeError(f"{path}: ffmpeg did not write the marker tag; delete the cache")
    return Media(note=note, big=big)


def _make_speech(out: Path) -> None:
    """A few seconds of synthetic speech (espeak-ng), or a tone if it is not installed."""
    raw = out.with_suffix(".raw.wav")
    source: tuple[str, ...]
    if shutil.which("espeak-ng") is not None:
        subprocess.run(["espeak-ng", "-s", "160", "-w", str(raw), _SPEECH], check=True)
        source = ("-i", str(raw))
    else:
        source = ("-f", "lavfi", "-i", f"sine=frequency=220:duration={NOTE_SECONDS}")
    _ffmpeg(*source, "-ac", "1", "-ar", "48000", "-c:a", "pcm_s16le", str(out))
    raw.unlink(missing_ok=True)


def _ffmpeg(*args: str) -> None:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args],
        check=True,
        timeout=300,
    )


def variant(data: bytes, index: int) -> bytes:
    """The same audio with the marker set to `index`: a distinct, valid file."""
    at = data.find(MARKER, 0, 65_536)
    if at < 0:
        raise ValueError("the file has no marker tag")
    digits = f"{index % 1_000_000:06d}".encode()
    out = bytearray(data)
    out[at + len(MARKER) - 6 : at + len(MARKER)] = digits
    if data.startswith(b"OggS"):
        _fix_ogg_crc(out, data.rfind(b"OggS", 0, at))
    return bytes(out)


def _fix_ogg_crc(data: bytearray, page: int) -> None:
    """Recompute the checksum of the Ogg page at `page` (ffmpeg checks it when reading)."""
    segments = data[page + 26]
    body = sum(data[page + 27 : page + 27 + segments])
    end = page + 27 + segments + body
    data[page + 22 : page + 26] = b"\0\0\0\0"
    crc = 0
    for byte in data[page:end]:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _CRC_TABLE[((crc >> 24) ^ byte) & 0xFF]
    data[page + 22 : page + 26] = crc.to_bytes(4, "little")


def _crc_table() -> tuple[int, ...]:
    # Ogg's CRC-32: polynomial 0x04C11DB7, not reflected, initial value 0, no final xor.
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else r << 1
            r &= 0xFFFFFFFF
        table.append(r)
    return tuple(table)


_CRC_TABLE = _crc_table()
