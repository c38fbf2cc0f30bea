"""python-telegram-bot's rate limiter, over windows shared by every replica (or this process).

Replaces PTB's AIORateLimiter, which limits each process on its own with token buckets (a burst
of 30 on top of 30 a second), counts every call that names a chat (chat actions, getChat...)
and stops every chat when one chat gets a 429.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Callable, Coroutine
from contextvars import ContextVar
from enum import Enum
from typing import Any

from telegram.error import RetryAfter, TelegramError
from telegram.ext import BaseRateLimiter

from bot import seconds as as_seconds
from bot.flood.windows import FloodWindows, Ticket

log = logging.getLogger(__name__)

# The calls Telegram counts as messages: they put or change a message in a chat.
COUNTED = frozenset(
    {
        "sendmessage",
        "editmessagetext",
        "editmessagecaption",
        "editmessagereplymarkup",
        "editmessagemedia",
        "senddocument",
        "sendphoto",
        "sendaudio",
        "sendvoice",
        "sendvideo",
        "sendanimation",
        "sendsticker",
        "sendmediagroup",
        "copymessage",
        "forwardmessage",
    }
)
_JITTER = 0.02  # replicas woken by the same window do not all ask again at once


class Urgency(Enum):
    """rate_limit_args of a call: WHEN_FREE is sent only if its chat, and the bot's overall
    second, have room to spare right now (a placeholder, a live edit: never queued, never in a
    final text's way), else NoRoom is raised."""

    WHEN_FREE = "when_free"


class NoRoom(TelegramError):
    """A WHEN_FREE call was not sent: its chat has no room to spare."""


# Set by the job dispatcher: called around a long wait for Telegram's limits, so that the job
# does not hold a worker slot meanwhile.
long_wait_hook: ContextVar[Callable[[], contextlib.AbstractAsyncContextManager[None]] | None] = (
    ContextVar("long_wait_hook", default=None)
)
LONG_WAIT = 0.5  # seconds: a wait longer than this gives the slot back


class FloodLimiter(BaseRateLimiter[Urgency]):
    """Sends and edits wait for room in Telegram's windows; a 429 pauses its chat for everyone
    sharing the windows and the call is made again (`max_retries` times)."""

    def __init__(self, make_windows: Callable[[], FloodWindows], max_retries: int = 5) -> None:
        self._make_windows = make_windows
        self._windows: FloodWindows | None = None
        # Calls waiting for the bot's overall window queue here: only the first asks the windows
        # again when a place frees, instead of every waiter at once (a herd of reserves, each a
        # Redis round trip with replicas, for one place).
        self._overall_queue = asyncio.Lock()
        self._max_retries = max_retries

    @property
    def windows(self) -> FloodWindows:
        if self._windows is None:
            self._windows = self._make_windows()
        return self._windows

    async def initialize(self) -> None:
        self.windows  # noqa: B018 - made in the running event loop

    async def shutdown(self) -> None:
        if self._windows is not None:
            await self._windows.close()
            self._windows = None

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: Urgency | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        if endpoint.lower() not in COUNTED:
            return await callback(*args, **kwargs)
        chat = _chat_of(data.get("chat_id"))
        when_free = rate_limit_args is Urgency.WHEN_FREE
        for attempt in range(self._max_retries + 1):
            ticket = await self._place(chat, when_free)
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                seconds = as_seconds(exc.retry_after)
                log.warning("Telegram said 429 for chat %s: pausing it %.0f s", chat, seconds)
                await self.windows.pause(chat, seconds)
                if when_free or attempt == self._max_retries:
                    raise
            finally:
                await self.windows.release(chat, ticket)
        raise AssertionError("unreachable")

    async def _place(self, chat: int | None, when_free: bool) -> Ticket:
        """A reserved place for one message to `chat`, waited for (or NoRoom when_free)."""
        # A live edit keeps a place free in its chat's windows for the final text.
        ticket = await self.windows.reserve(chat, spare=1 if when_free else 0)
        if ticket.wait <= 0:
            return ticket
        if when_free:
            raise NoRoom(f"no room in chat {chat}'s windows")
        async with self._parked(ticket.wait):
            while ticket.wait > 0:
                if not ticket.overall:
                    ticket = await self._again(chat, ticket)
                    continue
                async with self._overall_queue:
                    # Its wait is stale by now: the one before it may have just taken a place
                    # and left others free.
                    ticket = await self.windows.reserve(chat)
                    while ticket.wait > 0 and ticket.overall:
                        ticket = await self._again(chat, ticket)
        return ticket

    async def _again(self, chat: int | None, ticket: Ticket) -> Ticket:
        await asyncio.sleep(ticket.wait + random.uniform(0, _JITTER))
        return await self.windows.reserve(chat)

    @contextlib.asynccontextmanager
    async def _parked(self, wait: float) -> AsyncIterator[None]:
        hook = long_wait_hook.get()
        if hook is None or wait < LONG_WAIT:
            yield
            return
        async with hook():
            yield


def _chat_of(value: object) -> int | None:
    """The chat's id; an @channelusername counts only in the overall window."""
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return int(value)
    return None
