"""Telegram itself misbehaves: 429s are waited out, outages retried, nothing sent twice."""

from __future__ import annotations

import asyncio

from tests.conftest import RunningBot
from tests.fakes import FakeTelegram, FakeTranscriptionAPI
from tests.test_groups import GROUP, MEMBER, group_command
from tests.test_private_chat import USER, send_voice


async def test_a_429_from_telegram_is_waited_out_and_the_message_still_goes(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    api.set_transcript(voice_bytes, "after the flood wait")
    tg.fail_next("sendMessage", error_code=429, retry_after=1)
    await send_voice(bot, tg, voice_bytes)
    await tg.wait_for(
        lambda: tg.text_of(USER, tg.last_message_id(USER)) == "after the flood wait", timeout=15
    )
    attempts = tg.calls("sendMessage")
    assert [c.status for c in attempts] == [429, 200]
    assert attempts[1].at - attempts[0].at >= 1.0


async def test_telegram_outage_while_replying_retries_the_job_and_replies_once(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    api.set_transcript(voice_bytes, "delivered once")
    tg.fail_next("editMessageText", error_code=502, description="Bad Gateway")
    await send_voice(bot, tg, voice_bytes)
    await tg.wait_for(
        lambda: tg.text_of(USER, tg.last_message_id(USER)) == "delivered once", timeout=20
    )
    await asyncio.sleep(0.3)
    assert len([c for c in tg.calls("sendMessage") if c.ok]) == 1  # one placeholder, reused
    assert [m.text for m in tg.bot_messages(USER)] == ["delivered once"]


async def test_transcribe_on_a_note_already_queued_does_not_make_a_second_job(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    from tests.conftest import next_message_id, next_update_id
    from tests.fakes import voice_update

    api.delay = 0.5
    file = tg.add_file(voice_bytes)
    voice_id = next_message_id()
    tg.add_message(GROUP, voice_id)
    update = voice_update(
        next_update_id(),
        chat_id=GROUP,
        user_id=MEMBER,
        message_id=voice_id,
        file=file,
        chat_type="supergroup",
    )
    assert (await bot.deliver(update)).status_code == 200
    await group_command(bot, tg, "/transcribe", MEMBER, reply_to=update["message"])
    await api.wait_calls(1)
    await asyncio.sleep(1.0)
    assert len(api.requests) == 1
