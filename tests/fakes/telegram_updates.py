"""Builders of Update dicts shaped like the ones Telegram sends.

Plain dicts: hand them to FakeTelegram.push_update (polling) or post them to the bot's webhook
after FakeTelegram.register_update, so the fake knows the messages exist.
"""

from __future__ import annotations

import time
from typing import Any

from tests.fakes.telegram_html import utf16_len
from tests.fakes.telegram_models import FileInfo

BOT_ID = 123456
BOT_USERNAME = "transcribot_test"

_MEDIA_KINDS = ("voice", "audio", "video_note", "video", "document")
_DEFAULT_MIME = {
    "voice": "audio/ogg",
    "audio": "audio/mpeg",
    "video": "video/mp4",
    "document": "audio/ogg",
}
_DEFAULT_NAME = {"audio": "audio.mp3", "video": "video.mp4", "document": "recording.ogg"}


def user_json(user_id: int, first_name: str = "Ann", language_code: str = "en") -> dict[str, Any]:
    return {
        "id": user_id,
        "is_bot": False,
        "first_name": first_name,
        "language_code": language_code,
    }


def bot_user_json(bot_id: int = BOT_ID, username: str = BOT_USERNAME) -> dict[str, Any]:
    return {"id": bot_id, "is_bot": True, "first_name": "Transcribot", "username": username}


def chat_json(chat_id: int, chat_type: str = "private", first_name: str = "Ann") -> dict[str, Any]:
    """A Chat: groups and supergroups have negative ids and a title."""
    if chat_type == "private":
        return {"id": chat_id, "type": "private", "first_name": first_name}
    return {"id": chat_id, "type": chat_type, "title": f"Group {chat_id}"}


def _user_message(
    *,
    chat_id: int,
    user_id: int,
    message_id: int,
    chat_type: str,
    first_name: str,
    language_code: str,
) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "date": int(time.time()),
        "chat": chat_json(chat_id, chat_type, first_name),
        "from": user_json(user_id, first_name, language_code),
    }


def text_update(
    update_id: int,
    *,
    chat_id: int,
    user_id: int,
    message_id: int,
    text: str,
    chat_type: str = "private",
    reply_to: dict[str, Any] | None = None,
    first_name: str = "Ann",
    language_code: str = "en",
) -> dict[str, Any]:
    """A text message; "/cmd args" gets the bot_command entity Telegram adds."""
    message = _user_message(
        chat_id=chat_id,
        user_id=user_id,
        message_id=message_id,
        chat_type=chat_type,
        first_name=first_name,
        language_code=language_code,
    )
    message["text"] = text
    if text.startswith("/"):
        command = text.split(maxsplit=1)[0]
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": utf16_len(command)}]
    if reply_to is not None:
        message["reply_to_message"] = reply_to
    return {"update_id": update_id, "message": message}


def media_update(
    update_id: int,
    kind: str,
    *,
    chat_id: int,
    user_id: int,
    message_id: int,
    file: FileInfo,
    duration: int = 3,
    chat_type: str = "private",
    first_name: str = "Ann",
    language_code: str = "en",
    mime_type: str | None = None,
    file_name: str | None = None,
    caption: str | None = None,
    forward_origin: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A message carrying a voice, audio, video_note, video or document."""
    if kind not in _MEDIA_KINDS:
        raise ValueError(f"kind must be one of {_MEDIA_KINDS}, not {kind!r}")
    media: dict[str, Any] = {
        "file_id": file.file_id,
        "file_unique_id": file.file_unique_id,
        "file_size": file.file_size,
    }
    if kind != "document":
        media["duration"] = duration
    if kind == "video_note":
        media["length"] = 240  # video notes are square and carry no mime type
    else:
        media["mime_type"] = mime_type or _DEFAULT_MIME[kind]
    if kind == "video":
        media |= {"width": 640, "height": 360}
    if kind in _DEFAULT_NAME:
        media["file_name"] = file_name or _DEFAULT_NAME[kind]
    message = _user_message(
        chat_id=chat_id,
        user_id=user_id,
        message_id=message_id,
        chat_type=chat_type,
        first_name=first_name,
        language_code=language_code,
    )
    message[kind] = media
    if caption is not None:
        message["caption"] = caption
    if forward_origin is not None:
        message["forward_origin"] = forward_origin
    return {"update_id": update_id, "message": message}


def voice_update(
    update_id: int,
    *,
    chat_id: int,
    user_id: int,
    message_id: int,
    file: FileInfo,
    duration: int = 3,
    chat_type: str = "private",
    first_name: str = "Ann",
    language_code: str = "en",
    mime_type: str = "audio/ogg",
    forward_origin: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return media_update(
        update_id,
        "voice",
        chat_id=chat_id,
        user_id=user_id,
        message_id=message_id,
        file=file,
        duration=duration,
        chat_type=chat_type,
        first_name=first_name,
        language_code=language_code,
        mime_type=mime_type,
        forward_origin=forward_origin,
    )


def callback_update(
    update_id: int,
    *,
    chat_id: int,
    user_id: int,
    message_id: int,
    data: str,
    from_first_name: str = "Ann",
    language_code: str = "en",
    chat_type: str = "private",
    message: dict[str, Any] | None = None,
    callback_query_id: str | None = None,
) -> dict[str, Any]:
    """A button press on the bot's message `message_id`.

    Pass message=tg.message_json(chat_id, message_id) to carry the message as the bot left it;
    by default a minimal message from the bot is used.
    """
    if message is None:
        message = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": chat_json(chat_id, chat_type, from_first_name),
            "from": bot_user_json(),
            "text": "…",
        }
    query = {
        "id": callback_query_id or f"cq{update_id}",
        "from": user_json(user_id, from_first_name, language_code),
        "chat_instance": f"ci{chat_id}",
        "message": message,
        "data": data,
    }
    return {"update_id": update_id, "callback_query": query}
