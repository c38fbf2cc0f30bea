"""Allow lists, per-user rate limit, daily audio quota, admin-only /stats."""

from __future__ import annotations

import asyncio
import re

from tests.conftest import BotFactory, RunningBot, next_message_id, next_update_id, send_voice
from tests.fakes import FakeTelegram, FakeTranscriptionAPI, text_update
from tests.test_groups import ADMIN as GROUP_ADMIN
from tests.test_groups import GROUP, MEMBER, group_command, group_voice
from tests.test_upgrade_button import press, upgrade_data

USER = 501
OTHER = 502
ADMIN = 503


async def send(
    bot: RunningBot,
    tg: FakeTelegram,
    data: bytes,
    *,
    user: int,
    chat: int | None = None,
    duration: int = 3,
    chat_type: str = "private",
) -> int:
    chat_id = user if chat is None else chat
    return await send_voice(
        bot, tg, data, chat_id=chat_id, user_id=user, duration=duration, chat_type=chat_type
    )


def replies_to(tg: FakeTelegram, chat_id: int) -> list[str]:
    return [m.text or "" for m in tg.bot_messages(chat_id)]


async def test_users_not_on_the_allow_list_get_one_polite_refusal_and_no_transcription(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    async with bot_factory(allowed_user_ids=str(USER)) as bot:
        await send(bot, tg, voice_bytes, user=OTHER)
        await tg.wait_calls("sendMessage", 1)
        await send(bot, tg, voice_bytes, user=USER)
        await api.wait_calls(1)
        await tg.wait_for(
            lambda: (
                len(replies_to(tg, USER)) == 1 and replies_to(tg, USER)[0].startswith("transcript")
            )
        )
    assert replies_to(tg, OTHER) == ["Sorry, this bot is private. Ask its owner for access."]
    assert len(api.requests) == 1


async def test_allowed_chat_lets_everyone_in_it_use_the_bot(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    group = -100777
    async with bot_factory(allowed_chat_ids=str(group)) as bot:
        await send(bot, tg, voice_bytes, user=OTHER, chat=group, chat_type="supergroup")
        await api.wait_calls(1)
        await send(bot, tg, voice_bytes, user=OTHER)  # the same person privately: refused
        await tg.wait_for(lambda: len(replies_to(tg, OTHER)) == 1)
        await asyncio.sleep(0.3)
    assert len(api.requests) == 1
    assert "private" in replies_to(tg, OTHER)[0]


async def test_per_minute_limit_tells_when_it_frees_and_admins_are_exempt(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    async with bot_factory(user_jobs_per_minute=2, admin_user_ids=str(ADMIN)) as bot:
        for _ in range(3):
            await send(bot, tg, voice_bytes, user=USER)
        for _ in range(3):
            await send(bot, tg, voice_bytes, user=ADMIN)
        await api.wait_calls(4)
        await tg.wait_for(lambda: any("Try again in" in t for t in replies_to(tg, USER)))
        await asyncio.sleep(0.3)
    assert len(api.requests) == 5  # 2 for the user, 3 for the admin
    refusal = next(t for t in replies_to(tg, USER) if "Try again" in t)
    seconds = int(refusal.split("Try again in ")[1].split(" s")[0])
    assert 50 <= seconds <= 60


async def test_daily_quota_says_when_it_resets(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    async with bot_factory(user_daily_audio_seconds=4) as bot:
        await send(bot, tg, voice_bytes, user=USER, duration=3)
        await api.wait_calls(1)
        await send(bot, tg, voice_bytes, user=USER, duration=3)  # 2-3 s used + 3 s > 4 s
        await tg.wait_for(lambda: any("resets at 00:00 UTC" in t for t in replies_to(tg, USER)))
    assert len(api.requests) == 1


async def test_stats_is_for_admins_only(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    async with bot_factory(admin_user_ids=str(ADMIN)) as bot:
        api.set_transcript(voice_bytes, "counted")
        await send(bot, tg, voice_bytes, user=USER)
        await tg.wait_for(lambda: "counted" in replies_to(tg, USER))
        api.fail_next(400, message="Audio file might be corrupted or unsupported")
        await send(bot, tg, voice_bytes, user=USER)
        await tg.wait_for(lambda: any("couldn't process" in t for t in replies_to(tg, USER)))
        for user in (USER, ADMIN):
            message_id = next_message_id()
            tg.add_message(user, message_id)
            await bot.deliver(
                text_update(
                    next_update_id(),
                    chat_id=user,
                    user_id=user,
                    message_id=message_id,
                    text="/stats",
                )
            )
        await tg.wait_for(
            lambda: (
                len(replies_to(tg, ADMIN)) == 1 and any("admins" in t for t in replies_to(tg, USER))
            )
        )
    stats = replies_to(tg, ADMIN)[0]
    assert "done: 1" in stats
    assert "failed: 1" in stats
    assert re.search(r"gpt-4o-mini-transcribe: 0\.0[35]\b", stats)  # 2-3 s of audio
    assert re.search(r"#\d+: transcription API, log ref\. [0-9a-f]{6}", stats)


async def test_a_group_admin_not_on_the_allow_lists_cannot_upgrade_a_transcript(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    tg.set_admins(GROUP, [GROUP_ADMIN])
    async with bot_factory(allowed_user_ids=str(MEMBER)) as bot:
        await group_voice(bot, tg, voice_bytes, user_id=MEMBER)
        reply = (await tg.wait_calls("sendMessage", 1))[0]  # a short note: one message
        transcript_id = int(reply.result["message_id"])
        data = upgrade_data(tg, GROUP, transcript_id)

        await press(bot, tg, GROUP, transcript_id, data, user_id=GROUP_ADMIN)
        (answer,) = await tg.wait_calls("answerCallbackQuery", 1)
        await asyncio.sleep(0.3)
    assert answer.params["show_alert"] is True
    assert "private" in answer.params["text"]
    assert [r.model for r in api.requests] == ["gpt-4o-mini-transcribe"]
    assert upgrade_data(tg, GROUP, transcript_id) == data  # still there for the asker


async def test_a_group_admin_not_on_the_allow_lists_cannot_change_the_groups_model(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    tg.set_admins(GROUP, [GROUP_ADMIN])
    async with bot_factory(allowed_user_ids=str(MEMBER)) as bot:
        await group_command(bot, tg, "/model", MEMBER)
        keyboard = (await tg.wait_calls("sendMessage", 1))[0]
        full = next(
            button["callback_data"]
            for row in keyboard.params["reply_markup"]["inline_keyboard"]
            for button in row
            if "gpt-4o-transcribe" in button["text"] and "mini" not in button["text"]
        )
        await press(bot, tg, GROUP, tg.last_message_id(GROUP), full, user_id=GROUP_ADMIN)
        (answer,) = await tg.wait_calls("answerCallbackQuery", 1)
        await group_voice(bot, tg, voice_bytes, user_id=MEMBER)
        await api.wait_calls(1)
    assert "private" in answer.params["text"]
    assert not tg.calls("getChatMember")  # refused before anyone asked who is an admin
    assert api.requests[0].model == "gpt-4o-mini-transcribe"


async def test_strangers_in_a_group_hear_only_about_their_commands(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    async with bot_factory(allowed_user_ids=str(MEMBER)) as bot:
        await group_voice(bot, tg, voice_bytes, user_id=OTHER)
        await group_command(bot, tg, "/help@someotherbot", OTHER)
        await group_command(bot, tg, "/help", OTHER)
        await tg.wait_calls("sendMessage", 1)
        await asyncio.sleep(0.3)
    assert replies_to(tg, GROUP) == ["Sorry, this bot is private. Ask its owner for access."]
    assert api.requests == []
