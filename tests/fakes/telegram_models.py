"""What the fake Telegram records and stores, for tests to assert on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Call:
    """One request to the Bot API, as the fake understood it."""

    method: str  # canonical camelCase ("sendMessage") whatever the case it was called with
    params: dict[str, Any]  # decoded: ints, bools and nested JSON objects as a JSON body has them
    files: dict[str, bytes]  # uploaded files by form field name
    at: float  # time.monotonic() when the request arrived
    filenames: dict[str, str] = field(default_factory=dict)  # uploaded file names by field
    status: int = 200  # the HTTP status answered (Telegram's error_code on errors)
    error: str | None = None  # the description of an error answer
    result: Any = None  # the "result" of an ok answer

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass(frozen=True)
class FileInfo:
    """A file the fake serves through getFile; file_path is what getFile answers."""

    file_id: str
    file_unique_id: str
    file_path: str
    file_size: int


@dataclass
class StoredMessage:
    """A message as Telegram keeps it: the visible text, its entities, its inline keyboard."""

    chat_id: int
    message_id: int
    date: int
    from_bot: bool
    text: str | None = None
    entities: list[dict[str, Any]] = field(default_factory=list)
    sent_text: str | None = None  # the text as the bot sent it (HTML source with parse_mode)
    parse_mode: str | None = None
    reply_markup: dict[str, Any] | None = None
    reply_to: int | None = None
    document: dict[str, Any] | None = None
    caption: str | None = None
    caption_entities: list[dict[str, Any]] = field(default_factory=list)
    from_user: dict[str, Any] | None = None
    edit_date: int | None = None
    history: list[str | None] = field(default_factory=list)  # earlier texts, oldest first


@dataclass(frozen=True)
class WebhookState:
    url: str
    secret_token: str | None
    allowed_updates: list[str] | None
    max_connections: int


@dataclass(frozen=True)
class Upload:
    """A file part of a multipart request."""

    data: bytes
    filename: str
    content_type: str | None
