"""Files that say less (or other) than they hold: the caps hold on what is measured.

A declared duration (Telegram's, a container's header, a tag) is a hint: MAX_AUDIO_SECONDS and
the daily quota are checked on what the bot measured from the file itself, before anything is
sent to the API, and the job is billed what was measured. Files nothing can read get a short
answer and cost nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import API_KEY, BotFactory, RunningBot
from tests.fakes import FakeTelegram, FakeTranscriptionAPI
from tests.media_fixtures import USER, MediaLibrary, ffmpeg, needs_media_tools, outcome, send
from tests.test_preferences import say

pytestmark = needs_media_tools

MB = 1024 * 1024
TOO_LONG = "too long"
UNREADABLE = "couldn't read that file"
NO_AUDIO = "couldn't find any audio"


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> MediaLibrary:
    return MediaLibrary(tmp_path_factory.mktemp("media"))


@pytest.fixture
async def api() -> AsyncIterator[FakeTranscriptionAPI]:
    """The fake API, measuring each upload with ffprobe."""
    async with FakeTranscriptionAPI(API_KEY, check_duration=True) as fake:
        yield fake


async def send_document(bot: RunningBot, tg: FakeTelegram, path: Path, mime: str) -> int:
    return await send(
        bot,
        tg,
        path.read_bytes(),
        "document",
        suffix=path.suffix,
        mime_type=mime,
        file_name=f"recording{path.suffix}",
    )


# --- MAX_AUDIO_SECONDS on what the file holds ----------------------------------------------


async def test_streamed_webm_over_max_audio_seconds_is_refused_before_any_api_call(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, media: MediaLibrary
) -> None:
    # Recorded in a browser: no Duration element, and a document declares no duration.
    async with bot_factory(max_audio_seconds=60) as bot:
        message_id = await send_document(bot, tg, media.live_webm(120), "audio/webm")

        text = await outcome(tg, message_id)

    assert TOO_LONG in text
    assert "1 minute" in text
    assert api.requests == []


async def test_streamed_webm_under_the_cap_is_billed_what_it_lasts(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, media: MediaLibrary
) -> None:
    async with bot_factory(max_audio_seconds=180) as bot:
        message_id = await send_document(bot, tg, media.live_webm(120), "audio/webm")
        await outcome(tg, message_id)

        usage = await say(bot, tg, "/usage", user_id=USER)

    [upload] = api.requests
    assert upload.ok
    assert upload.duration_seconds == pytest.approx(120, abs=1)
    assert "2 minutes in 1 recording" in usage


async def test_mp3_whose_header_claims_a_second_is_measured_and_refused(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, media: MediaLibrary
) -> None:
    # ffprobe believes the Info header (1 s); the file holds ~5 hours of one repeated frame.
    liar = media.repeated_frame_mp3(19 * MB)
    async with bot_factory(max_audio_seconds=60) as bot:
        message_id = await send_document(bot, tg, liar, "audio/mpeg")

        text = await outcome(tg, message_id, timeout=30)

    assert TOO_LONG in text
    assert api.requests == []


@pytest.mark.parametrize("kind", ["wav", "flac"])
async def test_header_that_understates_its_length_does_not_pass_the_cap(
    bot_factory: BotFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    media: MediaLibrary,
    kind: str,
) -> None:
    liar = media.lying_header(90, kind)
    async with bot_factory(max_audio_seconds=60) as bot:
        message_id = await send_document(bot, tg, liar, f"audio/{kind}")

        text = await outcome(tg, message_id)

    assert TOO_LONG in text
    assert api.requests == []


async def test_voice_note_whose_last_page_understates_its_length_is_refused(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, media: MediaLibrary
) -> None:
    # Telegram says 5 s, the last Ogg page says 1 s: its packets hold 90 s.
    liar = media.lying_voice(90)
    async with bot_factory(max_audio_seconds=60) as bot:
        message_id = await send(bot, tg, liar.read_bytes(), "voice", duration=5)

        text = await outcome(tg, message_id)

    assert TOO_LONG in text
    assert api.requests == []


async def test_ogg_vorbis_whose_last_page_understates_its_length_is_refused(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, media: MediaLibrary
) -> None:
    # The last Ogg page says 1 s; Vorbis packets carry no length of their own: ffmpeg reads them.
    liar = media.lying_voice(90, "vorbis")
    async with bot_factory(max_audio_seconds=60) as bot:
        message_id = await send_document(bot, tg, liar, "audio/ogg")

        text = await outcome(tg, message_id)

    assert TOO_LONG in text
    assert api.requests == []


# --- the daily quota on what the file holds -------------------------------------------------


async def test_quota_is_checked_on_the_measured_duration_of_a_document(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, media: MediaLibrary
) -> None:
    # Accepted with no declared duration (0 s against the quota), then measured: 120 s.
    async with bot_factory(user_daily_audio_seconds=60) as bot:
        message_id = await send_document(bot, tg, media.live_webm(120), "audio/webm")

        text = await outcome(tg, message_id)

    assert "today's 1 minute of audio" in text
    assert api.requests == []


# --- the hostile corpus: a clear answer, nothing paid ---------------------------------------

HOSTILE = [
    ("empty", UNREADABLE),
    ("truncated m4a", UNREADABLE),
    ("picture named .oga", NO_AUDIO),
    ("10 hours of silence, ogg", TOO_LONG),
    ("10 hours of silence, streamed webm", TOO_LONG),
    ("20 MB of one repeated mp3 frame", TOO_LONG),
]


def hostile_file(media: MediaLibrary, name: str, tmp_path: Path) -> bytes:
    if name == "empty":
        return b""
    if name == "truncated m4a":
        return media.truncated("m4a").read_bytes()
    if name == "picture named .oga":
        out = tmp_path / "photo.png"
        ffmpeg("-f", "lavfi", "-i", "color=blue:size=64x64", "-frames:v", "1", out)
        return out.read_bytes()
    if name.startswith("10 hours"):
        return media.silence(10, "ogg" if name.endswith("ogg") else "webm").read_bytes()
    return media.repeated_frame_mp3(19 * MB + MB // 2).read_bytes()


@pytest.mark.parametrize(("name", "answer"), HOSTILE)
async def test_hostile_file_gets_a_clear_answer_and_costs_nothing(
    bot_factory: BotFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    media: MediaLibrary,
    tmp_path: Path,
    name: str,
    answer: str,
) -> None:
    data = hostile_file(media, name, tmp_path)
    async with bot_factory(max_audio_seconds=3600) as bot:
        # As a voice note declaring 4 s: Telegram's duration is the sender's claim too.
        message_id = await send(bot, tg, data, "voice", suffix=".oga", mime_type="audio/ogg")

        text = await outcome(tg, message_id, timeout=30)

    assert answer in text
    assert api.requests == []
