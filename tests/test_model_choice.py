"""/model: an inline keyboard with the two models; the choice is stored and survives restarts."""

from __future__ import annotations

from tests.conftest import BotFactory, next_message_id, next_update_id, send_voice
from tests.fakes import FakeTelegram, FakeTranscriptionAPI, callback_update, text_update
from tests.test_private_chat import USER


async def test_model_choice_persists_across_a_restart(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    async with bot_factory() as bot:
        message_id = next_message_id()
        tg.add_message(USER, message_id)
        await bot.deliver(
            text_update(
                next_update_id(), chat_id=USER, user_id=USER, message_id=message_id, text="/model"
            )
        )
        keyboard_msg = (await tg.wait_calls("sendMessage", 1))[0]
        rows = keyboard_msg.params["reply_markup"]["inline_keyboard"]
        labels = [row[0]["text"] for row in rows]
        assert any(label.startswith("✅") and "gpt-4o-mini-transcribe" in label for label in labels)
        full = next(
            row[0]["callback_data"]
            for row in rows
            if "gpt-4o-transcribe" in row[0]["text"] and "mini" not in row[0]["text"]
        )
        bot_message_id = tg.last_message_id(USER)
        await bot.deliver(
            callback_update(
                next_update_id(), chat_id=USER, user_id=USER, message_id=bot_message_id, data=full
            )
        )
        await tg.wait_calls("answerCallbackQuery", 1)
        await tg.wait_calls("editMessageText", 1)

    tg.requests.clear()
    async with bot_factory() as bot:
        await send_voice(bot, tg, voice_bytes, chat_id=USER)
        await api.wait_calls(1)
        assert api.requests[-1].model == "gpt-4o-transcribe"
