"""Real recordings for the tests, made with ffmpeg (speech with espeak-ng) the first time asked.

A MediaLibrary lives for the test session: each file is built once, on first use, so a run of
a few tests builds only what they need. Also here: sending a recording to the bot as Telegram
would, reading its answer, and reading what the fake API received (its streams, where in a
long recording a part starts, how loud a part's edges are).
"""

from __future__ import annotations

import array
import itertools
import json
import os
import random
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from tests.conftest import RunningBot, next_message_id, next_update_id
from tests.conftest import eventually as eventually  # re-exported for the media tests
from tests.fakes import FakeTelegram, media_update
from tests.fakes.telegram_models import StoredMessage

needs_media_tools = pytest.mark.skipif(
    any(shutil.which(tool) is None for tool in ("ffmpeg", "ffprobe", "espeak-ng")),
    reason="needs ffmpeg, ffprobe and espeak-ng (make system-deps)",
)

SPEECH = "Hello. This is a short recording for the transcription bot. Thank you for listening."
DECODE_RATE = 8000  # Hz: enough to tell tones of a few hundred Hz apart
_LOUD = 1000  # of 32767: lavfi's sine is at 1/8 of full scale, silence near 0

# Output options per format: (file name, ffmpeg options after the inputs).
_AUDIO: dict[str, tuple[str, tuple[str, ...]]] = {
    "voice": ("voice.oga", ("-ac", "1", "-c:a", "libopus", "-b:a", "24k", "-f", "ogg")),
    "mp3": ("talk.mp3", ("-c:a", "libmp3lame", "-b:a", "64k")),
    "m4a": ("talk.m4a", ("-c:a", "aac", "-b:a", "64k", "-f", "ipod")),
    "wav": ("talk.wav", ("-ar", "16000", "-c:a", "pcm_s16le")),
    "flac": (
        "talk.flac",
        (
            "-c:a",
            "flac",
        ),
    ),
    "opus": ("talk.opus", ("-c:a", "libopus", "-b:a", "32k", "-f", "ogg")),
    "vorbis": ("talk.ogg", ("-c:a", "libvorbis", "-q:a", "2")),
    "aac": ("talk.aac", ("-c:a", "aac", "-b:a", "64k", "-f", "adts")),
    "wma": ("talk.wma", ("-c:a", "wmav2", "-b:a", "64k", "-f", "asf")),
    "aiff": ("talk.aiff", ("-c:a", "pcm_s16be", "-f", "aiff")),
}
_H264 = ("-c:v", "libx264", "-preset", "ultrafast", "-b:v", "1M", "-pix_fmt", "yuv420p")
_VIDEO: dict[str, tuple[str, str, tuple[str, ...]]] = {
    # name: (file name, picture size, codec options)
    "video_note": ("round.mp4", "240x240", (*_H264, "-c:a", "aac", "-b:a", "48k")),
    "mp4": ("clip.mp4", "320x180", (*_H264, "-c:a", "aac", "-b:a", "48k")),
    "mov": ("clip.mov", "320x180", (*_H264, "-c:a", "aac", "-b:a", "48k", "-f", "mov")),
    "webm": (
        "clip.webm",
        "320x180",
        (
            "-c:v",
            "libvpx",
            "-b:v",
            "1M",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
            "-c:a",
            "libopus",
            "-b:a",
            "48k",
        ),
    ),
    "mkv": ("clip.mkv", "320x180", (*_H264, "-c:a", "ac3", "-b:a", "96k", "-f", "matroska")),
}


def ffmpeg(*args: str | Path) -> None:
    command = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    subprocess.run([*command, *map(str, args)], check=True)


