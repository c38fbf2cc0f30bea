"""The same file (forwarded anywhere) is transcribed once per model and hints, then cached."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.conftest import BotFactory, RunningBot, next_message_id, next_update_id
from tests.fakes import FakeTelegram, FakeTranscriptionAPI, voice_update
from tests.fakes.telegram_models import Call
from tests.test_groups import GROUP
from tests.test_preferences import say
from tests.test_private_chat import USER
from tests.test_upgrade_button import press_model

OTHER_USER = 43


async def forward(
    bot: RunningBot, tg: FakeTelegram, data: bytes, chat_id: int, *, unique: str = "same-note"
) -> int:
    """The same voice note (same file_unique_id, a new file_id) arriving in `chat_id`."""
    message_id = next_message_id()
    tg.add_message(chat_id, message_id)
    file = tg.add_file(data, file_unique_id=unique)
    chat_type = "supergroup" if chat_id < 0 else "private"
    update = voice_update(
        next_update_id(),
        chat_id=chat_id,
        user_id=OTHER_USER if chat_id < 0 else chat_id,
        message_id=message_id,
        file=file,
        chat_type=chat_type,
    )
    assert (await bot.deliver(update)).status_code == 200
    return message_id


async def transcripts(tg: FakeTelegram, count: int) -> list[Call]:
    """Wait for `count` transcripts (a message offering the upgrade button); all of them."""

    def found() -> list[Call]:
        calls = [*tg.calls("sendMessage"), *tg.calls("editMessageText")]
        return sorted((c for c in calls if c.ok and "up:" in str(c.params)), key=lambda c: c.at)

    await tg.wait_for(lambda: len(found()) >= count)
    return found()


async def test_a_forwarded_note_is_answered_from_the_cache(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    api.set_transcript(voice_bytes, "said once")
    await forward(bot, tg, voice_bytes, USER)
    await transcripts(tg, 1)
    downloads = len(tg.calls("getFile"))

    await forward(bot, tg, voice_bytes, GROUP)
    replies = await transcripts(tg, 2)
    assert replies[1].params["chat_id"] == GROUP
    assert replies[1].params["text"].endswith("said once")
    assert len(api.requests) == 1  # one API call, two replies
    assert len(tg.calls("getFile")) == downloads  # and no second download

    usage = await say(bot, tg, "/usage", user_id=OTHER_USER)
    assert "Nothing yet" in usage  # the cached answer cost nothing


async def test_another_model_or_hint_is_a_new_transcription(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    await forward(bot, tg, voice_bytes, USER)
    await api.wait_calls(1)
    await transcripts(tg, 1)
    await say(bot, tg, "/language en")
    await forward(bot, tg, voice_bytes, USER)
    await api.wait_calls(2)
    await transcripts(tg, 2)
    await say(bot, tg, "/language auto")
    await forward(bot, tg, voice_bytes, USER)  # the first one's model and hints again
    await transcripts(tg, 3)
    assert len(api.requests) == 2
    await press_model(bot, tg)  # gpt-4o-transcribe: another transcription
    await forward(bot, tg, voice_bytes, USER)
    await api.wait_calls(3)
    assert [r.model for r in api.requests][-1] == "gpt-4o-transcribe"


async def test_no_cache_keeps_no_transcript(
    bot_factory: BotFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    voice_bytes: bytes,
    tmp_path: Path,
) -> None:
    api.set_transcript(voice_bytes, "private words")
    async with bot_factory(cache_transcripts_hours=0) as bot:
        await forward(bot, tg, voice_bytes, USER)
        await transcripts(tg, 1)
        await forward(bot, tg, voice_bytes, USER)
        await transcripts(tg, 2)
    assert len(api.requests) == 2
    with sqlite3.connect(tmp_path / "bot.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM transcripts").fetchone() == (0,)
        dumped = "\n".join(db.iterdump())
    assert "private words" not in dumped
