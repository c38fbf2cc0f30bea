"""Under a mini transcript: one tap re-runs it with gpt-4o-transcribe, edited in place."""

from __future__ import annotations

from typing import Any

from bot.callbacks import Callbacks
from tests.conftest import RunningBot, next_update_id, send_voice
from tests.fakes import FakeTelegram, FakeTranscriptionAPI, callback_update
from tests.test_groups import ADMIN, GROUP, MEMBER, group_voice
from tests.test_preferences import say
from tests.test_private_chat import USER


def buttons(tg: FakeTelegram, chat_id: int, message_id: int) -> dict[str, str]:
    markup = tg.messages[(chat_id, message_id)].reply_markup or {}
    return {b["text"]: b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row}


def upgrade_data(tg: FakeTelegram, chat_id: int, message_id: int) -> str:
    (data,) = [d for t, d in buttons(tg, chat_id, message_id).items() if "gpt-4o-transcribe" in t]
    return data


async def press(
    bot: RunningBot, tg: FakeTelegram, chat_id: int, message_id: int, data: str, user_id: int
) -> dict[str, Any]:
    update = callback_update(
        next_update_id(),
        chat_id=chat_id,
        user_id=user_id,
        message_id=message_id,
        data=data,
        chat_type="private" if chat_id > 0 else "supergroup",
        message=tg.message_json(chat_id, message_id),
    )
    assert (await bot.deliver(update)).status_code == 200
    return update


async def test_upgrade_rewrites_the_transcript_in_place_and_the_button_goes(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    api.set_transcript(voice_bytes, "rough words")
    await send_voice(bot, tg, voice_bytes, chat_id=USER)
    edit = (await tg.wait_calls("editMessageText", 1))[0]
    transcript_id = int(edit.params["message_id"])
    data = upgrade_data(tg, USER, transcript_id)

    await press(bot, tg, USER, transcript_id, data, USER)
    await api.wait_calls(2)
    assert [r.model for r in api.requests] == ["gpt-4o-mini-transcribe", "gpt-4o-transcribe"]
    await tg.wait_for(lambda: len(tg.messages[(USER, transcript_id)].history) >= 2)
    assert tg.text_of(USER, transcript_id) == "rough words"
    assert buttons(tg, USER, transcript_id) == {}  # nothing to upgrade to any more
    assert len(tg.calls("sendMessage")) == 1  # the placeholder only: no new message

    await press(bot, tg, USER, transcript_id, data, USER)  # a stale second press
    await tg.wait_calls("answerCallbackQuery", 2)
    assert len(api.requests) == 2


async def test_only_the_asker_or_an_admin_may_upgrade(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    tg.set_admins(GROUP, [ADMIN])
    await group_voice(bot, tg, voice_bytes, user_id=MEMBER)
    reply = (await tg.wait_calls("sendMessage", 1))[0]  # in a group, a short note: one message
    transcript_id = int(reply.result["message_id"])
    data = upgrade_data(tg, GROUP, transcript_id)

    await press(bot, tg, GROUP, transcript_id, data, user_id=999)
    (answer,) = await tg.wait_calls("answerCallbackQuery", 1)
    assert answer.params["show_alert"] is True
    assert "Only the person" in answer.params["text"]
    assert len(api.requests) == 1
    assert upgrade_data(tg, GROUP, transcript_id) == data  # still there for the asker

    await press(bot, tg, GROUP, transcript_id, data, user_id=ADMIN)
    await api.wait_calls(2)
    assert api.requests[1].model == "gpt-4o-transcribe"


async def test_full_model_transcripts_have_no_upgrade_button(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    await press_model(bot, tg)
    await send_voice(bot, tg, voice_bytes, chat_id=USER)
    edit = (await tg.wait_calls("editMessageText", 2))[1]
    assert api.requests[0].model == "gpt-4o-transcribe"
    assert buttons(tg, USER, int(edit.params["message_id"])) == {}


async def press_model(bot: RunningBot, tg: FakeTelegram) -> None:
    """Choose gpt-4o-transcribe through /model's keyboard."""
    await say(bot, tg, "/model")
    keyboard_id = tg.last_message_id(USER)
    await press(bot, tg, USER, keyboard_id, Callbacks.choose_model("gpt-4o-transcribe"), USER)
    await tg.wait_calls("editMessageText", 1)
