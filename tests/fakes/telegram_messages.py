"""The messages of every chat, and the Bot API methods that create, edit and delete them."""

from __future__ import annotations

import mimetypes
import time
from pathlib import PurePosixPath
from typing import Any

from tests.fakes.telegram_files import FileStore
from tests.fakes.telegram_models import StoredMessage, Upload
from tests.fakes.telegram_rules import (
    CAPTION_LIMIT,
    MESSAGE_LIMIT,
    bad_request,
    inline_keyboard,
    render_text,
)

_NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
_SUPERGROUP_IDS = -1_000_000_000_000  # supergroup and channel ids are -100xxxxxxxxxx


def default_chat(chat_id: int) -> dict[str, Any]:
    """The chat Telegram would describe for an id the fake has not seen in an update."""
    if chat_id > 0:
        return {"id": chat_id, "type": "private", "first_name": f"User {chat_id}"}
    kind = "supergroup" if chat_id < _SUPERGROUP_IDS else "group"
    return {"id": chat_id, "type": kind, "title": f"Group {chat_id}"}


def chat_id_of(params: dict[str, Any]) -> int:
    chat_id = params.get("chat_id")
    if chat_id is None or chat_id == "":
        raise bad_request("chat_id is empty")
    if not isinstance(chat_id, int) or isinstance(chat_id, bool):
        raise bad_request("chat not found")  # @usernames are not supported by the fake
    return chat_id


