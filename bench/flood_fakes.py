"""The fakes' side of the flood benchmark: Telegram's limits on, notes in shared chats, and
each note's outcome found by the message it answers (several notes share a group)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from aiohttp import web

from bench.media import variant
from tests.fakes import FakeTelegram, FakeTranscriptionAPI, media_update
from tests.fakes.telegram_limits import COUNTED_METHODS

_WORKING_PREFIX = "🎙"  # the placeholder and the progress of parts
_LIVE_SUFFIX = " …"  # a live edit: not the final text


class FloodOutcomes:
    """Which notes got their transcript, and when, by (chat, the note's message id)."""

    def __init__(self, tg: FakeTelegram, api: FakeTranscriptionAPI) -> None:
        self.tg = tg
        self.api = api
        self.expected: dict[tuple[int, int], str] = {}
        self.final_at: dict[tuple[int, int], float] = {}
        self.wrong = 0

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/flood/limits", self._limits),
            web.post("/flood/notes", self._notes),
            web.get("/flood/report", self._report),
        ]

    async def _limits(self, _: web.Request) -> web.Response:
        self.tg.enforce_limits()
        return web.json_response({"ok": True})

    async def _notes(self, request: web.Request) -> web.Response:
        """Register one voice note per entry of `notes` ({chat_id, chat_type, user_id})."""
        spec = await request.json()
        base = Path(spec["path"]).read_bytes()
        updates = []
        for i, note in enumerate(spec["notes"]):
            index = int(spec["first_index"]) + i
            data = variant(base, index)
            info = self.tg.add_file(data)
            chat = int(note["chat_id"])
            message_id = self.tg.add_message(chat)
            update = media_update(
                int(spec["first_update_id"]) + i,
                "voice",
                chat_id=chat,
                user_id=int(note["user_id"]),
                message_id=message_id,
                file=info,
                duration=int(spec["duration"]),
                chat_type=str(note["chat_type"]),
            )
            self.tg.register_update(update)
            updates.append(update)
            expected = self.api.default_text(hashlib.sha256(data).hexdigest())
            self.expected[(chat, message_id)] = expected
        return web.json_response({"updates": updates})

    def scan(self) -> None:
        for call in self.tg.requests:
            if not call.ok or call.method not in ("sendMessage", "editMessageText"):
                continue
            text = str(call.params.get("text", ""))
            if text.startswith(_WORKING_PREFIX) or text.endswith(_LIVE_SUFFIX):
                continue
            note = self._note_of(call.method, call.params, call.result)
            if note is None or note not in self.expected or note in self.final_at:
                continue
            self.final_at[note] = call.at
            self.wrong += not text.endswith(self.expected[note])

    def _note_of(self, method: str, params: dict[str, Any], result: Any) -> tuple[int, int] | None:
        chat = params.get("chat_id")
        if not isinstance(chat, int):
            return None
        if method == "sendMessage":
            reply = params.get("reply_parameters") or {}
            return (chat, int(reply.get("message_id", 0)))
        stored = self.tg.messages.get((chat, int(params.get("message_id", 0))))
        return None if stored is None or stored.reply_to is None else (chat, stored.reply_to)

    async def _report(self, _: web.Request) -> web.Response:
        self.scan()
        counted = sum(1 for c in self.tg.requests if c.method in COUNTED_METHODS)
        methods: dict[str, int] = {}
        for call in self.tg.requests:
            methods[call.method] = methods.get(call.method, 0) + 1
        return web.json_response(
            {
                "final_at": [[c, m, at] for (c, m), at in self.final_at.items()],
                "notes": len(self.expected),
                "wrong": self.wrong,
                "too_many_requests": self.tg.too_many_requests,
                "api_seconds": [c.handler_seconds for c in self.api.requests],
                "counted_calls": counted,
                "telegram_calls": methods,
            }
        )
