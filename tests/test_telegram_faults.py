"""Telegram itself misbehaves: 429s are waited out, outages retried, nothing sent twice."""

from __future__ import annotations

import asyncio

from tests.conftest import RunningBot, send_voice, voice_message
from tests.fakes import FakeTelegram, FakeTranscriptionAPI
from tests.test_groups import GROUP, MEMBER, group_command
from tests.test_private_chat import USER


async def test_a_429_from_telegram_is_waited_out_and_the_message_still_goes(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    api.set_transcript(voice_bytes, "after the flood wait")
    tg.fail_next("sendMessage", error_code=429, retry_after=1)
    await send_voice(bot, tg, voice_bytes, chat_id=USER)
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
    tg.fail_next("sendMessage", error_code=502, description="Bad Gateway")
    await send_voice(bot, tg, voice_bytes, chat_id=USER)
    await tg.wait_for(
        lambda: tg.text_of(USER, tg.last_message_id(USER)) == "delivered once", timeout=20
    )
    await asyncio.sleep(0.3)
    assert [c.status for c in tg.calls("sendMessage")] == [502, 200]
    assert [m.text for m in tg.bot_messages(USER)] == ["delivered once"]


async def test_transcribe_on_a_note_already_queued_does_not_make_a_second_job(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    api.delay = 0.5
    update = voice_message(tg, voice_bytes, chat_id=GROUP, user_id=MEMBER, chat_type="supergroup")
    assert (await bot.deliver(update)).status_code == 200
    await group_command(bot, tg, "/transcribe", MEMBER, reply_to=update["message"])
    await api.wait_calls(1)
    await asyncio.sleep(1.0)
    assert len(api.requests) == 1
