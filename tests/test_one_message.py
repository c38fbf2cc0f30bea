"""A short note costs one message, the transcript; a placeholder only for a long wait."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from tests.conftest import BotFactory, RunningBot, send_voice, voice_message
from tests.fakes import FakeTelegram, FakeTranscriptionAPI
from tests.fakes.telegram_limits import COUNTED_METHODS, Limits
from tests.test_groups import GROUP, MEMBER
from tests.test_metrics import scrape, value
from tests.test_private_chat import USER


@pytest.fixture
async def bot(bot_factory: BotFactory) -> AsyncIterator[RunningBot]:
    """The default PLACEHOLDER_AFTER_SECONDS (the tests' own default is 0)."""
    async with bot_factory(placeholder_after_seconds=1.5) as running:
        yield running


def counted(tg: FakeTelegram) -> list[str]:
    """The calls Telegram counts against its flood limits, by method."""
    return [c.method for c in tg.requests if c.method in COUNTED_METHODS]


async def test_a_slow_note_in_a_private_chat_gets_typing_then_a_placeholder_after_the_wait(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    api.set_transcript(voice_bytes, "worth the wait")
    api.delay = 2.5
    start = time.monotonic()
    await send_voice(bot, tg, voice_bytes, chat_id=USER)
    final = (await tg.wait_calls("editMessageText", 1))[0]
    assert final.params["text"] == "worth the wait"
    placeholder = tg.calls("sendMessage")[0]
    assert placeholder.params["text"] == "🎙 Transcribing…"
    assert placeholder.at - start >= bot.settings.placeholder_after_seconds - 0.1
    typing = tg.calls("sendChatAction")
    assert typing
    assert typing[0].params["action"] == "typing"
    assert typing[0].at < placeholder.at


async def test_a_short_note_in_a_group_never_gets_a_placeholder_however_slow(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    api.set_transcript(voice_bytes, "slow group words")
    api.delay = 2.5
    update = voice_message(tg, voice_bytes, chat_id=GROUP, user_id=MEMBER, chat_type="supergroup")
    assert (await bot.deliver(update)).status_code == 200
    (reply,) = await tg.wait_calls("sendMessage", 1)
    assert reply.params["text"] == "👤 <b>Ann</b>\nslow group words"
    assert counted(tg) == ["sendMessage"]
    assert tg.calls("sendChatAction")  # it shows it is at work without a message


async def test_a_long_recording_in_a_group_gets_its_placeholder_at_once(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    api.set_transcript(voice_bytes, "a long speech")
    api.delay = 1.0
    update = voice_message(
        tg, voice_bytes, chat_id=GROUP, user_id=MEMBER, chat_type="supergroup", duration=600
    )
    assert (await bot.deliver(update)).status_code == 200
    (placeholder,) = await tg.wait_calls("sendMessage", 1)
    assert placeholder.params["text"] == "🎙 Transcribing…"
    final = (await tg.wait_calls("editMessageText", 1))[-1]
    assert final.params["message_id"] == placeholder.result["message_id"]
    assert final.params["text"] == "👤 <b>Ann</b>\na long speech"


async def test_twelve_notes_in_one_group_fit_its_minute_without_a_429(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    tg.enforce_limits(Limits())
    for member in range(12):  # twelve people: one person's twelve would meet USER_JOBS_PER_MINUTE
        update = voice_message(
            tg, voice_bytes, chat_id=GROUP, user_id=MEMBER + member, chat_type="supergroup"
        )
        assert (await bot.deliver(update)).status_code == 200
    await tg.wait_calls("sendMessage", 12, timeout=15)
    assert counted(tg) == ["sendMessage"] * 12  # a placeholder and an edit each were 24 > 20
    assert tg.too_many_requests == 0


async def test_metrics_count_the_bot_api_calls_a_note_costs(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    api.set_transcript(voice_bytes, "counted calls")
    await send_voice(bot, tg, voice_bytes, chat_id=USER)
    await tg.wait_calls("sendMessage", 1)
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for _ in range(50):  # the histogram is observed just after the reply
        samples = await scrape(bot)
        if value(samples, "transcribot_telegram_calls_per_note_count") == 1:
            break
        await asyncio.sleep(0.02)
    # One reply; getFile and the download are not counted per note.
    assert value(samples, "transcribot_telegram_calls_per_note_sum") == 1
    assert value(samples, "transcribot_telegram_calls_per_note_bucket", le="1.0") == 1
    assert value(samples, "transcribot_telegram_calls_total", method="sendMessage") == 1
    assert value(samples, "transcribot_telegram_calls_total", method="getFile") == 1
