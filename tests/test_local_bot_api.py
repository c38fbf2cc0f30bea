"""With a self-hosted Bot API server (TELEGRAM_LOCAL_MODE=true) files over 20 MB work: getFile
answers a path on that server's disk, which the bot shares and reads in place.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import TOKEN, BotFactory
from tests.fakes import FakeTelegram, FakeTranscriptionAPI
from tests.media_fixtures import MediaLibrary, needs_media_tools, outcome, send

pytestmark = needs_media_tools

MB = 1024 * 1024


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> MediaLibrary:
    return MediaLibrary(tmp_path_factory.mktemp("media"))


@pytest.fixture
async def tg(tmp_path: Path) -> AsyncIterator[FakeTelegram]:
    """A `telegram-bot-api --local`: files live in a directory the bot can read."""
    async with FakeTelegram(TOKEN, local_mode_dir=tmp_path / "telegram-bot-api") as fake:
        yield fake


async def test_file_over_20_mb_is_read_from_the_servers_disk(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, media: MediaLibrary
) -> None:
    data = media.tone_wav(656).read_bytes()  # 21 MB of 16 kHz PCM: the API takes it as it is
    assert len(data) > 20 * MB

    async with bot_factory(telegram_local_mode=True) as bot:
        message_id = await send(bot, tg, data, "audio", suffix=".wav", duration=656)

        text = await outcome(tg, message_id)

    assert text == api.transcript_for(data)
    assert api.requests[0].sha256 == hashlib.sha256(data).hexdigest()
    assert Path(tg.calls("getFile")[0].result["file_path"]).is_absolute()
    assert tg.calls("download") == []


async def test_file_too_big_for_one_request_is_converted_from_the_servers_disk(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, media: MediaLibrary
) -> None:
    data = media.tone_wav(280, rate=48000).read_bytes()  # 27 MB: over the API's 25 MB

    async with bot_factory(telegram_local_mode=True) as bot:
        message_id = await send(bot, tg, data, "document", suffix=".wav", file_name="long.wav")

        text = await outcome(tg, message_id, timeout=30)

    upload = api.requests[0]
    assert len(api.requests) == 1
    assert text == upload.text
    assert upload.filename.endswith(".ogg")
    assert upload.size < 25 * MB
    assert tg.calls("download") == []


async def test_unreadable_file_is_reported_without_the_servers_path(
    bot_factory: BotFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    media: MediaLibrary,
    caplog: pytest.LogCaptureFixture,
) -> None:
    data = media.corrupt().read_bytes()

    async with bot_factory(telegram_local_mode=True) as bot:
        # telegram-bot-api keeps a bot's files in a directory named after its token.
        message_id = await send(bot, tg, data, "voice", folder=TOKEN)

        text = await outcome(tg, message_id)

    assert "couldn't read that file" in text
    assert "ffprobe failed" in caplog.text
    assert TOKEN not in caplog.text
    assert api.requests == []
