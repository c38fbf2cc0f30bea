"""What the fake servers share: binding to a free local port and a call log tests can wait on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import TracebackType
from typing import Generic, Self, TypeVar

from aiohttp import web

T = TypeVar("T")

_RECENT = 10


class CallLog(Generic[T]):
    """Recorded calls in the order they were answered; waiters re-check after each one."""

    def __init__(self, describe: Callable[[T], str]) -> None:
        self.items: list[T] = []
        self._describe = describe
        self._waiters: list[asyncio.Future[None]] = []

    def append(self, item: T) -> None:
        self.items.append(item)
        if self._waiters:  # nothing to do on the hot path when nobody waits
            waiters, self._waiters = self._waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                while not predicate():
                    waiter: asyncio.Future[None] = loop.create_future()
                    self._waiters.append(waiter)
                    await waiter
        except TimeoutError:
            raise TimeoutError(f"{what} not met within {timeout}s; {self.recent()}") from None

    def recent(self) -> str:
        """The last few calls, for failure messages."""
        tail = self.items[-_RECENT:]
        if not tail:
            return "no calls were received"
        lines = "\n  ".join(self._describe(item) for item in tail)
        return f"last {len(tail)} of {len(self.items)} calls:\n  {lines}"


class FakeServer:
    """An aiohttp app on 127.0.0.1 and a free port; subclasses build the app."""

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    def _make_app(self) -> web.Application:
        raise NotImplementedError

    def _before_stop(self) -> None:
        """Release requests that would otherwise hold the shutdown (long polls)."""

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._port

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError(f"{type(self).__name__} is already started")
        # handler_cancellation: a client that hangs up (a cancelled long poll) ends its handler.
        runner = web.AppRunner(
            self._make_app(), access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            self._before_stop()
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