class MediaLibrary:
    """Files built on first use into `directory`, then read from there."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _made(self, name: str, make: Callable[[Path], object]) -> Path:
        path = self.directory / name
        if not path.exists():
            partial = path.with_name("partial-" + name)
            make(partial)
            partial.rename(path)
        return path

    def speech(self) -> Path:
        """A few seconds of a synthetic voice saying SPEECH (wav, 22 kHz mono)."""
        return self._made(
            "speech.wav", lambda out: _run(["espeak-ng", "-s", "160", "-w", str(out), SPEECH])
        )

    def audio(self, kind: str) -> Path:
        """The speech as one of the formats in _AUDIO (a voice note: "voice")."""
        name, options = _AUDIO[kind]
        return self._made(name, lambda out: ffmpeg("-i", self.speech(), *options, out))

    def video(self, kind: str) -> Path:
        """A moving test picture with the speech as its sound ("video_note", "mp4", ...)."""
        name, size, options = _VIDEO[kind]
        # Grain keeps the encoders from squeezing the picture to nothing: video weighs most.
        picture = ("-f", "lavfi", "-i", f"testsrc=size={size}:rate=15,noise=alls=30:allf=t")
        return self._made(
            name,
            lambda out: ffmpeg(*picture, "-i", self.speech(), *options, "-shortest", out),
        )

    def silent_video(self) -> Path:
        picture = ("-f", "lavfi", "-i", "testsrc=size=160x90:rate=10:duration=2")
        return self._made("silent.mp4", lambda out: ffmpeg(*picture, *_H264, out))

    def padded_speech(self, seconds: int, kind: str) -> Path:
        """The speech, then silence up to `seconds`, as a voice note or an mp3."""
        name, options = _AUDIO[kind]
        pad = ("-af", f"apad=whole_dur={seconds}")
        return self._made(
            f"padded-{seconds}s-{name}",
            lambda out: ffmpeg("-i", self.speech(), *pad, *options, out),
        )

    def tone_wav(self, seconds: int, rate: int = 16000) -> Path:
        """Mono 16-bit PCM (32 kB a second at 16 kHz): big files, quick to make."""
        tone = ("-f", "lavfi", "-i", f"sine=frequency=440:sample_rate={rate}:duration={seconds}")
        return self._made(
            f"tone-{seconds}s-{rate}.wav", lambda out: ffmpeg(*tone, "-c:a", "pcm_s16le", out)
        )

    def corrupt(self) -> Path:
        """Random bytes that no demuxer recognises (checked: ffprobe refuses them)."""
        data = random.Random(20240401).randbytes(48_000)
        return self._made("corrupt.oga", lambda out: out.write_bytes(data))

    def sectioned(self, sections: list[int], section_seconds: int) -> Path:
        """A long ogg/opus recording: one steady tone per section, each in 20 s units of
        17 s of tone and 3 s of silence. Where a part of it starts tells its position.

        Built from one encoded unit per section, copied over and over (no re-encoding):
        seconds to make, even for hours.
        """
        name = f"sections-{'-'.join(map(str, sections))}-{section_seconds}s.ogg"
        return self._made(name, lambda out: self._concat_units(out, sections, section_seconds))

    def _concat_units(self, out: Path, sections: list[int], section_seconds: int) -> None:
        units = []
        for frequency in sections:
            unit = self.directory / f"unit-{frequency}.ogg"
            if not unit.exists():
                tone = f"sine=frequency={frequency}:sample_rate=16000:duration=17"
                silence = "anullsrc=sample_rate=16000:channel_layout=mono:duration=3"
                ffmpeg(
                    *("-f", "lavfi", "-i", tone, "-f", "lavfi", "-i", silence),
                    *("-filter_complex", "[0][1]concat=n=2:v=0:a=1"),
                    *("-ac", "1", "-c:a", "libopus", "-b:a", "16k", "-application", "voip"),
                    unit,
                )
            units += [unit] * (section_seconds // 20)
        listing = out.with_suffix(".txt")
        listing.write_text("".join(f"file '{unit}'\n" for unit in units))
        ffmpeg("-f", "concat", "-safe", "0", "-i", listing, "-c", "copy", "-f", "ogg", out)

    # --- hostile and unlucky files ----------------------------------------------------------

    def live_webm(self, seconds: int) -> Path:
        """The speech looped for `seconds`, as a browser's MediaRecorder writes webm: a stream,
        so no Duration element (and no Cues) for anyone to read its length from."""

        def make(out: Path) -> None:
            loop = ("-stream_loop", "-1", "-i", str(self.speech()), "-t", str(seconds))
            opus = ("-ac", "1", "-c:a", "libopus", "-b:a", "24k", "-live", "1", "-f", "webm")
            _to_pipe(out, [*loop, *opus, "pipe:1"])

        return self._made(f"live-{seconds}s.webm", make)

    def silence(self, hours: int, container: str) -> Path:
        """`hours` of silence as opus in "ogg" (its last page tells its length) or a streamed
        "webm" (nothing tells): 120 ms packets copied over and over, ~10 MB for 10 hours."""
        unit = self.directory / f"silence-minute.{container}"
        if not unit.exists():
            minute = "anullsrc=sample_rate=48000:channel_layout=mono:duration=60"
            options = ("-b:a", "6k", "-frame_duration", "120", "-application", "voip")
            ffmpeg("-f", "lavfi", "-i", minute, "-c:a", "libopus", *options, "-f", container, unit)
        loop = ["-stream_loop", str(hours * 60 - 1), "-i", str(unit), "-c", "copy"]
        if container == "webm":
            return self._made(
                f"silence-{hours}h.webm",
                lambda out: _to_pipe(out, [*loop, "-live", "1", "-f", "webm", "pipe:1"]),
            )
        return self._made(f"silence-{hours}h.ogg", lambda out: ffmpeg(*loop, "-f", "ogg", out))

    def repeated_frame_mp3(self, size: int) -> Path:
        """A second of mp3 whose Info header claims that second, then one 72-byte frame
        repeated up to `size` bytes (hours): the header's byte count is set to the real size,
        so ffprobe believes the claim."""

        def make(out: Path) -> None:
            tone = ("-f", "lavfi", "-i", "sine=frequency=440:sample_rate=8000:duration=1")
            lame = ("-c:a", "libmp3lame", "-b:a", "8k", "-id3v2_version", "0")
            head = self.directory / "one-second.mp3"
            ffmpeg(*tone, *lame, head)
            raw = self.directory / "raw-frames.mp3"
            ffmpeg(*tone, *lame, "-write_xing", "0", "-f", "mp3", raw)
            frame = _first_mp3_frame(raw.read_bytes())
            data = bytearray(head.read_bytes())
            data += frame * ((size - len(data)) // len(frame))
            info = data.find(b"Info") if b"Info" in data else data.find(b"Xing")
            data[info + 12 : info + 16] = len(data).to_bytes(4, "big")  # the bytes field
            out.write_bytes(bytes(data))

        return self._made(f"repeated-frame-{size}.mp3", make)

    def tagged_mp3(self, tag_bytes: int) -> Path:
        """The speech as mp3 behind an ID3v2.3 comment of `tag_bytes` control characters
        (each one a 6-byte escape in ffprobe's JSON)."""

        def make(out: Path) -> None:
            text = bytes(i % 31 + 1 for i in range(tag_bytes))
            body = b"\x00eng\x00" + text
            frame = b"COMM" + len(body).to_bytes(4, "big") + b"\x00\x00" + body
            size = len(frame)
            syncsafe = bytes((size >> shift) & 0x7F for shift in (21, 14, 7, 0))
            out.write_bytes(b"ID3\x03\x00\x00" + syncsafe + frame + self.audio("mp3").read_bytes())

        return self._made(f"tagged-{tag_bytes}.mp3", make)

    def lying_header(self, seconds: int, kind: str) -> Path:
        """`seconds` of speech and silence as a "wav" whose byte rate field is 100 times too
        high, or a "flac" whose STREAMINFO counts one second of samples: both say ~1 s."""
        data = bytearray(self.padded_speech(seconds, kind).read_bytes())
        if kind == "wav":
            at = data.find(b"fmt ") + 16  # fmt chunk: tag, channels, rate, then byte rate
            claimed = int.from_bytes(data[at : at + 4], "little") * 100
            data[at : at + 4] = claimed.to_bytes(4, "little")
        else:
            packed = int.from_bytes(data[18:26], "big")  # rate 20 bits ... samples 36 bits
            rate = packed >> 44
            data[18:26] = ((packed & ~((1 << 36) - 1)) | rate).to_bytes(8, "big")
        return self._made(f"lying-{seconds}s.{kind}", lambda out: out.write_bytes(bytes(data)))

    def lying_voice(self, seconds: int, kind: str = "voice") -> Path:
        """`seconds` of speech and silence as a voice note (or Ogg Vorbis: "vorbis") whose
        last Ogg page (the one a player reads the length from) claims one second; the page's
        checksum is made right."""
        data = bytearray(self.padded_speech(seconds, kind).read_bytes())
        last = data.rfind(b"OggS")
        header = 27 + data[26]  # the first packet: OpusHead or Vorbis's identification
        if kind == "vorbis":  # granules count samples at the stream's own rate
            one_second = int.from_bytes(data[header + 12 : header + 16], "little")
        else:  # 48 kHz samples, after the pre-skip
            one_second = int.from_bytes(data[header + 10 : header + 12], "little") + 48_000
        data[last + 6 : last + 14] = one_second.to_bytes(8, "little")
        data[last + 22 : last + 26] = bytes(4)
        data[last + 22 : last + 26] = _ogg_crc(bytes(data[last:])).to_bytes(4, "little")
        name = f"lying-{seconds}s.{'ogg' if kind == 'vorbis' else 'oga'}"
        return self._made(name, lambda out: out.write_bytes(bytes(data)))

    def truncated(self, kind: str) -> Path:
        """The first half of a recording in one of the _AUDIO formats (an m4a's index is at
        its end: nothing can read the half)."""
        source = self.audio(kind)
        data = source.read_bytes()
        return self._made(
            f"half-{source.name}", lambda out: out.write_bytes(data[: len(data) // 2])
        )


def _ogg_crc(page: bytes) -> int:
    """Ogg's page checksum: CRC-32, polynomial 0x04C11DB7, not reflected, no final xor."""
    crc = 0
    for byte in page:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7 if crc & 0x80000000 else crc << 1) & 0xFFFFFFFF
    return crc


def _first_mp3_frame(data: bytes) -> bytes:
    """The bytes up to the second frame sync of a raw mp3 stream."""
    i = 1
    while not (data[i] == 0xFF and data[i + 1] & 0xE0 == 0xE0):
        i += 1
    return data[:i]


def _to_pipe(out: Path, args: list[str]) -> None:
    """ffmpeg writing to a pipe (not seekable: nothing is filled in afterwards), saved to out."""
    command = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args]
    out.write_bytes(subprocess.run(command, check=True, stdout=subprocess.PIPE).stdout)


def _run(command: list[str]) -> None:
    subprocess.run(command, check=True, capture_output=True)


# --- sending it to the bot, and its answer ----------------------------------------------

USER = 4242
_FOLDERS = {
    "voice": "voice",
    "audio": "music",
    "video_note": "video_notes",
    "video": "videos",
    "document": "documents",
}


async def send(
    bot: RunningBot,
    tg: FakeTelegram,
    data: bytes,
    kind: str,
    *,
    suffix: str = ".oga",
    duration: int = 4,
    mime_type: str | None = None,
    file_name: str | None = None,
    declare_size: bool = True,
    file_size: int | None = None,
    extra: dict[str, Any] | None = None,
    folder: str = "",
) -> int:
    """Deliver a message carrying `data` as Telegram would; returns the message's id."""
    n = next_message_id()
    file_path = f"{folder}/{_FOLDERS[kind]}/file_{n}{suffix}".lstrip("/")
    file = tg.add_file(data, file_path=file_path, file_size=file_size)
    tg.add_message(USER, n)
    update = media_update(
        next_update_id(),
        kind,
        chat_id=USER,
        user_id=USER,
        message_id=n,
        file=file,
        duration=duration,
        mime_type=mime_type,
        file_name=file_name,
    )
    message = update["message"]
    if not declare_size:
        del message[kind]["file_size"]
    message.update(extra or {})
    response = await bot.deliver(update)
    assert response.status_code == 200
    return n


def reply_to(tg: FakeTelegram, message_id: int) -> StoredMessage | None:
    """The bot's answer to a message: the placeholder it edits."""
    return next((m for m in tg.bot_messages(USER) if m.reply_to == message_id), None)


async def outcome(tg: FakeTelegram, message_id: int, timeout: float = 15) -> str:
    """The text the placeholder ends with (progress notes start with 🎙; answers do not)."""

    def final() -> str | None:
        message = reply_to(tg, message_id)
        text = message.text if message else None
        return text if text and not text.startswith("🎙") else None

    await tg.wait_for(lambda: final() is not None, timeout)
    text = final()
    assert text is not None
    return text


def child_processes() -> set[int]:
    """Pids whose parent is this process (the bot's ffmpeg runs; zombies included)."""
    children = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == os.getpid():
            children.add(int(stat.parent.name))
    return children


# --- what the fake API received ----------------------------------------------------------


class Stream(NamedTuple):
    kind: str  # "audio", "video"
    codec: str


def streams_of(data: bytes, workdir: Path) -> list[Stream]:
    """The streams ffprobe finds in an upload (attached pictures count as video)."""
    path = _saved(data, workdir)
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(path)],
        check=True,
        capture_output=True,
    ).stdout
    return [Stream(s["codec_type"], s["codec_name"]) for s in json.loads(out)["streams"]]


