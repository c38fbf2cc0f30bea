"""Shared windows that survive their Redis going away: this process's own meanwhile.

While Redis restarts or fails over, a Bot API call must not fail because its limiter cannot
count it: the job would be retried (paid again upstream) or given up. Each replica then limits
itself alone, as one process does, until Redis answers again; a 429 that this lets through is
waited out like any other.
"""

from __future__ import annotations

import logging
import time

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.flood.windows import FloodWindows, LocalWindows, Ticket

log = logging.getLogger(__name__)

_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)
_RETRY_SHARED_AFTER_SECONDS = 1.0  # while down, Redis is asked again at most this often


class FallbackWindows:
    """`shared` while it answers, `local` while it does not (said once each way in the log)."""

    def __init__(self, shared: FloodWindows, local: LocalWindows) -> None:
        self._shared = shared
        self._local = local
        self._down_since: float | None = None
        self._next_try = 0.0
        self._local_keys: set[str] = set()

    async def reserve(self, chat: int | None, spare: int = 0) -> Ticket:
        if self._use_shared():
            try:
                ticket = await self._shared.reserve(chat, spare)
            except _UNREACHABLE as exc:
                self._failed(exc)
            else:
                self._back()
                return ticket
        ticket = await self._local.reserve(chat, spare)
        if ticket.key:
            self._local_keys.add(ticket.key)
        return ticket

    async def release(self, chat: int | None, ticket: Ticket) -> None:
        if ticket.key in self._local_keys:
            self._local_keys.discard(ticket.key)
            await self._local.release(chat, ticket)
            return
        try:
            await self._shared.release(chat, ticket)
        except _UNREACHABLE as exc:
            self._failed(exc)  # the place expires in Redis on its own

    async def pause(self, chat: int | None, seconds: float) -> None:
        await self._local.pause(chat, seconds)
        if self._use_shared():
            try:
                await self._shared.pause(chat, seconds)
            except _UNREACHABLE as exc:
                self._failed(exc)

    async def close(self) -> None:
        await self._shared.close()
        await self._local.close()

    def _use_shared(self) -> bool:
        return self._down_since is None or time.monotonic() >= self._next_try

    def _failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        if self._down_since is None:
            self._down_since = now
            log.error(
                "Telegram's flood windows in Redis are unreachable (%s): this replica limits "
                "itself alone until Redis is back",
                type(exc).__name__,
            )
        self._next_try = now + _RETRY_SHARED_AFTER_SECONDS

    def _back(self) -> None:
        if self._down_since is not None:
            log.info(
                "Telegram's flood windows in Redis are back after %.0f s",
                time.monotonic() - self._down_since,
            )
            self._down_since = None
