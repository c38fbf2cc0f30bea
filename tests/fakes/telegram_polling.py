"""Pending updates: getUpdates long polling, and the webhook that forbids it."""

from __future__ import annotations

import asyncio
import re
from collections import deque
from itertools import islice
from typing import Any

from tests.fakes.telegram_models import WebhookState
from tests.fakes.telegram_rules import TelegramError, bad_request

_WEBHOOK_ACTIVE = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
_TERMINATED = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)
_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")
_WEBHOOK_URL = re.compile(r"https://[^/:?#]+(?::(\d+))?(?:[/?#].*)?")
_WEBHOOK_PORTS = ("443", "80", "88", "8443")
# An empty allowed_updates means every type except these (Bot API docs, getUpdates).
_OPT_IN_TYPES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})


def update_type(update: dict[str, Any]) -> str:
    return next((key for key in update if key != "update_id"), "")


class UpdateQueue:
    def __init__(self) -> None:
        self.pending: deque[dict[str, Any]] = deque()
        self.webhook: WebhookState | None = None
        # What getWebhookInfo says of the last failed delivery: (unix time, message).
        self.webhook_error: tuple[int, str] | None = None
        self.conflict = False
        self.allowed_updates: list[str] = []
        self._last_update_id = 0
        self._waiters: list[asyncio.Future[None]] = []
        self._generation = 0  # each getUpdates ends any older one still waiting, like Telegram
        self._closing = False

    def push(self, update: dict[str, Any]) -> dict[str, Any]:
        if "update_id" not in update:
            update["update_id"] = self._last_update_id + 1
        self._last_update_id = max(self._last_update_id, update["update_id"])
        self.pending.append(update)
        self._wake()
        return update

    def open(self) -> None:
        self._closing = False

    def close(self) -> None:
        """Let waiting long polls answer now (empty), so the server can stop at once."""
        self._closing = True
        self._wake()

    async def get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self.webhook is not None:
            raise TelegramError(409, _WEBHOOK_ACTIVE)
        if self.conflict:
            raise TelegramError(409, _TERMINATED)
        if isinstance(params.get("allowed_updates"), list):
            self.allowed_updates = params["allowed_updates"]
        limit = min(max(int(_number(params, "limit", 100)), 1), 100)
        self._generation += 1
        generation = self._generation
        self._wake()
        self._confirm(int(_number(params, "offset", 0)))
        timeout = max(_number(params, "timeout", 0), 0)
        if not self.pending and timeout > 0 and not self._closing:
            await self._wait(timeout)
            if generation != self._generation:
                raise TelegramError(409, _TERMINATED)
        allowed = set(self.allowed_updates)
        wanted = (u for u in self.pending if self._allowed(update_type(u), allowed))
        return list(islice(wanted, limit))

    def set_webhook(self, params: dict[str, Any]) -> bool:
        url = params.get("url") or ""
        if not url:  # an empty url removes the webhook
            return self.delete_webhook(params)
        if not isinstance(url, str) or (match := _WEBHOOK_URL.fullmatch(url)) is None:
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        if match.group(1) not in (None, *_WEBHOOK_PORTS):
            raise bad_request(
                "bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443"
            )
        secret = params.get("secret_token")
        if secret is not None and (not isinstance(secret, str) or not _SECRET.fullmatch(secret)):
            raise bad_request("secret token contains unallowed characters")
        max_connections = params.get("max_connections", 40)
        if not isinstance(max_connections, int) or not 1 <= max_connections <= 100:
            raise bad_request("bad webhook: max_connections must be between 1 and 100")
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self.allowed_updates = allowed
        self.webhook = WebhookState(url, secret, allowed, max_connections)
        if params.get("drop_pending_updates") is True:
            self.pending.clear()
        return True

    def delete_webhook(self, params: dict[str, Any]) -> bool:
        self.webhook = None
        if params.get("drop_pending_updates") is True:
            self.pending.clear()
        return True

    def webhook_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "url": self.webhook.url if self.webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self.pending),
        }
        if self.webhook_error is not None:
            info["last_error_date"], info["last_error_message"] = self.webhook_error
        if self.webhook is not None:
            info["max_connections"] = self.webhook.max_connections
            if self.webhook.allowed_updates:
                info["allowed_updates"] = self.webhook.allowed_updates
        return info

    def _confirm(self, offset: int) -> None:
        """Forget updates below offset; a negative offset keeps only the last -offset ones."""
        if offset < 0:
            while len(self.pending) > -offset:
                self.pending.popleft()
            return
        while self.pending and self.pending[0]["update_id"] < offset:
            self.pending.popleft()

    async def _wait(self, timeout: float) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                await waiter
        except TimeoutError:
            pass

    def _wake(self) -> None:
        if self._waiters:
            waiters, self._waiters = self._waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    @staticmethod
    def _allowed(kind: str, allowed: set[str]) -> bool:
        return kind in allowed if allowed else kind not in _OPT_IN_TYPES


def _number(params: dict[str, Any], name: str, default: float) -> float:
    value = params.get(name, default)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise bad_request(f"wrong parameter {name} in request") from None
