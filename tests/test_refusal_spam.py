"""A spammer gets one refusal (or one /help) a minute, then silence: Telegram's budgets are
everyone's. Each refused message is still logged."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from tests.conftest import (
    BotFactory,
    RunningBot,
    next_message_id,
    next_update_id,
    voice_message,
)
from tests.fakes import FakeTelegram, FakeTranscriptionAPI, text_update
from tests.test_access_and_limits import replies_to, send

USER = 701
OTHER_GROUP = -1009876
GROUP = -1005555
# Anonymous group admins post as this one user, in every group (channels as Channel_Bot).
GROUP_ANONYMOUS_BOT = 1087968824


def command_update(
    tg: FakeTelegram, text: str, *, chat_id: int, user_id: int, anonymous: bool = False
) -> dict[str, Any]:
    message_id = next_message_id()
    tg.add_message(chat_id, message_id)
    chat_type = "private" if chat_id > 0 else "supergroup"
    update = text_update(
        next_update_id(),
        chat_id=chat_id,
        user_id=user_id,
        message_id=message_id,
        text=text,
        chat_type=chat_type,
    )
    if anonymous:  # as Telegram sends an anonymous admin's message: sender_chat is the group
        update["message"]["sender_chat"] = update["message"]["chat"]
    return update


async def deliver_all(bot: RunningBot, updates: list[dict[str, Any]]) -> None:
    for update in updates:
        assert (await bot.deliver(update)).status_code == 200
    await asyncio.sleep(0.5)  # replies go out beside the webhook's answer


def refusal_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("refused ")]


async def test_a_stranger_who_spams_is_told_once_and_each_message_is_logged(
    bot_factory: BotFactory, tg: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with bot_factory(allowed_user_ids="1") as bot:
        await deliver_all(
            bot, [command_update(tg, f"hello {n}", chat_id=USER, user_id=USER) for n in range(6)]
        )
    assert replies_to(tg, USER) == ["Sorry, this bot is private. Ask its owner for access."]
    lines = refusal_lines(caplog)
    assert len(lines) == 6
    assert sum(line.endswith("(told)") for line in lines) == 1


async def test_a_rate_limited_user_is_told_once_a_minute(
    bot_factory: BotFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    voice_bytes: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    async with bot_factory(user_jobs_per_minute=1) as bot:
        for _ in range(5):
            await send(bot, tg, voice_bytes, user=USER)
        await api.wait_calls(1)
        await asyncio.sleep(0.5)
    refusals = [t for t in replies_to(tg, USER) if "again in" in t or "limit" in t]
    assert len(refusals) == 1, replies_to(tg, USER)
    lines = refusal_lines(caplog)
    assert len(lines) == 4
    # The operator reads which limit it was, as a value; the user's sentence is for the user.
    assert all("OverRate(retry_in=" in line and "again in" not in line for line in lines), lines


async def test_help_spam_is_answered_once_a_minute(
    bot_factory: BotFactory, tg: FakeTelegram
) -> None:
    async with bot_factory() as bot:
        await deliver_all(
            bot, [command_update(tg, "/help", chat_id=USER, user_id=USER) for _ in range(5)]
        )
        await deliver_all(bot, [command_update(tg, "/start", chat_id=USER, user_id=USER)])
    replies = replies_to(tg, USER)
    assert len(replies) == 2, replies  # one /help, one /start


async def test_anonymous_admins_are_limited_per_chat_not_across_groups(
    bot_factory: BotFactory, tg: FakeTelegram
) -> None:
    async with bot_factory(allowed_chat_ids=str(USER)) as bot:
        updates = [
            command_update(tg, "/help", chat_id=chat, user_id=GROUP_ANONYMOUS_BOT, anonymous=True)
            for chat in (GROUP, GROUP, OTHER_GROUP, GROUP, OTHER_GROUP)
        ]
        await deliver_all(bot, updates)
    assert len(replies_to(tg, GROUP)) == 1
    assert len(replies_to(tg, OTHER_GROUP)) == 1


async def test_anonymous_admins_limits_are_per_chat(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    async with bot_factory(user_jobs_per_minute=1) as bot:
        for chat in (GROUP, OTHER_GROUP):
            update = voice_message(
                tg,
                voice_bytes,
                chat_id=chat,
                user_id=GROUP_ANONYMOUS_BOT,
                chat_type="supergroup",
            )
            update["message"]["sender_chat"] = update["message"]["chat"]
            assert (await bot.deliver(update)).status_code == 200
        await api.wait_calls(2)  # one a minute each: in its own group
