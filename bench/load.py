"""The load generator: posts updates to the bot's webhook as Telegram does, and times the acks.

Telegram keeps at most `max_connections` deliveries in flight (the bot asks for 100), so the
client's pool is bounded the same way.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import aiohttp

from bench.processes import SECRET

TELEGRAM_CONNECTIONS = 100  # setWebhook(max_connections=100) in bot/app.py
POST_TIMEOUT = 30.0


@dataclass
class Ack:
    """One delivery: when it was sent, when the answer came, and its status (0: no answer)."""

    sent: float
    answered: float
    status: int

    @property
    def seconds(self) -> float:
        return self.answered - self.sent


class Webhook:
    """POSTs pre-encoded update bodies to the bot's webhook with the secret header.

    Several URLs (replicas): each POST goes to the next in turn, as a round-robin load
    balancer in front of them would send it; the connection limit is for all of them.
    """

    def __init__(self, urls: str | list[str], connections: int = TELEGRAM_CONNECTIONS) -> None:
        self._urls = itertools.cycle([urls] if isinstance(urls, str) else urls)
        self._connections = connections
        self._headers = {
            "Content-Type": "application/json",
            "X-Telegram-Bot-Api-Secret-Token": SECRET,
        }
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        connector = aiohttp.TCPConnector(limit=self._connections)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=POST_TIMEOUT)
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()

    async def post(self, body: bytes) -> Ack:
        return await self.post_to(next(self._urls), body)

    async def post_to(self, url: str, body: bytes) -> Ack:
        assert self._session is not None
        sent = time.monotonic()
        try:
            async with self._session.post(url, data=body, headers=self._headers) as resp:
                await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError):
            status = 0
        return Ack(sent, time.monotonic(), status)


async def one_by_one(
    webhook: Webhook,
    bodies: list[bytes],
    answered: Callable[[int], Awaitable[bool]],
    gap: float,
) -> list[Ack]:
    """Each update after the previous note's transcript arrived (answered(i) waits for it)."""
    acks: list[Ack] = []
    for index, body in enumerate(bodies):
        acks.append(await webhook.post(body))
        await answered(index)
        await asyncio.sleep(gap)
    return acks


async def as_fast_as_taken(webhook: Webhook, bodies: list[bytes], connections: int) -> list[Ack]:
    """`connections` senders, each posting its next update as soon as the last was answered."""
    acks: list[Ack | None] = [None] * len(bodies)
    queue = iter(enumerate(bodies))

    async def sender() -> None:
        for index, body in queue:
            acks[index] = await webhook.post(body)

    await asyncio.gather(*(sender() for _ in range(min(connections, len(bodies)))))
    return [ack for ack in acks if ack is not None]


@dataclass
class Paced:
    acks: list[Ack]
    lateness: list[float]  # how late each post started against its schedule (generator lag)


async def at_rate(webhook: Webhook, bodies: list[bytes], per_second: float) -> Paced:
    """Open loop: update i is sent at start + i/rate whatever the answers do."""
    start = time.monotonic() + 0.05
    tasks: list[asyncio.Task[Ack]] = []
    lateness: list[float] = []
    for index, body in enumerate(bodies):
        due = start + index / per_second
        wait = due - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        lateness.append(max(0.0, time.monotonic() - due))
        tasks.append(asyncio.create_task(webhook.post(body)))
    return Paced(list(await asyncio.gather(*tasks)), lateness)
