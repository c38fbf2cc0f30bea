"""The Bot API's validation rules the fake enforces: parameters, text, captions, keyboards."""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from tests.fakes.telegram_html import HtmlError, parse_html, utf16_len

MESSAGE_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_DATA_LIMIT = 64

# python-telegram-bot sends form fields, each JSON-encoded unless a plain string: turn them
# back into the types a JSON body would carry, so recorded params look the same either way.
_INT_FIELDS = frozenset(
    {
        "chat_id",
        "message_id",
        "user_id",
        "offset",
        "limit",
        "timeout",
        "max_connections",
        "reply_to_message_id",
        "message_thread_id",
        "cache_time",
        "from_chat_id",
        "duration",
    }
)
_BOOL_FIELDS = frozenset(
    {
        "disable_notification",
        "protect_content",
        "allow_sending_without_reply",
        "drop_pending_updates",
        "show_alert",
        "disable_web_page_preview",
        "disable_content_type_detection",
        "allow_paid_broadcast",
    }
)
_JSON_FIELDS = frozenset(
    {
        "reply_parameters",
        "reply_markup",
        "allowed_updates",
        "commands",
        "scope",
        "entities",
        "caption_entities",
        "link_preview_options",
    }
)
_INT = re.compile(r"-?[0-9]+")


class TelegramError(Exception):
    """An error answer: {"ok": false, "error_code": ..., "description": ...}."""

    def __init__(self, error_code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.retry_after = retry_after

    def response(self) -> web.Response:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.error_code,
            "description": self.description,
        }
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return web.json_response(body, status=self.error_code)


class ProxyPage(TelegramError):
    """Not the Bot API answering: a proxy's (or captive portal's) HTML page, any status."""

    def response(self) -> web.Response:
        page = f"<html><head><title>{self.description}</title></head><body></body></html>"
        return web.Response(text=page, status=self.error_code, content_type="text/html")


def bad_request(reason: str) -> TelegramError:
    return TelegramError(400, f"Bad Request: {reason}")


def coerce_params(params: dict[str, Any]) -> dict[str, Any]:
    """Decode the JSON-in-a-form-field values python-telegram-bot sends."""
    for key, value in params.items():
        if not isinstance(value, str):
            continue
        if key in _INT_FIELDS:
            if _INT.fullmatch(value):
                params[key] = int(value)
        elif key in _BOOL_FIELDS:
            if value.lower() in ("true", "false"):
                params[key] = value.lower() == "true"
        elif key in _JSON_FIELDS:
            try:
                params[key] = json.loads(value)
            except ValueError:
                raise bad_request(f"can't parse {key} JSON object") from None
    return params


def render_text(
    text: object,
    parse_mode: object,
    entities: object,
    *,
    limit: int,
    too_long: str,
    required: bool,
) -> tuple[str, list[dict[str, Any]]]:
    """The visible text and entities Telegram would store, or the error it would answer."""
    if text is None or text == "":
        if required:
            raise bad_request("message text is empty")
        return "", []
    if not isinstance(text, str):
        raise bad_request("text must be a string")
    if parse_mode in (None, ""):
        visible = text
        parsed = list(entities) if isinstance(entities, list) else []
    elif isinstance(parse_mode, str) and parse_mode.lower() == "html":
        try:
            visible, parsed = parse_html(text)
        except HtmlError as exc:
            raise bad_request(f"can't parse entities: {exc}") from None
    else:
        raise bad_request("unsupported parse_mode")
    visible, parsed = _strip(visible, parsed)
    if required and not visible:
        raise bad_request("message text is empty")
    if utf16_len(visible) > limit:
        raise bad_request(too_long)
    return visible, parsed


def _strip(text: str, entities: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Telegram trims leading and trailing whitespace and moves the entities with the text."""
    stripped = text.strip()
    if stripped == text:
        return text, entities
    lead = utf16_len(text[: len(text) - len(text.lstrip())])
    size = utf16_len(stripped)
    kept = []
    for entity in entities:
        start = max(0, entity["offset"] - lead)
        end = min(size, entity["offset"] + entity["length"] - lead)
        if end > start:
            kept.append({**entity, "offset": start, "length": end - start})
    return stripped, kept


def inline_keyboard(markup: object, *, inline_only: bool = False) -> dict[str, Any] | None:
    """The inline keyboard a message keeps (None if none), after Telegram's checks."""
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" not in markup:
        if inline_only:
            raise bad_request("inline keyboard expected")
        return None  # reply keyboards are shown to the user but not part of the message
    rows = markup["inline_keyboard"]
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request(
            'field "inline_keyboard" of the InlineKeyboardMarkup should be an Array of Arrays'
        )
    for row in rows:
        for button in row:
            _check_button(button)
    if not any(rows):
        return None
    return {"inline_keyboard": rows}


def _check_button(button: object) -> None:
    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
        raise bad_request("can't parse inline keyboard button: Text buttons are unallowed")
    data = button.get("callback_data")
    if data is not None:
        if not isinstance(data, str) or not 1 <= len(data.encode()) <= CALLBACK_DATA_LIMIT:
            raise bad_request("BUTTON_DATA_INVALID")
    elif len(button) == 1:
        raise bad_request("text buttons are unallowed in the inline keyboard")
