"""The API key's own limits: requests a minute, requests at once, and its 429s waited out by
every job together. Shared by every replica through Redis, or this process's own.

A key's tier limits its requests a minute (and a proxy often its requests at once); past them
the API answers 429. Without a gate each job found the limit on its own and retried on its own
schedule, so a burst kept provoking 429s while the rest of the queue kept asking.

No library fits all three: `limits` and `aiolimiter` count requests a minute, but neither holds
requests at once (with a lease, so a replica that dies gives its places back) nor a pause that
every replica sees; one Lua script on Redis's own clock checks all three at once, as the flood
windows do (bot/flood/redis.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from pydantic import SecretStr

from bot.config import RedisLocation, Settings, database_location
from bot.redis_client import connect
from bot.redis_outage import UNREACHABLE, RedisOutage

log = logging.getLogger(__name__)

_JITTER = 0.05  # seconds added at random to a wait, so waiters do not all ask at once
_POLL_SECONDS = 0.05  # how often a request waiting for a place at once asks Redis again


@dataclass(frozen=True)
class GateLimits:
    per_minute: int = 0  # requests started in any `window` seconds; 0: no limit
    at_once: int = 0  # requests in flight; 0: no limit
    window: float = 60.0  # seconds (tests shorten it)


class UpstreamGate(Protocol):
    def slot(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Held around one request: waits for room under the key's limits and any pause."""

    async def pause(self, seconds: float) -> None:
        """The API answered 429: no request from anyone for `seconds`."""

    async def close(self) -> None: ...


class LocalGate:
    """This process's own gate (SQLite: one bot process)."""

    def __init__(self, limits: GateLimits) -> None:
        self._limits = limits
        self._started: list[float] = []
        self._at_once = asyncio.Semaphore(limits.at_once) if limits.at_once else None
        self._queue = asyncio.Lock()  # first come, first served (a Lock wakes its waiters in order)
        self._paused_until = 0.0

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self._at_once or contextlib.nullcontext():
            async with self._queue:  # the first in the queue waits for room; the rest behind it
                while True:
                    wait = self._wait()
                    if wait <= 0:
                        break
                    await asyncio.sleep(wait + random.uniform(0, _JITTER))
                if self._limits.per_minute > 0:  # else nothing reads them: not kept
                    self._started.append(time.monotonic())
            yield

    def _wait(self) -> float:
        now = time.monotonic()
        wait = self._paused_until - now
        count, window = self._limits.per_minute, self._limits.window
        if count > 0:
            self._started = [t for t in self._started if t > now - window]
            if len(self._started) >= count:
                wait = max(wait, self._started[-count] + window - now)
        return wait

    async def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)

    async def close(self) -> None:
        return None


# KEYS: starts, holders, pause. ARGV: per window, window ms, at once, holder, hold ms, poll ms.
# Returns the ms to wait (0: the place is taken, under ARGV[4]).
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wait = math.max(redis.call('PTTL', KEYS[3]), 0)
local count, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local at_once, hold = tonumber(ARGV[3]), tonumber(ARGV[5])
if count > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
  local n = redis.call('ZCARD', KEYS[1])
  if n >= count then
    local at = redis.call('ZRANGE', KEYS[1], n - count, n - count, 'WITHSCORES')
    wait = math.max(wait, tonumber(at[2]) + window - now)
  end
end
if at_once > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if redis.call('ZCARD', KEYS[2]) >= at_once then wait = math.max(wait, tonumber(ARGV[6])) end
end
if wait > 0 then return math.ceil(wait) end
if count > 0 then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], window + 1000)
end
if at_once > 0 then
  redis.call('ZADD', KEYS[2], now + hold, ARGV[4])
  redis.call('PEXPIRE', KEYS[2], hold + 1000)
end
return 0
"""

# KEYS: holders. ARGV: holder, hold ms. A place still held is held `hold` ms longer.
_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) + 1000)
return 1
"""

_PAUSE = """
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
end
return 1
"""