def duration_of(path: Path) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path],
        check=True,
        capture_output=True,
    ).stdout
    return float(out)


def start_frequency(data: bytes, workdir: Path) -> float:
    """The pitch of the first steady tone in an upload: its position in a sectioned()."""
    samples = _decode(_saved(data, workdir), ("-t", "25"))
    block = DECODE_RATE // 100  # 10 ms
    loud = [
        max(map(abs, samples[i : i + block]), default=0) > _LOUD
        for i in range(0, len(samples), block)
    ]
    # The longest loud run: a unit's tone, not a silence or an edge the cut left.
    best_start, best_length, start = 0, 0, None
    for i, is_loud in enumerate([*loud, False]):
        if is_loud and start is None:
            start = i
        elif not is_loud and start is not None:
            if i - start > best_length:
                best_start, best_length = start, i - start
            start = None
    run = samples[(best_start + 1) * block : (best_start + best_length - 1) * block]
    crossings = sum(1 for a, b in itertools.pairwise(run) if (a < 0) != (b < 0))
    return crossings / 2 / (len(run) / DECODE_RATE)


def edge_peaks(data: bytes, workdir: Path, seconds: float = 0.1) -> tuple[int, int]:
    """The loudest sample in the first and in the last `seconds` of an upload."""
    path = _saved(data, workdir)
    head = _decode(path, ("-t", str(seconds)))
    tail = _decode(path, (), before=("-sseof", f"-{seconds}"))
    return max(map(abs, head), default=0), max(map(abs, tail), default=0)


def _saved(data: bytes, workdir: Path) -> Path:
    path = workdir / f"upload-{hash(data) & 0xFFFFFFFF:08x}"
    if not path.exists():
        path.write_bytes(data)
    return path


def _decode(path: Path, after: tuple[str, ...], before: tuple[str, ...] = ()) -> array.array[int]:
    command = ["ffmpeg", "-nostdin", "-loglevel", "error", *before, "-i", str(path), *after]
    pcm = subprocess.run(
        [*command, "-ac", "1", "-ar", str(DECODE_RATE), "-f", "s16le", "-"],
        check=True,
        capture_output=True,
    ).stdout
    samples = array.array("h")
    samples.frombytes(pcm)
    return samples