class MessageStore:
    def __init__(self, bot_user: dict[str, Any]) -> None:
        self.bot_user = bot_user
        self.messages: dict[tuple[int, int], StoredMessage] = {}
        self.chats: dict[int, dict[str, Any]] = {}
        self.users: dict[int, dict[str, Any]] = {}
        self.last_id: dict[int, int] = {}

    def knows(self, chat_id: int) -> bool:
        """Whether the chat was seen: a person's private chat exists once they wrote the bot."""
        return chat_id in self.chats or chat_id in self.users or chat_id in self.last_id

    def chat_json(self, chat_id: int) -> dict[str, Any]:
        return self.chats.get(chat_id) or default_chat(chat_id)

    def add_message(
        self,
        chat_id: int,
        message_id: int | None = None,
        *,
        text: str | None = None,
        from_user: dict[str, Any] | None = None,
        from_bot: bool = False,
    ) -> StoredMessage:
        last = self.last_id.get(chat_id, 0)
        if message_id is None:
            message_id = last + 1
        self.last_id[chat_id] = max(last, message_id)
        key = (chat_id, message_id)
        if key not in self.messages:
            self.messages[key] = StoredMessage(
                chat_id=chat_id,
                message_id=message_id,
                date=int(time.time()),
                from_bot=from_bot,
                text=text,
                sent_text=text,
                from_user=None if from_bot else from_user,
            )
        return self.messages[key]

    def register(self, message: dict[str, Any]) -> None:
        """Remember a message from an update (and the message it replies to)."""
        chat = message.get("chat")
        if not isinstance(chat, dict) or "message_id" not in message:
            return
        self.chats.setdefault(chat["id"], chat)
        sender = message.get("from")
        from_bot = isinstance(sender, dict) and (
            sender.get("id") == self.bot_user["id"] or bool(sender.get("is_bot"))
        )
        if isinstance(sender, dict) and not from_bot:
            self.users.setdefault(sender["id"], sender)
        if isinstance(message.get("reply_to_message"), dict):
            self.register(message["reply_to_message"])
        stored = self.add_message(
            chat["id"],
            message["message_id"],
            text=message.get("text"),
            from_user=sender if isinstance(sender, dict) else None,
            from_bot=from_bot,
        )
        if stored.text is not None and not stored.entities:
            stored.entities = list(message.get("entities", []))

    def message_json(self, chat_id: int, message_id: int, *, nested: bool = True) -> dict[str, Any]:
        """The Message object Telegram would return for a stored message."""
        m = self.messages[(chat_id, message_id)]
        out: dict[str, Any] = {"message_id": message_id, "date": m.date}
        if m.from_bot:
            out["from"] = self.bot_user
        elif m.from_user is not None:
            out["from"] = m.from_user
        out["chat"] = self.chat_json(chat_id)
        if m.edit_date is not None:
            out["edit_date"] = m.edit_date
        reply = self.messages.get((chat_id, m.reply_to)) if m.reply_to is not None else None
        if nested and reply is not None:
            out["reply_to_message"] = self.message_json(chat_id, reply.message_id, nested=False)
        if m.text is not None:
            out["text"] = m.text
            if m.entities:
                out["entities"] = m.entities
        if m.document is not None:
            out["document"] = m.document
        if m.caption:
            out["caption"] = m.caption
            if m.caption_entities:
                out["caption_entities"] = m.caption_entities
        if m.reply_markup is not None:
            out["reply_markup"] = m.reply_markup
        return out

    def send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = chat_id_of(params)
        text, entities = render_text(
            params.get("text"),
            params.get("parse_mode"),
            params.get("entities"),
            limit=MESSAGE_LIMIT,
            too_long="message is too long",
            required=True,
        )
        markup = inline_keyboard(params.get("reply_markup"))
        message = self._new_message(chat_id, params)
        message.text, message.entities, message.reply_markup = text, entities, markup
        message.sent_text, message.parse_mode = params.get("text"), params.get("parse_mode")
        return self.message_json(chat_id, message.message_id)

    def send_document(
        self, params: dict[str, Any], uploads: dict[str, Upload], files: FileStore
    ) -> dict[str, Any]:
        chat_id = chat_id_of(params)
        caption, entities = render_text(
            params.get("caption"),
            params.get("parse_mode"),
            params.get("caption_entities"),
            limit=CAPTION_LIMIT,
            too_long="message caption is too long",
            required=False,
        )
        markup = inline_keyboard(params.get("reply_markup"))
        document = self._document(params.get("document"), uploads, files)
        message = self._new_message(chat_id, params)
        message.document, message.caption, message.caption_entities = document, caption, entities
        message.reply_markup = markup
        return self.message_json(chat_id, message.message_id)

    def edit_text(self, params: dict[str, Any]) -> dict[str, Any]:
        message = self._editable(params)
        text, entities = render_text(
            params.get("text"),
            params.get("parse_mode"),
            params.get("entities"),
            limit=MESSAGE_LIMIT,
            too_long="message is too long",
            required=True,
        )
        # Without reply_markup an edit removes the inline keyboard, as on Telegram.
        markup = inline_keyboard(params.get("reply_markup"), inline_only=True)
        if message.text is None:
            raise bad_request("there is no text in the message to edit")
        if (text, entities, markup) == (message.text, message.entities, message.reply_markup):
            raise bad_request(_NOT_MODIFIED)
        message.history.append(message.text)
        message.text, message.entities, message.reply_markup = text, entities, markup
        message.sent_text, message.parse_mode = params.get("text"), params.get("parse_mode")
        message.edit_date = int(time.time())
        return self.message_json(message.chat_id, message.message_id)

    def edit_reply_markup(self, params: dict[str, Any]) -> dict[str, Any]:
        message = self._editable(params)
        markup = inline_keyboard(params.get("reply_markup"), inline_only=True)
        if markup == message.reply_markup:
            raise bad_request(_NOT_MODIFIED)
        message.reply_markup = markup
        message.edit_date = int(time.time())
        return self.message_json(message.chat_id, message.message_id)

    def delete(self, params: dict[str, Any]) -> bool:
        key = (chat_id_of(params), params.get("message_id"))
        if not isinstance(key[1], int) or self.messages.pop((key[0], key[1]), None) is None:
            raise bad_request("message to delete not found")
        return True

    def _new_message(self, chat_id: int, params: dict[str, Any]) -> StoredMessage:
        reply_to = self._reply_target(chat_id, params)
        message = self.add_message(chat_id, from_bot=True)
        message.reply_to = reply_to
        return message

    def _reply_target(self, chat_id: int, params: dict[str, Any]) -> int | None:
        reply = params.get("reply_parameters")
        if isinstance(reply, dict):
            message_id = reply.get("message_id")
            allow = reply.get("allow_sending_without_reply") is True
            reply_chat = reply.get("chat_id", chat_id)
        elif params.get("reply_to_message_id") is not None:  # before Bot API 7.0
            message_id = params["reply_to_message_id"]
            allow = params.get("allow_sending_without_reply") is True
            reply_chat = chat_id
        else:
            return None
        if isinstance(message_id, int) and (reply_chat, message_id) in self.messages:
            return message_id if reply_chat == chat_id else None
        if allow:
            return None
        raise bad_request("message to be replied not found")

    def _editable(self, params: dict[str, Any]) -> StoredMessage:
        if "inline_message_id" in params:
            raise bad_request("inline messages are not supported by the fake")
        message_id = params.get("message_id")
        message = None
        if isinstance(message_id, int):
            message = self.messages.get((chat_id_of(params), message_id))
        if message is None:
            raise bad_request("message to edit not found")
        if not message.from_bot:
            raise bad_request("message can't be edited")
        return message

    def _document(
        self, value: object, uploads: dict[str, Upload], files: FileStore
    ) -> dict[str, Any]:
        upload = None
        if isinstance(value, str) and value.startswith("attach://"):
            upload = uploads.get(value.removeprefix("attach://"))
        elif value is None or value == "":
            upload = uploads.get("document")
        if upload is not None:
            if not upload.data:
                raise bad_request("file must be non-empty")
            suffix = PurePosixPath(upload.filename).suffix
            info = files.add(
                upload.data, file_path=f"documents/file_{len(files.by_id) + 1}{suffix}"
            )
            mime = mimetypes.guess_type(upload.filename)[0] or upload.content_type
            return {
                "file_id": info.file_id,
                "file_unique_id": info.file_unique_id,
                "file_name": upload.filename,
                "mime_type": mime or "application/octet-stream",
                "file_size": info.file_size,
            }
        if isinstance(value, str) and value in files.by_id:
            known = files.by_id[value]
            return {
                "file_id": known.file_id,
                "file_unique_id": known.file_unique_id,
                "file_size": known.file_size,
            }
        if value is None or value == "":
            raise bad_request("there is no document in the request")
        raise bad_request("wrong file identifier/HTTP URL specified")
