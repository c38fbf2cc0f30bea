"""Bot API calls over aiohttp fail as python-telegram-bot's own HTTPXRequest makes them fail."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
from telegram import Bot, InputFile
from telegram.error import BadRequest, NetworkError, RetryAfter, TimedOut

from bot.metrics import Metrics
from bot.telegram_http import AiohttpRequest
from tests.conftest import TOKEN, free_port
from tests.fakes import FakeTelegram

CHAT = 4242

BotMaker = Callable[..., Bot]


@pytest.fixture
async def make_bot(tg: FakeTelegram) -> AsyncIterator[BotMaker]:
    """`make_bot(**request_options)`: a Bot on the fake Telegram; shut down after the test."""
    made: list[Bot] = []

    def make(url: str = tg.url, metrics: Metrics | None = None, **options: Any) -> Bot:
        bot = Bot(
            TOKEN,
            base_url=f"{url}/bot",
            base_file_url=f"{url}/file/bot",
            request=AiohttpRequest(metrics, **options),
            get_updates_request=AiohttpRequest(metrics),
        )
        made.append(bot)
        return bot

    yield make
    for bot in made:
        await bot.shutdown()


def errors_counted(metrics: Metrics, method: str, error: str) -> float:
    found = metrics.registry.get_sample_value(
        "transcribot_telegram_errors_total", {"method": method, "error": error}
    )
    return found or 0.0


async def test_a_message_is_sent_as_telegram_expects(make_bot: BotMaker, tg: FakeTelegram) -> None:
    bot = make_bot()
    await bot.initialize()
    message = await bot.send_message(CHAT, "<b>héllo</b> &amp; more", parse_mode="HTML")
    assert tg.text_of(CHAT, message.message_id) == "héllo & more"
    assert tg.calls("sendMessage")[0].params["parse_mode"] == "HTML"


async def test_a_document_goes_as_a_multipart_upload(make_bot: BotMaker, tg: FakeTelegram) -> None:
    bot = make_bot()
    await bot.initialize()
    text = "the whole transcript, ünïcode too".encode()
    await bot.send_document(CHAT, InputFile(text, filename="transcript.txt"), caption="all of it")
    call = tg.calls("sendDocument")[0]
    assert call.ok
    assert call.params["caption"] == "all of it"
    assert list(call.files.values()) == [text]
    assert list(call.filenames.values()) == ["transcript.txt"]


async def test_a_429_raises_retry_after_and_is_counted(
    make_bot: BotMaker, tg: FakeTelegram
) -> None:
    metrics = Metrics()
    bot = make_bot(metrics=metrics)
    await bot.initialize()
    tg.fail_next("sendMessage", error_code=429, retry_after=7)
    with pytest.raises(RetryAfter) as raised:
        await bot.send_message(CHAT, "too fast")
    retry_after = raised.value.retry_after  # an int or a timedelta, by PTB's settings
    assert (retry_after.total_seconds() if isinstance(retry_after, timedelta) else retry_after) == 7
    assert errors_counted(metrics, "sendMessage", "429") == 1


async def test_a_400_raises_bad_request_with_telegrams_description(
    make_bot: BotMaker, tg: FakeTelegram
) -> None:
    metrics = Metrics()
    bot = make_bot(metrics=metrics)
    await bot.initialize()
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("new text", chat_id=CHAT, message_id=999_999)
    assert errors_counted(metrics, "editMessageText", "400") == 1


async def test_no_answer_within_the_read_timeout_raises_timed_out(
    make_bot: BotMaker, tg: FakeTelegram
) -> None:
    metrics = Metrics()
    bot = make_bot(metrics=metrics, read_timeout=0.3)
    await bot.initialize()
    tg.delay = 1.0
    with pytest.raises(TimedOut):
        await bot.send_message(CHAT, "slow")
    assert errors_counted(metrics, "sendMessage", "TimedOut") == 1


async def test_a_read_timeout_given_for_one_call_is_the_one_that_counts(
    make_bot: BotMaker, tg: FakeTelegram
) -> None:
    bot = make_bot(read_timeout=30)
    await bot.initialize()
    tg.delay = 1.0
    started = asyncio.get_running_loop().time()
    with pytest.raises(TimedOut):
        await bot.send_message(CHAT, "slow", read_timeout=0.3)
    assert asyncio.get_running_loop().time() - started < 0.9
    tg.delay = 0.2
    await bot.send_message(CHAT, "slow but in time", read_timeout=5)


async def test_waiting_too_long_for_a_pooled_connection_raises_timed_out_unsent(
    make_bot: BotMaker, tg: FakeTelegram
) -> None:
    bot = make_bot(connection_pool_size=1, pool_timeout=0.2)
    await bot.initialize()
    tg.delay = 1.0
    first = asyncio.create_task(bot.send_message(CHAT, "takes the only connection"))
    await asyncio.sleep(0.1)
    with pytest.raises(TimedOut, match="Pool timeout"):
        await bot.send_message(CHAT, "waits for it")
    await first
    assert [c.params["text"] for c in tg.calls("sendMessage")] == ["takes the only connection"]


async def test_a_refused_connection_raises_network_error(make_bot: BotMaker) -> None:
    metrics = Metrics()
    bot = make_bot(url=f"http://127.0.0.1:{free_port()}", metrics=metrics)
    with pytest.raises(NetworkError) as raised:
        await bot.initialize()  # getMe
    assert not isinstance(raised.value, TimedOut)
    assert "aiohttp.ClientConnectorError" in str(raised.value)
    assert errors_counted(metrics, "getMe", "NetworkError") == 1


async def test_a_file_is_retrieved_through_the_same_request(
    make_bot: BotMaker, tg: FakeTelegram
) -> None:
    bot = make_bot()
    await bot.initialize()
    info = tg.add_file(b"OggS and the rest of a voice note")
    tg_file = await bot.get_file(info.file_id)
    assert await tg_file.download_as_bytearray() == b"OggS and the rest of a voice note"
