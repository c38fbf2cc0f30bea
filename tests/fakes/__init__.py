"""Fake Telegram Bot API and fake OpenAI-compatible API servers for tests and benchmarks."""

from tests.fakes.chat_completions import ChatCall
from tests.fakes.openai_errors import OpenAIError
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
from tests.fakes.transcription import FakeTranscriptionAPI, TranscriptionCall

__all__ = [
    "Call",
    "ChatCall",
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
