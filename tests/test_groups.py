"""Groups: automatic transcription, switchable by admins; /transcribe on request."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.callbacks import Callbacks
from tests.conftest import RunningBot, next_message_id, next_update_id
from tests.fakes import FakeTelegram, FakeTranscriptionAPI, text_update, voice_update

GROUP = -1001234
ADMIN = 7
MEMBER = 8


async def group_voice(bot: RunningBot, tg: FakeTelegram, data: bytes, user_id: int = MEMBER) -> int:
    file = tg.add_file(data)
    message_id = next_message_id()
    tg.add_message(GROUP, message_id)
    response = await bot.deliver(
        voice_update(
            next_update_id(),
            chat_id=GROUP,
            user_id=user_id,
            message_id=message_id,
            file=file,
            chat_type="supergroup",
        )
    )
    assert response.status_code == 200
    return message_id


async def group_command(
    bot: RunningBot,
    tg: FakeTelegram,
    text: str,
    user_id: int,
    reply_to: dict[str, Any] | None = None,
) -> int:
    message_id = next_message_id()
    tg.add_message(GROUP, message_id)
    await bot.deliver(
        text_update(
            next_update_id(),
            chat_id=GROUP,
            user_id=user_id,
            message_id=message_id,
            text=text,
            chat_type="supergroup",
            reply_to=reply_to,
        )
    )
    return message_id


async def test_voice_note_in_group_is_transcribed_when_auto_is_on(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    api.set_transcript(voice_bytes, "group words")
    message_id = await group_voice(bot, tg, voice_bytes)
    reply = (await tg.wait_calls("sendMessage", 1))[0]
    assert reply.params["chat_id"] == GROUP
    assert reply.params["reply_parameters"]["message_id"] == message_id
    assert reply.params["text"] == "👤 <b>Ann</b>\ngroup words"
    assert tg.calls("editMessageText") == []  # one message a note: 20 a minute go far


async def test_autotranscribe_by_a_non_admin_is_refused(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    tg.set_admins(GROUP, [ADMIN])
    await group_command(bot, tg, "/autotranscribe off", MEMBER)
    refusal = (await tg.wait_calls("sendMessage", 1))[0]
    assert "admins" in refusal.params["text"]
    await group_voice(bot, tg, voice_bytes)
    await api.wait_calls(1)  # still on: transcribed


async def test_admin_turns_auto_off_then_transcribe_on_request(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    tg.set_admins(GROUP, [ADMIN])
    await group_command(bot, tg, "/autotranscribe off", ADMIN)
    confirm = (await tg.wait_calls("sendMessage", 1))[0]
    assert "off" in confirm.params["text"]

    file = tg.add_file(voice_bytes)
    voice_id = next_message_id()
    tg.add_message(GROUP, voice_id)
    voice = voice_update(
        next_update_id(),
        chat_id=GROUP,
        user_id=MEMBER,
        message_id=voice_id,
        file=file,
        chat_type="supergroup",
    )
    await bot.deliver(voice)
    await asyncio.sleep(0.5)
    assert api.requests == []

    await group_command(bot, tg, "/transcribe", MEMBER, reply_to=voice["message"])
    await api.wait_calls(1)
    reply = (await tg.wait_calls("sendMessage", 2))[1]
    assert reply.params["chat_id"] == GROUP
    assert reply.params["reply_parameters"]["message_id"] == voice_id


async def test_group_model_is_set_by_admins_only(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    from tests.fakes import callback_update

    tg.set_admins(GROUP, [ADMIN])
    await group_command(bot, tg, "/model", MEMBER)
    keyboard = (await tg.wait_calls("sendMessage", 1))[0]
    bot_message = tg.last_message_id(GROUP)
    await bot.deliver(
        callback_update(
            next_update_id(),
            chat_id=GROUP,
            user_id=MEMBER,
            message_id=bot_message,
            data=Callbacks.choose_model("gpt-4o-transcribe"),
            chat_type="supergroup",
        )
    )
    answer = (await tg.wait_calls("answerCallbackQuery", 1))[0]
    assert "admins" in answer.params.get("text", "")
    await bot.deliver(
        callback_update(
            next_update_id(),
            chat_id=GROUP,
            user_id=ADMIN,
            message_id=bot_message,
            data=Callbacks.choose_model("gpt-4o-transcribe"),
            chat_type="supergroup",
        )
    )
    await tg.wait_calls("answerCallbackQuery", 2)
    assert keyboard is not None
    await group_voice(bot, tg, voice_bytes)
    await api.wait_calls(1)
    assert api.requests[0].model == "gpt-4o-transcribe"
