"""Every kind of recording a person can send is transcribed, or refused with a clear reason.

Real files made with ffmpeg (the speech with espeak-ng); the fake API measures every upload
with ffprobe and keeps its bytes, so the tests can see exactly what the bot sent.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.workdirs import LazyDir
from tests.conftest import API_KEY, BotFactory, RunningBot
from tests.fakes import FakeTelegram, FakeTranscriptionAPI, TranscriptionCall
from tests.media_fixtures import (
    USER,
    MediaLibrary,
    duration_of,
    eventually,
    needs_media_tools,
    outcome,
    send,
    streams_of,
)

pytestmark = needs_media_tools

MB = 1024 * 1024


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> MediaLibrary:
    return MediaLibrary(tmp_path_factory.mktemp("media"))


@pytest.fixture
async def api() -> AsyncIterator[FakeTranscriptionAPI]:
    """The fake API, measuring each upload with ffprobe and keeping its bytes."""
    async with FakeTranscriptionAPI(API_KEY, check_duration=True, keep_uploads=True) as fake:
        yield fake


def only_upload(api: FakeTranscriptionAPI) -> TranscriptionCall:
    assert len(api.requests) == 1, [r.filename for r in api.requests]
    upload = api.requests[0]
    assert upload.ok, (upload.status, upload.error_code)
    return upload


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- each kind is transcribed ---------------------------------------------------------------


async def test_voice_note_goes_to_the_api_untouched_named_ogg(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, media: MediaLibrary
) -> None:
    data = media.audio("voice").read_bytes()
    api.set_transcript(data, "hello from a voice note")

    message_id = await send(bot, tg, data, "voice", suffix=".oga", mime_type="audio/ogg")

    assert await outcome(tg, message_id) == "hello from a voice note"
    upload = only_upload(api)
    assert upload.sha256 == sha256(data)
    assert upload.filename.endswith(".ogg")  # Telegram's ".oga" is not on every proxy's list


@pytest.mark.parametrize(
    ("kind", "mime_type", "extension"),
    [
        ("mp3", "audio/mpeg", ".mp3"),
        ("m4a", "audio/mp4", ".m4a"),
        ("wav", "audio/x-wav", ".wav"),
        ("flac", "audio/flac", ".flac"),
        ("vorbis", "audio/ogg", ".ogg"),
        ("opus", "audio/opus", ".ogg"),
    ],
)
async def test_audio_file_the_api_takes_is_sent_as_it_is(
    bot: RunningBot,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    media: MediaLibrary,
    kind: str,
    mime_type: str,
    extension: str,
) -> None:
    path = media.audio(kind)
    data = path.read_bytes()

    message_id = await send(
        bot, tg, data, "audio", suffix=path.suffix, mime_type=mime_type, file_name=path.name
    )

    text = await outcome(tg, message_id)
    upload = only_upload(api)
    assert text == upload.text == api.transcript_for(data)
    assert upload.sha256 == sha256(data)
    assert upload.filename.endswith(extension)


@pytest.mark.parametrize(
    ("kind", "mime_type", "extension", "codec"),
    [
        ("aac", "audio/aac", ".m4a", "aac"),  # raw ADTS: the same stream, put in an mp4 box
        ("wma", "audio/x-ms-wma", ".ogg", "opus"),
        ("aiff", "audio/aiff", ".ogg", "opus"),
    ],
)
async def test_audio_file_the_api_refuses_arrives_converted(
    bot: RunningBot,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    media: MediaLibrary,
    tmp_path: Path,
    kind: str,
    mime_type: str,
    extension: str,
    codec: str,
) -> None:
    path = media.audio(kind)
    data = path.read_bytes()

    message_id = await send(
        bot, tg, data, "audio", suffix=path.suffix, mime_type=mime_type, file_name=path.name
    )

    text = await outcome(tg, message_id)
    upload = only_upload(api)
    assert text == upload.text
    assert upload.filename.endswith(extension)
    assert upload.sha256 != sha256(data)
    assert streams_of(upload.data, tmp_path) == [("audio", codec)]
    # (ffprobe only estimates a raw ADTS stream's length: hence the margin)
    assert upload.duration_seconds == pytest.approx(duration_of(path), abs=0.3)


@pytest.mark.parametrize(
    ("kind", "message_kind", "mime_type", "extension", "codec"),
    [
        ("video_note", "video_note", None, ".m4a", "aac"),
        ("mp4", "video", "video/mp4", ".m4a", "aac"),
        ("mov", "video", "video/quicktime", ".m4a", "aac"),
        ("webm", "video", "video/webm", ".ogg", "opus"),
        ("mkv", "video", "video/x-matroska", ".ogg", "opus"),  # ac3 sound: converted
    ],
)
async def test_video_sends_only_its_sound(
    bot: RunningBot,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    media: MediaLibrary,
    tmp_path: Path,
    kind: str,
    message_kind: str,
    mime_type: str | None,
    extension: str,
    codec: str,
) -> None:
    path = media.video(kind)
    data = path.read_bytes()

    message_id = await send(
        bot, tg, data, message_kind, suffix=path.suffix, mime_type=mime_type, file_name=path.name
    )

    text = await outcome(tg, message_id)
    upload = only_upload(api)
    assert text == upload.text
    assert upload.filename.endswith(extension)
    assert streams_of(upload.data, tmp_path) == [("audio", codec)]
    assert upload.size < len(data) / 4  # the picture was most of it


@pytest.mark.parametrize(
    ("kind", "mime_type", "file_name"),
    [
        ("m4a", "audio/mp4", "interview.m4a"),
        ("flac", "application/octet-stream", "take 3.flac"),  # sent "as a file"
        ("mp4", "video/mp4", "screen recording.mp4"),
    ],
)
async def test_recording_sent_as_a_document_is_transcribed(
    bot: RunningBot,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    media: MediaLibrary,
    tmp_path: Path,
    kind: str,
    mime_type: str,
    file_name: str,
) -> None:
    path = media.video(kind) if kind == "mp4" else media.audio(kind)
    data = path.read_bytes()

    message_id = await send(
        bot, tg, data, "document", suffix=path.suffix, mime_type=mime_type, file_name=file_name
    )

    text = await outcome(tg, message_id)
    upload = only_upload(api)
    assert text == upload.text
    assert [s.kind for s in streams_of(upload.data, tmp_path)] == ["audio"]


@pytest.mark.parametrize(
    ("real", "claimed_mime", "claimed_name", "extension", "untouched"),
    [
        ("wav", "audio/mpeg", "memo.mp3", ".wav", True),
        ("wma", "audio/ogg", "memo.ogg", ".ogg", False),
        ("mp3", "video/mp4", "memo.mp4", ".mp3", True),
    ],
)
async def test_format_is_read_from_the_bytes_not_the_name_or_mime_type(
    bot: RunningBot,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    media: MediaLibrary,
    real: str,
    claimed_mime: str,
    claimed_name: str,
    extension: str,
    untouched: bool,
) -> None:
    data = media.audio(real).read_bytes()
    suffix = "." + claimed_name.rpartition(".")[2]

    message_id = await send(
        bot, tg, data, "document", suffix=suffix, mime_type=claimed_mime, file_name=claimed_name
    )

    text = await outcome(tg, message_id)
    upload = only_upload(api)
    assert text == upload.text
    assert upload.filename.endswith(extension)
    assert (upload.sha256 == sha256(data)) is untouched


async def test_other_documents_and_gifs_are_left_alone(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, media: MediaLibrary
) -> None:
    pdf = b"%PDF-1.4 ..."
    await send(
        bot, tg, pdf, "document", suffix=".pdf", mime_type="application/pdf", file_name="a.pdf"
    )
    gif = media.silent_video().read_bytes()
    animation = {"file_id": "gif", "file_unique_id": "gif-u", "width": 160, "height": 90}
    await send(
        bot,
        tg,
        gif,
        "document",
        suffix=".mp4",
        mime_type="video/mp4",
        file_name="funny.gif.mp4",
        extra={"animation": animation | {"duration": 2}},
    )
    voice = await send(bot, tg, media.audio("voice").read_bytes(), "voice")

    await outcome(tg, voice)
    assert len(api.requests) == 1
    assert [m.reply_to for m in tg.bot_messages(USER)] == [voice]


# --- what is refused, and how ---------------------------------------------------------------


async def test_recording_over_max_audio_seconds_is_refused_before_download(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, media: MediaLibrary
) -> None:
    async with bot_factory(max_audio_seconds=60) as bot:
        message_id = await send(bot, tg, media.audio("voice").read_bytes(), "voice", duration=61)

        text = await outcome(tg, message_id)

    assert "too long" in text
    assert "1 minute" in text
    assert tg.calls("getFile") == []
    assert api.requests == []


@pytest.mark.parametrize(
    ("fixture", "kind", "declared"),
    [
        ("voice", "voice", 5),  # Telegram's duration lies: the ogg's own header tells
        ("mp3", "document", None),  # a document has no duration: ffprobe tells
    ],
)
async def test_recording_really_over_max_audio_seconds_is_refused(
    bot_factory: BotFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    media: MediaLibrary,
    fixture: str,
    kind: str,
    declared: int | None,
) -> None:
    path = media.padded_speech(90, fixture)
    async with bot_factory(max_audio_seconds=60) as bot:
        message_id = await send(
            bot, tg, path.read_bytes(), kind, suffix=path.suffix, duration=declared or 0
        )

        text = await outcome(tg, message_id)

    assert "too long" in text
    assert "1 minute" in text
    assert api.requests == []


@pytest.mark.parametrize("name", ["random bytes", "empty file"])
async def test_unreadable_file_gets_a_clear_message_and_no_api_call(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, media: MediaLibrary, name: str
) -> None:
    data = media.corrupt().read_bytes() if name == "random bytes" else b""

    message_id = await send(bot, tg, data, "voice", suffix=".oga", mime_type="audio/ogg")

    assert "couldn't read that file" in await outcome(tg, message_id)
    assert api.requests == []


async def test_video_without_sound_is_explained(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, media: MediaLibrary
) -> None:
    message_id = await send(bot, tg, media.silent_video().read_bytes(), "video", suffix=".mp4")

    assert "couldn't find any audio" in await outcome(tg, message_id)
    assert api.requests == []


@pytest.mark.parametrize("size_declared", [True, False], ids=["size in message", "getFile says"])
async def test_file_over_20_mb_is_refused_plainly_without_an_api_call(
    bot: RunningBot,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    media: MediaLibrary,
    size_declared: bool,
) -> None:
    data = media.audio("mp3").read_bytes()  # Telegram would say 21 MB: the fake believes it

    message_id = await send(
        bot,
        tg,
        data,
        "audio",
        suffix=".mp3",
        file_size=21 * MB,
        declare_size=size_declared,
    )

    text = await outcome(tg, message_id)
    assert "too big" in text
    assert "20 MB" in text
    assert "shorter" in text
    assert api.requests == []
    assert tg.calls("download") == []
    refused = [c for c in tg.calls("getFile") if not c.ok]
    assert len(refused) == (0 if size_declared else 1)


# --- without ffmpeg ---------------------------------------------------------------------------


async def test_without_ffmpeg_what_needs_no_conversion_still_works(
    bot: RunningBot,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    media: MediaLibrary,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    voice = media.audio("voice").read_bytes()
    mp3 = media.audio("mp3").read_bytes()
    wma = media.audio("wma").read_bytes()
    api.check_duration = False  # the fake's own ffprobe is gone too
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # the machine has no ffmpeg or ffprobe

    voice_id = await send(bot, tg, voice, "voice")
    mp3_id = await send(bot, tg, mp3, "audio", suffix=".mp3")
    with caplog.at_level(logging.WARNING):
        wma_id = await send(bot, tg, wma, "audio", suffix=".wma", file_name="talk.wma")
        wma_text = await outcome(tg, wma_id)

    assert await outcome(tg, voice_id) == api.transcript_for(voice)
    assert await outcome(tg, mp3_id) == api.transcript_for(mp3)
    assert "needs converting" in wma_text
    assert "ffmpeg" in wma_text
    # The job's line is logged once its outcome is told.
    await eventually(lambda: "FfmpegMissing" in caplog.text, what="the job's log line")
    assert sorted(r.sha256 for r in api.requests) == sorted([sha256(voice), sha256(mp3)])


# --- resources ------------------------------------------------------------------------------


async def test_temporary_files_are_removed_after_work_and_failures(
    bot: RunningBot,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    media: MediaLibrary,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    big = media.tone_wav(300).read_bytes()  # 9.6 MB: over what the bot keeps in memory
    sends = [
        (media.audio("wma").read_bytes(), "audio", ".wma"),  # converted
        (media.video("mp4").read_bytes(), "video", ".mp4"),  # sound extracted
        (media.corrupt().read_bytes(), "voice", ".oga"),  # ffprobe fails
        (media.audio("aiff").read_bytes(), "audio", ".aiff"),  # converted, then the API fails
    ]
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    api.fail_next(400, times=1)  # the first upload: the aiff's or the wma's
    api.delay = 0.3

    ids = [await send(bot, tg, data, kind, suffix=suffix) for data, kind, suffix in sends]
    big_id = await send(bot, tg, big, "audio", suffix=".wav")

    # While the API works on it, the big file waits on disk, not in memory.
    await eventually(lambda: len(big) in sizes_of_files_in(temp), timeout=15)
    outcomes = [await outcome(tg, message_id) for message_id in [*ids, big_id]]
    assert sum("couldn't" in text for text in outcomes) == 2  # the corrupt one, the refused one
    assert any(r.sha256 == sha256(big) for r in api.requests)
    assert list(temp.iterdir()) == []


def sizes_of_files_in(directory: Path) -> set[int]:
    return {path.stat().st_size for path in directory.rglob("*") if path.is_file()}


async def test_work_directories_of_a_killed_run_are_removed_at_start(
    bot_factory: BotFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    # A previous bot process, mid-download when it is killed: its directory stays behind.
    previous = subprocess.Popen(
        [sys.executable, "-c", _MID_DOWNLOAD],
        env={**os.environ, "TMPDIR": str(temp)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert previous.stdout is not None
    left = Path(previous.stdout.readline().strip())
    previous.kill()
    previous.wait()
    # And one of a process that still runs (this one: another replica on this machine).
    running = LazyDir()
    (running / "download").write_bytes(b"still in use")
    assert left.parent == running.path.parent == temp

    async with bot_factory():
        pass

    assert not left.exists()
    assert (running / "download").read_bytes() == b"still in use"
    running.__exit__()


_MID_DOWNLOAD = """
import sys
from bot.workdirs import LazyDir
work = LazyDir()
(work / "download").write_bytes(b"half a recording")
print(work.path, flush=True)
sys.stdin.read()
"""
