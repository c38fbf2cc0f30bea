"""Limits hold under concurrency: the quota and the per-minute limit are checked and taken in
the same atomic step that queues the job, on SQLite and on Redis."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    BACKENDS,
    BotFactory,
    RunningBot,
    backend_url,
    make_audio,
    next_message_id,
    next_update_id,
    voice_message,
)
from tests.fakes import FakeTelegram, FakeTranscriptionAPI, media_update

USER = 611
ANONYMOUS_ADMIN = 1087968824  # GroupAnonymousBot: the same id in every group
QUOTA_TEXT = "resets at 00:00 UTC"


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return backend_url(request, request.param, tmp_path)


def replies(tg: FakeTelegram, chat_id: int) -> list[str]:
    return [m.text or "" for m in tg.bot_messages(chat_id)]


def audio_document(tg: FakeTelegram, data: bytes, chat_id: int) -> dict[str, Any]:
    """An audio file sent "as a file": a document, which declares no duration."""
    file = tg.add_file(data)
    message_id = next_message_id()
    tg.add_message(chat_id, message_id)
    return media_update(
        next_update_id(),
        "document",
        chat_id=chat_id,
        user_id=chat_id,
        message_id=message_id,
        file=file,
        mime_type="audio/ogg",
        file_name="memo.ogg",
    )


async def deliver_all(bot: RunningBot, updates: list[dict[str, Any]]) -> None:
    answers = await asyncio.gather(*(bot.deliver(u) for u in updates))
    assert [a.status_code for a in answers] == [200] * len(updates)


async def test_eight_documents_at_once_stay_within_the_daily_quota(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, audio_dir: Path
) -> None:
    # 30 s each at 24 kbit/s: about 23 s each by their size, until measured.
    files = [
        make_audio(
            audio_dir / f"quota-{i}.ogg",
            *("-f", "lavfi", "-i", f"sine=frequency={300 + 40 * i}:duration=30"),
            *("-ac", "1", "-c:a", "libopus", "-b:a", "24k", "-f", "ogg"),
        ).read_bytes()
        for i in range(8)
    ]
    async with bot_factory(user_daily_audio_seconds=60) as bot:
        await deliver_all(bot, [audio_document(tg, data, USER) for data in files])
        await tg.wait_for(lambda: any(QUOTA_TEXT in t for t in replies(tg, USER)), timeout=60)
        await tg.wait_for(
            lambda: any(t.startswith("transcript") for t in replies(tg, USER)), timeout=60
        )
        await asyncio.sleep(2.0)  # every accepted one is done by now
    transcribed = [t for t in replies(tg, USER) if t.startswith("transcript")]
    assert 1 <= len(transcribed) <= 2, replies(tg, USER)
    # The others were refused (told once a minute: one message for all of them).
    assert [t for t in replies(tg, USER) if QUOTA_TEXT in t] == [
        next(t for t in replies(tg, USER) if QUOTA_TEXT in t)
    ]
    assert len(api.requests) == len(transcribed)  # nothing past the quota reached the API


async def test_notes_sent_at_once_stay_within_the_per_minute_limit(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    async with bot_factory(user_jobs_per_minute=2) as bot:
        notes = [voice_message(tg, voice_bytes, chat_id=USER) for _ in range(6)]
        await deliver_all(bot, notes)
        await tg.wait_for(
            lambda: sum(t.startswith("transcript") for t in replies(tg, USER)) == 2, timeout=30
        )
        await asyncio.sleep(1.0)
    assert sum("Try again in" in t for t in replies(tg, USER)) == 1  # told once a minute
    assert len(api.requests) == 2


def anonymous_note(tg: FakeTelegram, data: bytes, group: int) -> dict[str, Any]:
    """A voice note an anonymous admin posts: it comes from GroupAnonymousBot as the group."""
    update = voice_message(tg, data, chat_id=group, user_id=ANONYMOUS_ADMIN, chat_type="supergroup")
    update["message"]["sender_chat"] = {"id": group, "type": "supergroup", "title": "G"}
    return update


async def test_anonymous_admins_have_limits_per_group_not_one_for_all_groups(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    first, second = -100_611, -100_612
    async with bot_factory(user_jobs_per_minute=1, auto_transcribe_groups=True) as bot:
        await deliver_all(bot, [anonymous_note(tg, voice_bytes, first)])
        await tg.wait_for(lambda: any("transcript " in t for t in replies(tg, first)), timeout=20)
        await deliver_all(bot, [anonymous_note(tg, voice_bytes, second)])
        await deliver_all(bot, [anonymous_note(tg, voice_bytes, first)])
        await tg.wait_for(lambda: any("transcript " in t for t in replies(tg, second)), timeout=20)
        await tg.wait_for(lambda: any("Try again in" in t for t in replies(tg, first)))
    assert len(api.requests) == 2  # one in each group; the second in the first group waits
