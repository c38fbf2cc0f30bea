"""The connection behind RedisStore: opening it, Redis's errors as StoreUnavailable, the Lua
scripts, and the keys every part of the store shares."""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import (
    BusyLoadingError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.config import RedisLocation
from bot.logs import Throttle
from bot.redis_client import connect
from bot.store import redis_scripts as lua
from bot.store import redis_scripts_claimed as claimed
from bot.store.base import StoreUnavailable, not_open

log = logging.getLogger(__name__)

PREFIX = "transcribot:"
GROUP = "workers"
UPDATE_BITS = 0xFFFF  # 65,536 update ids per seen-bitmap key (8 KB)

READY = PREFIX + "jobs:ready"
DELAYED = PREFIX + "jobs:delayed"
COUNTS = PREFIX + "jobs:count"
FINISHED = PREFIX + "jobs:finished"
FAILURES = PREFIX + "jobs:failures"


# What Redis raises when it cannot serve now: the connection is lost or timed out, it is still
# loading its AOF after a restart (BusyLoadingError), it is a replica a failover has not
# promoted yet (ReadOnlyError), or it is full under noeviction (OutOfMemoryError).
_UNAVAILABLE = (
    RedisConnectionError,
    RedisTimeoutError,
    BusyLoadingError,
    ReadOnlyError,
    OutOfMemoryError,
)
_S = TypeVar("_S", bound="RedisConnection")
_P = ParamSpec("_P")
_T = TypeVar("_T")


def translated(
    method: Callable[Concatenate[_S, _P], Coroutine[Any, Any, _T]],
) -> Callable[Concatenate[_S, _P], Coroutine[Any, Any, _T]]:
    """Redis's own "cannot serve now" errors become StoreUnavailable (no password in it)."""

    async def translating(self: _S, /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return await method(self, *args, **kwargs)
        except _UNAVAILABLE as exc:
            raise StoreUnavailable(
                f"Redis at {self._location.redacted}: {self._redact(str(exc))}"
            ) from exc

    functools.update_wrapper(translating, method)
    return translating


# The Lua scripts this store runs, by name, registered (and cached by Redis) at open.
_SCRIPTS = {
    "CLAIM_UPDATE": lua.CLAIM_UPDATE,
    "CONFIRM_UPDATE": lua.CONFIRM_UPDATE,
    "FORGET_UPDATE": lua.FORGET_UPDATE,
    "ACCEPT": lua.ACCEPT,
    "ACCEPT_REQUEST": lua.ACCEPT_REQUEST,
    "CLAIM": lua.CLAIM,
    "RENEW": lua.RENEW,
    "ADD_USAGE": lua.ADD_USAGE,
    "FINISH": claimed.FINISH,
    "RETRY": claimed.RETRY,
    "RELEASE": claimed.RELEASE,
    "PRUNE": claimed.PRUNE,
    "FORGET_CONSUMERS": claimed.FORGET_CONSUMERS,
    "FENCED_SET": claimed.FENCED_SET,
}


class RedisConnection:
    """One Redis database, its scripts, and this store's own state (claims, takeover cursor)."""

    def __init__(self, location: RedisLocation, *, update_hold_seconds: float = 60.0) -> None:
        self._location = location
        self._wait = location.wait  # (replicas, timeout ms): read once, not at every update
        self._update_hold = update_hold_seconds
        self._token = uuid.uuid4().hex  # this store's claims on updates
        self._redis: Redis | None = None
        self._scripts: dict[str, AsyncScript] = {}
        self._next_takeover = 0.0
        self._takeover_cursor = "0-0"  # where the look for expired leases goes on
        self._replica_lag = Throttle(60.0)  # updates a replica did not confirm in time

    @property
    def redis(self) -> Redis:
        if self._redis is None:
            raise not_open()
        return self._redis

    async def open(self) -> None:
        # The job scripts tolerate running twice (uniqueness keys, status checks); a usage
        # record could count twice.
        client = connect(self._location.url, max_connections=64)  # or the master Sentinel names
        self._redis = client
        self._scripts = {name: client.register_script(src) for name, src in _SCRIPTS.items()}
        try:
            await client.ping()
            version = str((await client.info("server")).get("redis_version", "0"))
            await self._ensure_group()
        except RedisError as exc:
            await self.close()
            raise StoreUnavailable(
                f"cannot reach Redis at {self._location.redacted}: {self._redact(str(exc))}"
            ) from exc
        if _version(version) < (6, 2):
            await self.close()
            raise StoreUnavailable(
                f"Redis {version} at {self._location.redacted} is too old: the job queue "
                "needs 6.2 or newer (XAUTOCLAIM)"
            )
        await self._warn_if_evicting()

    async def _warn_if_evicting(self) -> None:
        try:
            found = await wait(self.redis.config_get("maxmemory-policy"))
        except RedisError:
            return  # CONFIG is often disabled on managed Redis: nothing to tell then
        policy = str(found.get("maxmemory-policy", "noeviction"))
        if policy != "noeviction":
            log.warning(
                "Redis evicts keys when full (maxmemory-policy %s): queued jobs and settings "
                "could be lost; set maxmemory-policy noeviction",
                policy,
            )

    async def _ensure_group(self) -> None:
        # From id 0: entries already in the stream (a group lost with a Redis without
        # persistence, say) are delivered too.
        try:
            await self.redis.xgroup_create(READY, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _redact(self, text: str) -> str:
        for password in self._location.passwords:  # Redis's and the Sentinels' own
            text = text.replace(password, "***")
        return text

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    # Every write is applied (and in Redis's AOF) when its call returns. With replicas to wait
    # for (DATABASE_URL's wait_replicas: 1 with Sentinel), an accepted update's last write also
    # waits until they have it (confirm_update): a failover cannot then lose an accepted note.

    def _too_few_replicas(self, acknowledged: int, replicas: int, timeout_ms: int) -> None:
        # Accepted anyway: refusing every update while a replica is away would stop the bot;
        # the note is lost only if the master also dies before the replica catches up.
        count = self._replica_lag.hit()
        if count is not None:
            log.warning(
                "only %d of %d Redis replicas confirmed an accepted update within %d ms "
                "(%d such update(s) in the last minute)",
                acknowledged,
                replicas,
                timeout_ms,
                count,
            )

    @translated
    async def ping(self) -> None:
        await wait(self.redis.ping())

    async def _run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        try:
            return await self._scripts[name](keys=keys, args=args)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # Redis lost its data (restarted without persistence): start the queue again.
            log.warning("the job stream's consumer group was missing: created it again")
            await self._ensure_group()
            return await self._scripts[name](keys=keys, args=args)


async def wait(result: Awaitable[Any] | Any) -> Any:
    """redis-py types some commands as `Awaitable[T] | T` (shared with the sync client)."""
    return await cast(Awaitable[Any], result)


def update_keys(update_id: int) -> list[str]:
    """The seen-bitmap holding this update's bit, and its pending key."""
    return [f"{PREFIX}updates:{update_id >> 16}", f"{PREFIX}update:{update_id}"]


def _version(text: str) -> tuple[int, ...]:
    """ "7.0.15" -> (7, 0, 15)."""
    return tuple(int(part) for part in text.split(".") if part.isdigit())


def day_name(at: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(at))
