"""No chat waits behind another: jobs waiting for Telegram's limits or their chat's turn hold
no worker slot."""

from __future__ import annotations

import time

from tests.conftest import BotFactory, send_voice, voice_message
from tests.fakes import FakeTelegram, FakeTranscriptionAPI
from tests.fakes.telegram_limits import Limits, Window
from tests.test_groups import GROUP, MEMBER

PRIVATE = 6100


async def test_a_private_note_is_not_kept_waiting_by_a_groups_backlog(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    # A group allowed 2 messages a minute: its 3rd and later notes wait ~60 s for room.
    tg.enforce_limits(Limits(group=Window(2, 60.0)))
    async with bot_factory(max_concurrent_jobs=2, telegram_group_rate_per_minute=2) as bot:
        for _ in range(5):
            update = voice_message(
                tg, voice_bytes, chat_id=GROUP, user_id=MEMBER, chat_type="supergroup"
            )
            assert (await bot.deliver(update)).status_code == 200
        await tg.wait_for(lambda: len(tg.calls("sendMessage")) == 2)
        api.delay = 0.5
        start = time.monotonic()
        await send_voice(bot, tg, voice_bytes, chat_id=PRIVATE)
        await tg.wait_for(lambda: bool(tg.bot_messages(PRIVATE)), timeout=10)
        answered = time.monotonic() - start
    assert answered < 0.5 + 2.0  # upstream time and a little; not the group's next minute
    assert tg.too_many_requests == 0
    assert len([c for c in tg.calls("sendMessage") if c.params["chat_id"] == GROUP]) == 2


async def test_a_private_note_is_taken_while_a_groups_jobs_wait_for_their_turn(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    """Jobs waiting for their chat's turn hold nothing: they must not use up what one
    replica may take from the queue, or a note of another chat stays in it behind them."""
    tg.enforce_limits(Limits(group=Window(2, 60.0)))
    async with bot_factory(max_concurrent_jobs=2, telegram_group_rate_per_minute=2) as bot:
        for member in range(10):  # 8 are as many as two slots took before, 4 a slot
            update = voice_message(
                tg, voice_bytes, chat_id=GROUP, user_id=MEMBER + member, chat_type="supergroup"
            )
            assert (await bot.deliver(update)).status_code == 200
        await tg.wait_for(lambda: len(tg.calls("sendMessage")) == 2)
        await api.wait_calls(4)  # two more transcribed, waiting for the group's next minute
        api.delay = 0.5
        start = time.monotonic()
        await send_voice(bot, tg, voice_bytes, chat_id=PRIVATE)
        await tg.wait_for(lambda: bool(tg.bot_messages(PRIVATE)), timeout=10)
        answered = time.monotonic() - start
    assert answered < 0.5 + 1.5  # not the group's next minute
    assert tg.too_many_requests == 0


async def test_one_users_many_notes_do_not_delay_another_users_note(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    api.delay = 1.0
    async with bot_factory(max_concurrent_jobs=4, user_jobs_per_minute=0) as bot:
        for _ in range(12):
            await send_voice(bot, tg, voice_bytes, chat_id=PRIVATE)
        start = time.monotonic()
        await send_voice(bot, tg, voice_bytes, chat_id=PRIVATE + 1)
        await tg.wait_for(lambda: bool(tg.bot_messages(PRIVATE + 1)), timeout=15)
        answered = time.monotonic() - start
        done_first = sum(
            1 for m in tg.bot_messages(PRIVATE) if "Transcribing" not in (m.text or "")
        )
    # 12 notes of one chat, 4 slots: the first user gets 2 of them, the other waits
    # at most for the upstream (not for three rounds of the first user's notes).
    assert answered < 1.0 + 1.5
    assert done_first < 12
