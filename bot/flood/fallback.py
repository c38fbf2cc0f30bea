"""Shared windows that survive their Redis going away: this process's own meanwhile.

While Redis restarts or fails over, a Bot API call must not fail because its limiter cannot
count it: the job would be retried (paid again upstream) or given up. Each replica then limits
itself alone, as one process does, until Redis answers again; a 429 that this lets through is
waited out like any other.
"""

from __future__ import annotations

import logging

from bot.flood.windows import FloodWindows, LocalWindows, Ticket
from bot.redis_outage import UNREACHABLE, RedisOutage

log = logging.getLogger(__name__)


class FallbackWindows:
    """`shared` while it answers, `local` while it does not (said once each way in the log)."""

    def __init__(self, shared: FloodWindows, local: LocalWindows) -> None:
        self._shared = shared
        self._local = local
        self._outage = RedisOutage(
            log, "Telegram's flood windows", "this replica limits itself alone"
        )
        self._local_keys: set[str] = set()

    async def reserve(self, chat: int | None, spare: int = 0) -> Ticket:
        if self._outage.use_shared():
            try:
                ticket = await self._shared.reserve(chat, spare)
            except UNREACHABLE as exc:
                self._outage.failed(exc)
            else:
                self._outage.back()
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
        except UNREACHABLE as exc:
            self._outage.failed(exc)  # the place expires in Redis on its own

    async def pause(self, chat: int | None, seconds: float) -> None:
        await self._local.pause(chat, seconds)
        if self._outage.use_shared():
            try:
                await self._shared.pause(chat, seconds)
            except UNREACHABLE as exc:
                self._outage.failed(exc)

    async def close(self) -> None:
        await self._shared.close()
        await self._local.close()
