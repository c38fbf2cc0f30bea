"""The few formats the API takes that are recognisable from their bytes alone, without ffmpeg.

A voice note (ogg/opus) or a WAV file says what it is in its first bytes and how long it lasts
in its headers: such a file can go to the API as it is, with no ffprobe and no copy,
and still be checked against the duration limits. Everything else is for ffprobe to judge.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass
from pathlib import Path

HEAD_BYTES = 4096  # enough for a WAV's chunks before "data" (ffmpeg writes a LIST first)
TAIL_BYTES = 65536  # an Ogg page is under 64 KiB: the last one starts in here

_OPUS_RATE = 48_000  # Opus granule positions always count 48 kHz samples
# Samples per frame by an Opus packet's TOC config (RFC 6716, 3.1): SILK 10/20/40/60 ms,
# hybrid 10/20 ms, CELT 2.5/5/10/20 ms.
_FRAME_SAMPLES = (*(480, 960, 1920, 2880) * 3, *(480, 960) * 2, *(120, 240, 480, 960) * 4)

_MAX_PACKET_SAMPLES = 5760  # 120 ms: the longest an Opus packet lasts

Whole = bytes | mmap.mmap
# (format tag, bits per sample) of the WAVs the API reads: integer PCM and 32-bit float.
_WAV_ACCEPTED = frozenset({(1, 8), (1, 16), (1, 24), (1, 32), (3, 32)})


@dataclass(frozen=True)
class Sniffed:
    """An upload extension the API accepts, and the duration when the headers tell it."""

    extension: str
    duration: float | None


def sniff_file(path: Path) -> Sniffed | None:
    """sniff() for a file on disk, mapped rather than read (Ogg is walked page by page)."""
    size = path.stat().st_size
    if size == 0:
        return None
    with path.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return sniff(data[:HEAD_BYTES], data[-TAIL_BYTES:], size, data)


def sniff(head: bytes, tail: bytes, size: int, whole: Whole | None = None) -> Sniffed | None:
    """What the first and last bytes of a file of `size` bytes say, or None if nothing sure.

    Given the whole file, an Ogg Opus stream's length is counted from its packets.
    """
    try:
        if head.startswith(b"OggS"):
            return _ogg(head, tail, whole)
        if head.startswith(b"fLaC"):
            # STREAMINFO's sample count is the file's own claim, and FLAC squeezes a silence
            # to almost nothing: a short claim could hide hours. ffmpeg reads its frames.
            return Sniffed("flac", None)
        if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
            return _wav(head, size)
    except (IndexError, ValueError):
        return None
    if head.startswith(b"ID3") or _mpeg_layer3_sync(head):
        return Sniffed("mp3", None)  # VBR: only decoding (ffprobe) gives its duration
    return None


def _mpeg_layer3_sync(head: bytes) -> bool:
    # 11 sync bits, then layer III (ADTS aac has the same sync with layer 0).
    return len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and (head[1] >> 1) & 3 == 1


def _ogg(head: bytes, tail: bytes, whole: Whole | None) -> Sniffed | None:
    """Ogg Opus or Vorbis with one logical stream. Opus: samples counted by the last page, and
    given the whole file, by its packets (the last page's count is the file's claim). Vorbis:
    no length here; a packet's length depends on the stream's setup header, so ffmpeg reads
    the packets (the last page alone could claim a second for an hour)."""
    first_packet = 27 + head[26]
    codec = head[first_packet : first_packet + 16]
    if not codec.startswith((b"OpusHead", b"\x01vorbis")):
        return None  # Ogg FLAC, Speex, a video first...: ffprobe decides
    segments = head[26]
    second_page = 27 + segments + sum(head[27 : 27 + segments])
    if head[second_page : second_page + 4] == b"OggS" and head[second_page + 5] & 0x02:
        return None  # a second stream begins here (a video?): ffprobe decides
    if not codec.startswith(b"OpusHead"):
        return Sniffed("ogg", None)  # Vorbis
    rate, pre_skip = _OPUS_RATE, int.from_bytes(codec[10:12], "little")
    serial = head[14:18]
    last_page = tail.rfind(b"OggS")
    if last_page < 0 or tail[last_page + 14 : last_page + 18] != serial:
        return Sniffed("ogg", None)  # another stream last (a video?) or a damaged end
    granule = int.from_bytes(tail[last_page + 6 : last_page + 14], "little", signed=True)
    if whole is not None:
        counted = opus_samples(whole, serial)
        if counted is None:
            return Sniffed("ogg", None)  # chained or multiplexed: ffprobe decides
        # The last page may trim what its last packet decodes (RFC 7845, 4.5): up to one
        # packet more is an honest file's end, more than that a false claim.
        if counted > granule + _MAX_PACKET_SAMPLES:
            granule = counted
    if granule < pre_skip or rate <= 0:
        return Sniffed("ogg", None)
    return Sniffed("ogg", (granule - pre_skip) / rate)


def opus_samples(data: Whole, serial: bytes) -> int | None:
    """48 kHz samples in the audio packets of Ogg Opus stream `serial`, from each packet's
    TOC byte (RFC 6716, 3.1): what a decoder outputs before trimming. None when another
    stream is in the file. A truncated last page ends the count, as it ends decoding."""
    pos, packets, samples, size = 0, 0, 0, len(data)
    pending = False  # the page's first packet began on the previous page (counted there)
    while pos + 27 <= size:
        if data[pos : pos + 4] != b"OggS" or data[pos + 14 : pos + 18] != serial:
            return None
        body = pos + 27 + data[pos + 26]
        if body > size:
            break
        start = body
        for lacing in data[pos + 27 : body]:
            if not pending and packets >= 2 and start < size:  # after OpusHead, OpusTags
                samples += _packet_samples(data, start, size)
            start += lacing
            pending = lacing == 255
            packets += not pending
        pos = start
    return samples


def _packet_samples(data: Whole, start: int, size: int) -> int:
    toc = data[start]
    code = toc & 3
    if code == 3:
        frames = data[start + 1] & 0x3F if start + 1 < size else 0
    else:
        frames = 1 if code == 0 else 2
    return frames * _FRAME_SAMPLES[toc >> 3]


def _wav(head: bytes, size: int) -> Sniffed | None:
    """PCM or float WAV (what the API reads); the duration from the data chunk's size."""
    pos, byte_rate, kind = 12, 0, (0, 0)
    while pos + 8 <= len(head):
        chunk, length = head[pos : pos + 4], int.from_bytes(head[pos + 4 : pos + 8], "little")
        if chunk == b"fmt ":
            tag = int.from_bytes(head[pos + 8 : pos + 10], "little")
            channels = int.from_bytes(head[pos + 10 : pos + 12], "little")
            rate = int.from_bytes(head[pos + 12 : pos + 16], "little")
            bits = int.from_bytes(head[pos + 22 : pos + 24], "little")
            # The header's own byte rate field is not what a decoder uses: a large one would
            # make hours look like seconds. Samples, channels and width are.
            byte_rate = rate * channels * ((bits + 7) // 8)
            kind = (tag, bits)
        elif chunk == b"data":
            if kind not in _WAV_ACCEPTED or not byte_rate:
                return None  # ADPCM, GSM, 64-bit float, extensible...: ffprobe decides
            # A streamed WAV leaves the size at 0 or 0xFFFFFFFF: the file's end bounds it.
            length = min(length or size, size - pos - 8)
            return Sniffed("wav", length / byte_rate)
        pos += 8 + length + (length & 1)
    return None
