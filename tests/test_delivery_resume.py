"""A long transcript that Telegram fails part of the way through is not sent twice."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.replies import ATTACH_AFTER_MESSAGES, MESSAGE_LIMIT, split_for_telegram
from tests.conftest import BACKENDS, RunningBot, backend_url, send_voice
from tests.fakes import FakeTelegram, FakeTranscriptionAPI

USER = 733
# Several messages' worth of words: sent in parts, plus the whole text as a .txt.
LONG_TEXT = " ".join(f"word{i:05d}" for i in range(2300))
PARTS = len(split_for_telegram(LONG_TEXT, MESSAGE_LIMIT))


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return backend_url(request, request.param, tmp_path)


async def test_a_retry_after_the_txt_failed_sends_only_the_txt(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    api.set_transcript(voice_bytes, LONG_TEXT)
    tg.fail_next("sendDocument", error_code=502)
    await send_voice(bot, tg, voice_bytes, chat_id=USER)
    await tg.wait_for(lambda: len([c for c in tg.calls("sendDocument") if c.ok]) == 1, 20)
    await asyncio.sleep(0.3)
    sent = [c for c in tg.calls("sendMessage") if c.ok]
    texts = [m.text or "" for m in tg.bot_messages(USER)]
    assert PARTS > ATTACH_AFTER_MESSAGES
    assert len(sent) == PARTS  # the placeholder (then the first part) and the others, once each
    assert len(texts) == PARTS + 1  # and the .txt, once
    assert " ".join(texts[:PARTS]).split() == LONG_TEXT.split()
    assert len(api.requests) == 1  # the retry took the text from the cache


async def test_a_retry_after_a_later_part_failed_goes_on_from_there(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    api.set_transcript(voice_bytes, LONG_TEXT)
    await send_voice(bot, tg, voice_bytes, chat_id=USER)
    await tg.wait_calls("sendMessage", 2)  # the placeholder, then part 2
    tg.fail_next("sendMessage", error_code=502)  # part 3
    await tg.wait_for(lambda: len([c for c in tg.calls("sendDocument") if c.ok]) == 1, 20)
    await asyncio.sleep(0.3)
    texts = [m.text or "" for m in tg.bot_messages(USER)]
    assert len([c for c in tg.calls("sendMessage") if c.ok]) == PARTS
    assert len(texts) == PARTS + 1
    assert " ".join(texts[:PARTS]).split() == LONG_TEXT.split()


async def test_a_reply_telegram_refuses_does_not_leave_the_placeholder_saying_transcribing(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    api.set_transcript(voice_bytes, "refused by Telegram")
    tg.fail_next("editMessageText", error_code=400)  # the transcript's edit
    await send_voice(bot, tg, voice_bytes, chat_id=USER)
    await tg.wait_for(lambda: any("went wrong" in (m.text or "") for m in tg.bot_messages(USER)))
    await asyncio.sleep(0.3)
    assert [m.text for m in tg.bot_messages(USER)] == [
        "😔 Sorry, something went wrong with this one. Please try again later."
    ]
