"""A busy bot sends no placeholders for short waits: each note costs its transcript only."""

from __future__ import annotations

import asyncio

from tests.conftest import BotFactory, send_voice
from tests.fakes import FakeTelegram, FakeTranscriptionAPI
from tests.fakes.telegram_limits import COUNTED_METHODS, Limits, Window

FIRST = 7600  # private chats FIRST, FIRST + 1, ...


async def test_more_notes_at_work_than_the_bots_second_holds_get_no_placeholders(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    # Four messages a second for the whole bot: twelve notes at once are three seconds of
    # transcripts; a placeholder for one of them would push another's transcript back.
    tg.enforce_limits(Limits(overall=Window(4, 1.0)))
    api.delay = 1.0
    settings = {"telegram_rate_per_second": 4, "placeholder_after_seconds": 0.5}
    async with bot_factory(max_concurrent_jobs=16, **settings) as bot:
        # At once: one by one, on a loaded machine the first note's PLACEHOLDER_AFTER_SECONDS
        # passed before five were at work (a placeholder went out, and was edited).
        await asyncio.gather(
            *(send_voice(bot, tg, voice_bytes, chat_id=FIRST + i) for i in range(12))
        )
        await tg.wait_calls("sendMessage", 12, timeout=20)
    counted = [c.method for c in tg.requests if c.method in COUNTED_METHODS]
    assert counted == ["sendMessage"] * 12  # the transcripts, and nothing else
    assert all(c.params["text"] == api.transcript_for(voice_bytes) for c in tg.calls("sendMessage"))
    assert tg.calls("sendChatAction")  # the wait is shown without a message
    assert tg.too_many_requests == 0


async def test_a_note_alone_still_gets_its_placeholder_after_the_wait(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    tg.enforce_limits(Limits(overall=Window(4, 1.0)))
    api.delay = 1.5
    settings = {"telegram_rate_per_second": 4, "placeholder_after_seconds": 0.5}
    async with bot_factory(**settings) as bot:
        await send_voice(bot, tg, voice_bytes, chat_id=FIRST)
        await tg.wait_calls("editMessageText", 1, timeout=20)
    counted = [c.method for c in tg.requests if c.method in COUNTED_METHODS]
    assert counted == ["sendMessage", "editMessageText"]  # the placeholder, then the text
