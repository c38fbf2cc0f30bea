"""Fake Telegram Bot API and fake transcription API servers for tests and benchmarks."""

from tests.fakes.telegram import FakeTelegram
from tests.fakes.telegram_models import Call, FileInfo, StoredMessage, WebhookState
from tests.fakes.telegram_updates import (
    bot_user_json,
    callback_update,
    chat_json,
    media_update,
    text_update,
    user_json,
    voice_update,
)
from tests.fakes.transcription import FakeTranscriptionAPI, OpenAIError, TranscriptionCall

__all__ = [
    "Call",
    "FakeTelegram",
    "FakeTranscriptionAPI",
    "FileInfo",
    "OpenAIError",
    "StoredMessage",
    "TranscriptionCall",
    "WebhookState",
    "bot_user_json",
    "callback_update",
    "chat_json",
    "media_update",
    "text_update",
    "user_json",
    "voice_update",
]