class RedisGate:
    """The gate every replica using this key shares, on the Redis of DATABASE_URL.

    While Redis does not answer, this replica keeps to the limits alone (a LocalGate) until it
    does again, so a Redis restart fails no request.
    """

    def __init__(self, url: str, key_id: str, limits: GateLimits, hold: float = 30.0) -> None:
        self._limits = limits
        self._hold_ms = round(hold * 1000)  # a place of a replica that died is free after this
        self._local = LocalGate(limits)
        # This replica never holds more than `at_once`: more waiters queue here, not in Redis.
        self._turns = asyncio.Semaphore(limits.at_once) if limits.at_once else None
        self._queue = asyncio.Lock()  # first come, first served, among this replica's requests
        self._redis = connect(url, max_connections=16)  # a take run twice only wastes a place
        self._take = self._redis.register_script(_TAKE)
        self._renew = self._redis.register_script(_RENEW)
        self._pause = self._redis.register_script(_PAUSE)
        prefix = f"transcribot:upstream:{key_id}:"
        self._keys = [prefix + "starts", prefix + "holders", prefix + "pause"]
        self._outage = RedisOutage(log, "the API key's limits", "this replica keeps to them alone")

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self._turns or contextlib.nullcontext():
            async with self._queue:
                holder = await self._taken()
            if holder is None:  # Redis is down: this replica alone
                async with self._local.slot():
                    yield
                return
            renewing = asyncio.create_task(self._renewing(holder)) if self._turns else None
            try:
                yield
            finally:
                if renewing is not None:
                    renewing.cancel()
                await self._give_back(holder)

    async def _taken(self) -> str | None:
        """Wait for a place and take it: its holder id, or None when Redis does not answer."""
        holder = uuid.uuid4().hex
        limits = self._limits
        args: list[int | str] = [limits.per_minute, round(limits.window * 1000)]
        args += [limits.at_once, holder, self._hold_ms, round(_POLL_SECONDS * 1000)]
        while self._outage.use_shared():
            try:
                wait = int(await self._take(keys=self._keys, args=args))
            except UNREACHABLE as exc:
                self._outage.failed(exc)
                return None
            self._outage.back()
            if wait <= 0:
                return holder
            await asyncio.sleep(wait / 1000 + random.uniform(0, _JITTER))
        return None

    async def _renewing(self, holder: str) -> None:
        while True:
            await asyncio.sleep(self._hold_ms / 3000)
            try:
                await self._renew(keys=[self._keys[1]], args=[holder, self._hold_ms])
            except UNREACHABLE as exc:
                self._outage.failed(exc)

    async def _give_back(self, holder: str) -> None:
        if self._limits.at_once:
            try:
                await self._redis.zrem(self._keys[1], holder)
            except UNREACHABLE as exc:
                self._outage.failed(exc)  # the place is free again when its hold runs out

    async def pause(self, seconds: float) -> None:
        await self._local.pause(seconds)
        if self._outage.use_shared():
            try:
                await self._pause(keys=[self._keys[2]], args=[max(1, round(seconds * 1000))])
            except UNREACHABLE as exc:
                self._outage.failed(exc)

    async def close(self) -> None:
        await self._redis.aclose()


class GateWatch(Protocol):
    """Told how long each request waited for the key's limits, and of each 429 pause."""

    def upstream_gate_waited(self, seconds: float) -> None: ...

    def upstream_paused(self, seconds: float) -> None: ...


class WatchedGate:
    """A gate whose waits and pauses are told to `watch` (the metrics)."""

    def __init__(self, gate: UpstreamGate, watch: GateWatch) -> None:
        self._gate = gate
        self._watch = watch

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        started = time.monotonic()
        async with self._gate.slot():
            self._watch.upstream_gate_waited(time.monotonic() - started)
            yield

    async def pause(self, seconds: float) -> None:
        self._watch.upstream_paused(seconds)
        await self._gate.pause(seconds)

    async def close(self) -> None:
        await self._gate.close()


def key_id(base_url: str, api_key: SecretStr) -> str:
    """Names a key's gate in Redis without the key: bots sharing a key share its limits."""
    digest = hashlib.sha256(f"{base_url}\n{api_key.get_secret_value()}".encode())
    return digest.hexdigest()[:16]


def build_gate(settings: Settings, watch: GateWatch | None = None) -> UpstreamGate:
    """Shared through Redis when DATABASE_URL names one, else this process's own; `watch`
    (the metrics) is told of every wait and pause."""
    limits = GateLimits(
        settings.upstream_requests_per_minute, settings.upstream_concurrent_requests
    )
    location = database_location(settings.database_url)
    gate: UpstreamGate
    if isinstance(location, RedisLocation):
        key = key_id(settings.openai_root, settings.openai_api_key)
        gate = RedisGate(location.url, key, limits)
    else:
        gate = LocalGate(limits)
    return gate if watch is None else WatchedGate(gate, watch)
