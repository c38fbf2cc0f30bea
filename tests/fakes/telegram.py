"""A fake Telegram Bot API server: answers, refuses and fails like the real one, and records.

Updates: build them with the builders in tests.fakes.telegram_updates, then either
`tg.push_update(update)` (the bot polls) or `tg.register_update(update)` and post it to the
bot's webhook. Both make the fake know the chats, users and messages in the update.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, hdrs, web

from tests.fakes._server import CallLog, FakeServer
from tests.fakes.telegram_chats import ChatMembers
from tests.fakes.telegram_commands import BotCommands, scope_key
from tests.fakes.telegram_files import FileStore
from tests.fakes.telegram_limits import FloodControl, Limits
from tests.fakes.telegram_messages import MessageStore
from tests.fakes.telegram_models import Call, FileInfo, StoredMessage, Upload, WebhookState
from tests.fakes.telegram_polling import UpdateQueue
from tests.fakes.telegram_rules import ProxyPage, TelegramError, bad_request, coerce_params
from tests.fakes.telegram_updates import BOT_ID, BOT_USERNAME, bot_user_json

_Handler = Callable[[dict[str, Any], dict[str, Upload]], Any]

_MESSAGE_KEYS = ("message", "edited_message", "channel_post", "edited_channel_post")
_DESCRIPTIONS = {
    400: "Bad Request: injected failure",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running",
    500: "Internal Server Error",
    502: "Bad Gateway",
}
_MAX_UPLOAD = 60 * 1024 * 1024  # the Bot API takes uploads up to 50 MB


@dataclass
class _Fault:
    error: TelegramError
    remaining: int


class FakeTelegram(FakeServer):
    """The Bot API at `url`: the bot calls f"{url}/bot{token}/{method}"."""

    def __init__(
        self,
        token: str = "123456:TEST-token",
        *,
        local_mode_dir: Path | None = None,
        bot_username: str = BOT_USERNAME,
        bot_id: int = BOT_ID,
        can_read_all_group_messages: bool = True,
    ) -> None:
        super().__init__()
        self.token = token
        self.bot_id = bot_id
        self.bot_username = bot_username
        self.can_read_all_group_messages = can_read_all_group_messages
        self.delay = 0.0  # seconds added to every request
        self.flood: FloodControl | None = None  # Telegram's flood limits, once enforce_limits()
        self.bot_user = bot_user_json(bot_id, bot_username)
        self._store = MessageStore(self.bot_user)
        self._files = FileStore(local_mode_dir)
        self._updates = UpdateQueue()
        self._log: CallLog[Call] = CallLog(_describe)
        self._by_method: dict[str, list[Call]] = {}
        self._faults: dict[str, deque[_Fault]] = {}
        self._members = ChatMembers(self._store)
        self._commands = BotCommands()
        self._answered_queries: set[str] = set()
        self._indexed = 0  # how many of self.requests _by_method holds,
        self._last_indexed: Call | None = None  # and the last of them
        self._methods = {name.lower(): (name, h) for name, h in self._handlers().items()}

    # --- what tests read -------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.root_url

    @property
    def requests(self) -> list[Call]:
        return self._log.items

    @property
    def messages(self) -> dict[tuple[int, int], StoredMessage]:
        return self._store.messages

    @property
    def files(self) -> dict[str, FileInfo]:
        return self._files.by_id

    @property
    def webhook(self) -> WebhookState | None:
        return self._updates.webhook

    def set_webhook_error(self, message: str, *, seconds_ago: float = 0) -> None:
        """getWebhookInfo reports this as the last failed delivery (as Telegram does)."""
        self._updates.webhook_error = (int(time.time() - seconds_ago), message)

    @property
    def pending_updates(self) -> deque[dict[str, Any]]:
        return self._updates.pending

    @property
    def local_mode_dir(self) -> Path | None:
        return self._files.local_mode_dir

    def calls(self, method: str) -> list[Call]:
        """Every call of `method` (any case), answered or refused, oldest first."""
        return list(self._calls_of(method.lower()))

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10) -> None:
        await self._log.wait_for(predicate, timeout, "the awaited condition")

    async def wait_calls(self, method: str, count: int, timeout: float = 10) -> list[Call]:
        """Wait until `method` was called at least `count` times; returns all its calls."""
        key = method.lower()
        await self._log.wait_for(
            lambda: len(self._calls_of(key)) >= count,
            timeout,
            f"{count} call(s) of {method}",
        )
        return self.calls(method)

    def text_of(self, chat_id: int, message_id: int) -> str | None:
        message = self._store.messages.get((chat_id, message_id))
        return None if message is None else message.text

    def bot_messages(self, chat_id: int) -> list[StoredMessage]:
        """The bot's messages still in the chat, in order."""
        found = [m for (c, _), m in self._store.messages.items() if c == chat_id and m.from_bot]
        return sorted(found, key=lambda m: m.message_id)

    def last_message_id(self, chat_id: int) -> int:
        """The id of the newest message in the chat (the bot's or a registered one)."""
        return self._store.last_id[chat_id]

    def message_json(self, chat_id: int, message_id: int) -> dict[str, Any]:
        """A stored message as a Message dict (e.g. for reply_to or callback_update)."""
        return self._store.message_json(chat_id, message_id)

    def commands_for(
        self, scope: dict[str, Any] | None = None, language_code: str = ""
    ) -> list[dict[str, str]] | None:
        return self._commands.menus.get(scope_key(scope, language_code))

    # --- what tests arrange ----------------------------------------------------------------

    def add_message(
        self, chat_id: int, message_id: int | None = None, *, text: str | None = None
    ) -> int:
        """Register a user's message so that replies to it are valid; returns its id."""
        return self._store.add_message(chat_id, message_id, text=text).message_id

    def add_file(
        self,
        data: bytes,
        *,
        file_id: str | None = None,
        file_unique_id: str | None = None,
        file_path: str | None = None,
        file_size: int | None = None,
    ) -> FileInfo:
        """Serve `data` through getFile; file_size may claim more than len(data)."""
        return self._files.add(
            data,
            file_id=file_id,
            file_unique_id=file_unique_id,
            file_path=file_path,
            file_size=file_size,
        )

    def register_update(self, update: dict[str, Any]) -> dict[str, Any]:
        """Learn the update's chats, users and messages; returns it."""
        for key in _MESSAGE_KEYS:
            if isinstance(update.get(key), dict):
                self._store.register(update[key])
        query = update.get("callback_query")
        if isinstance(query, dict) and isinstance(query.get("message"), dict):
            self._store.register(query["message"])
        return update

    def push_update(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue an update for getUpdates (update_id is assigned if missing)."""
        return self._updates.push(self.register_update(update))

    def set_conflict(self, conflict: bool = True) -> None:
        """Make getUpdates answer 409 as if another instance of the bot were polling."""
        self._updates.conflict = conflict

    def set_admins(self, chat_id: int, user_ids: list[int], *, owner: int | None = None) -> None:
        self._members.admins[chat_id] = set(user_ids)
        if owner is not None:
            self._members.owners[chat_id] = owner

    def enforce_limits(self, limits: Limits | None = None) -> FloodControl:
        """From now on answer 429 past Telegram's flood limits (sliding windows); see .flood."""
        self.flood = FloodControl(limits or Limits())
        return self.flood

    @property
    def too_many_requests(self) -> int:
        """How many calls the flood limits refused with 429."""
        return 0 if self.flood is None else self.flood.refused

    def fail_next(
        self,
        method: str,
        *,
        error_code: int = 429,
        description: str | None = None,
        retry_after: int | None = None,
        times: int = 1,
        proxy_page: bool = False,
    ) -> None:
        """The next `times` calls of `method` fail with this error instead of being served.

        proxy_page: an HTML page with status `error_code` (200 too) answers, not the Bot API.
        """
        if error_code == 429 and retry_after is None:
            retry_after = 1
        if description is None:
            if error_code == 429:
                description = f"Too Many Requests: retry after {retry_after}"
            else:
                description = _DESCRIPTIONS.get(error_code, f"Error {error_code}")
        kind = ProxyPage if proxy_page else TelegramError
        error = kind(error_code, description, retry_after)
        self._faults.setdefault(method.lower(), deque()).append(_Fault(error, times))

    # --- the server ------------------------------------------------------------------------

    def _make_app(self) -> web.Application:
        self._updates.open()  # again, if the fake is restarted
        app = web.Application(client_max_size=_MAX_UPLOAD)
        app.router.add_route("POST", "/bot{token}/{method}", self._handle_method)
        app.router.add_route("GET", "/bot{token}/{method}", self._handle_method)
        app.router.add_get("/file/bot{token}/{file_path:.+}", self._handle_download)
        return app

    def _before_stop(self) -> None:
        self._updates.close()

    def _record(self, call: Call) -> None:
        in_step = self._index_in_step()
        self._log.append(call)
        if in_step:
            self._by_method.setdefault(call.method.lower(), []).append(call)
            self._indexed, self._last_indexed = self._indexed + 1, call

    def _index_in_step(self) -> bool:
        """False once a test has cleared or edited tg.requests behind the index's back."""
        items = self.requests
        last = items[-1] if items else None
        return self._indexed == len(items) and last is self._last_indexed

    def _calls_of(self, method_key: str) -> list[Call]:
        if not self._index_in_step():
            self._by_method = {}
            for call in self.requests:
                self._by_method.setdefault(call.method.lower(), []).append(call)
            self._indexed = len(self.requests)
            self._last_indexed = self.requests[-1] if self.requests else None
        return self._by_method.get(method_key, [])

    async def _handle_method(self, request: web.Request) -> web.Response:
        call = Call(request.match_info["method"], {}, {}, time.monotonic())
        try:
            if request.match_info["token"] != self.token:
                raise TelegramError(401, "Unauthorized")
            entry = self._methods.get(call.method.lower())
            if entry is None:
                raise TelegramError(404, "Not Found")
            call.method, handler = entry
            uploads = await _read_params(request, call)
            if self.delay:
                await asyncio.sleep(self.delay)
            if self._faults:
                self._raise_fault(call.method)
            if self.flood is not None:
                self.flood.check(call.method, call.params, time.monotonic())
            result = handler(call.params, uploads)
            call.result = await result if inspect.isawaitable(result) else result
            response = web.json_response({"ok": True, "result": call.result})
        except TelegramError as exc:
            call.status, call.error = exc.error_code, exc.description
            response = exc.response()
        self._record(call)
        return response

    async def _handle_download(self, request: web.Request) -> web.Response:
        file_path = request.match_info["file_path"]
        call = Call("download", {"file_path": file_path}, {}, time.monotonic())
        data = None
        if request.match_info["token"] == self.token:
            data = self._files.download(file_path)
        if data is None:
            call.status, call.error = 404, "Not Found"
            self._record(call)
            return TelegramError(404, "Not Found").response()
        self._record(call)
        return web.Response(body=data, content_type="application/octet-stream")

    def _raise_fault(self, method: str) -> None:
        queue = self._faults.get(method.lower())
        if queue:
            fault = queue[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                queue.popleft()
            error = fault.error
            raise type(error)(error.error_code, error.description, error.retry_after)

    def _handlers(self) -> dict[str, _Handler]:
        store, files, updates = self._store, self._files, self._updates
        commands, members = self._commands, self._members
        return {
            "getMe": lambda p, u: self._get_me(),
            "getUpdates": lambda p, u: updates.get_updates(p),
            "setWebhook": lambda p, u: updates.set_webhook(p),
            "deleteWebhook": lambda p, u: updates.delete_webhook(p),
            "getWebhookInfo": lambda p, u: updates.webhook_info(),
            "setMyCommands": lambda p, u: commands.set(p),
            "deleteMyCommands": lambda p, u: commands.delete(p),
            "getMyCommands": lambda p, u: commands.get(p),
            "sendMessage": lambda p, u: store.send_message(p),
            "editMessageText": lambda p, u: store.edit_text(p),
            "editMessageReplyMarkup": lambda p, u: store.edit_reply_markup(p),
            "deleteMessage": lambda p, u: store.delete(p),
            "sendChatAction": lambda p, u: members.send_chat_action(p),
            "getFile": lambda p, u: files.get_file(p),
            "sendDocument": lambda p, u: store.send_document(p, u, files),
            "answerCallbackQuery": lambda p, u: self._answer_callback_query(p),
            "getChatMember": lambda p, u: members.get_chat_member(p),
            "getChat": lambda p, u: members.get_chat(p),
        }

    # --- the smaller methods ---------------------------------------------------------------

    def _get_me(self) -> dict[str, Any]:
        return self.bot_user | {
            "can_join_groups": True,
            "can_read_all_group_messages": self.can_read_all_group_messages,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def _answer_callback_query(self, params: dict[str, Any]) -> bool:
        query_id = str(params.get("callback_query_id", ""))
        # Any id is taken (tests post updates the fake never saw), but only once.
        if not query_id or query_id in self._answered_queries:
            raise bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        self._answered_queries.add(query_id)
        return True


async def _read_params(request: web.Request, call: Call) -> dict[str, Upload]:
    """Fill call.params/files from the query and a JSON, urlencoded or multipart body."""
    params: dict[str, Any] = dict(request.query)
    uploads: dict[str, Upload] = {}
    if request.method == "POST" and request.can_read_body:
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise bad_request("can't parse JSON object") from None
            if not isinstance(body, dict):
                raise bad_request("JSON object expected")
            params.update(body)
        elif request.content_type == "multipart/form-data":
            async for part in await request.multipart():
                if not isinstance(part, BodyPartReader) or part.name is None:
                    continue
                if part.filename is None:
                    params[part.name] = await part.text()
                else:
                    data = bytes(await part.read())
                    content_type = part.headers.get(hdrs.CONTENT_TYPE)
                    uploads[part.name] = Upload(data, part.filename, content_type)
        else:
            form = await request.post()
            params.update((k, v) for k, v in form.items() if isinstance(v, str))
    call.params = coerce_params(params)
    call.files = {name: upload.data for name, upload in uploads.items()}
    call.filenames = {name: upload.filename for name, upload in uploads.items()}
    return uploads


def _describe(call: Call) -> str:
    params = json.dumps(call.params, ensure_ascii=False, default=str)
    if len(params) > 200:
        params = params[:200] + "…"
    outcome = "ok" if call.status == 200 else f"{call.status} {call.error}"
    return f"{call.method} {params} -> {outcome}"
