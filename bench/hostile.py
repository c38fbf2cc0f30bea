"""The hostile and unlucky files of the chaos soak, made with tests.media_fixtures.

Each is sent as a note of its own. Those that cannot be read or are too long must get one
clear answer and cost nothing; the others (a streamed WebM with no duration, a 1 MB tag) are
transcribed and paid for what they hold.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.media_fixtures import MediaLibrary, ffmpeg

MB = 1024 * 1024
CACHE = Path(__file__).resolve().parent / ".cache" / "hostile"


@dataclass(frozen=True)
class Sample:
    name: str
    path: Path
    kind: str  # how Telegram would carry it: "voice" or "document"
    mime_type: str
    seconds: float  # what it holds when the bot may take it (MAX_AUDIO_SECONDS=3600), else 0


def corpus(directory: Path) -> Iterator[Sample]:
    directory.mkdir(parents=True, exist_ok=True)
    media = MediaLibrary(directory)
    empty = directory / "empty.oga"
    empty.touch()
    picture = directory / "photo.oga"
    if not picture.exists():
        ffmpeg(
            "-f", "lavfi", "-i", "color=blue:size=64x64", "-frames:v", "1", "-f", "image2", picture
        )
    yield Sample("zero bytes", empty, "voice", "audio/ogg", 0)
    yield Sample("truncated m4a", media.truncated("m4a"), "document", "audio/mp4", 0)
    yield Sample("wrong extension (png)", picture, "voice", "audio/ogg", 0)
    yield Sample("10 h silence ogg", media.silence(10, "ogg"), "voice", "audio/ogg", 0)
    yield Sample("10 h silence webm", media.silence(10, "webm"), "document", "audio/webm", 0)
    frame = media.repeated_frame_mp3(19 * MB + MB // 2)
    yield Sample("20 MB repeated frame", frame, "document", "audio/mpeg", 0)
    live = media.live_webm(120)
    yield Sample("webm without duration", live, "document", "audio/webm", decoded_seconds(live))
    tagged = media.tagged_mp3(MB)
    yield Sample("1 MB tag", tagged, "document", "audio/mpeg", decoded_seconds(tagged))


def decoded_seconds(path: Path) -> float:
    """What the file holds, decoded."""
    command = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "s16le", "-ac", "1"]
    pcm = subprocess.run([*command, "-ar", "8000", "-"], check=True, capture_output=True).stdout
    return len(pcm) / 16000
