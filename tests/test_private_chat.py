"""A person sends the bot a voice note in a private chat."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import (
    BACKENDS,
    BotFactory,
    RunningBot,
    backend_url,
    next_message_id,
    next_update_id,
    send_voice,
)
from tests.fakes import FakeTelegram, FakeTranscriptionAPI

USER = 42


@pytest.fixture
async def bot(bot_factory: BotFactory) -> AsyncIterator[RunningBot]:
    """With the default PLACEHOLDER_AFTER_SECONDS: a short note is answered in one message."""
    async with bot_factory(placeholder_after_seconds=1.5) as running:
        yield running


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every test here runs on SQLite and on Redis."""
    return backend_url(request, request.param, tmp_path)


async def test_voice_note_gets_a_reply_with_its_transcript(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    api.set_transcript(voice_bytes, "Hello from the voice note")
    message_id = await send_voice(bot, tg, voice_bytes, chat_id=USER)

    # Done within PLACEHOLDER_AFTER_SECONDS: the transcript is the one message, no placeholder.
    reply = (await tg.wait_calls("sendMessage", 1))[0]
    assert reply.params["reply_parameters"]["message_id"] == message_id
    assert reply.params["text"] == "Hello from the voice note"
    assert tg.text_of(USER, reply.result["message_id"]) == "Hello from the voice note"
    assert tg.calls("editMessageText") == []

    upload = api.requests[0]
    assert upload.sha256 == hashlib.sha256(voice_bytes).hexdigest()  # exact bytes, no re-encode
    assert upload.filename.endswith(".ogg")
    assert upload.model == "gpt-4o-mini-transcribe"


async def test_html_hostile_transcript_arrives_intact(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    api.set_transcript(voice_bytes, "1 < 2 & <b>bold</b> &amp;")
    await send_voice(bot, tg, voice_bytes, chat_id=USER)
    reply = (await tg.wait_calls("sendMessage", 1))[0]
    assert tg.text_of(USER, reply.result["message_id"]) == "1 < 2 & <b>bold</b> &amp;"


async def test_long_transcript_is_split_under_the_limit(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    words = [f"слово{i}" for i in range(2500)]  # ~22,000 characters, non-Latin
    api.set_transcript(voice_bytes, " ".join(words))
    await send_voice(bot, tg, voice_bytes, chat_id=USER)
    await tg.wait_calls("sendDocument", 1)
    texts = [c.params["text"] for c in tg.calls("sendMessage")]
    assert len(texts) > 4
    assert all(len(t) <= 4096 for t in texts)
    assert " ".join(texts).split() == words
    document = tg.calls("sendDocument")[0]
    assert document.files["document"].decode() == " ".join(words)


async def test_empty_transcript_says_no_speech(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    api.set_transcript(voice_bytes, "")
    await send_voice(bot, tg, voice_bytes, chat_id=USER)
    reply = (await tg.wait_calls("sendMessage", 1))[0]
    assert "No speech recognised" in reply.params["text"]


async def test_start_and_help_answer(bot: RunningBot, tg: FakeTelegram) -> None:
    from tests.fakes import text_update

    for command in ("/start", "/help"):
        message_id = next_message_id()
        tg.add_message(USER, message_id)
        await bot.deliver(
            text_update(
                next_update_id(), chat_id=USER, user_id=USER, message_id=message_id, text=command
            )
        )
    sent = await tg.wait_calls("sendMessage", 2)
    assert "voice note" in sent[0].params["text"]
    assert "gpt-4o-mini-transcribe" in sent[1].params["text"]


async def test_commands_are_registered_and_webhook_set(bot: RunningBot, tg: FakeTelegram) -> None:
    commands = tg.calls("setMyCommands")[0].params["commands"]
    names = {c["command"] for c in commands}
    assert {"start", "help", "model", "autotranscribe", "transcribe"} <= names
    hook = tg.calls("setWebhook")[0].params
    assert hook["url"] == "https://bot.example.com/telegram/hook"
    assert hook["secret_token"] == bot.settings.webhook_secret.get_secret_value()  # type: ignore[union-attr]
    assert set(hook["allowed_updates"]) >= {"message", "callback_query"}
