"""How every part of the bot connects to Redis (the store, the flood windows, the upstream gate):
each on a pool of its own, with the same timeouts and the same retry; one server (redis://,
rediss://) or the master Redis Sentinel names (redis+sentinel://), followed through a failover."""

from __future__ import annotations

from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import NoBackoff

from bot.locations import RedisLocation, SentinelAddress

_POOL_WAIT_SECONDS = 10  # waiting for a free connection when all are in use


class _BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """Sentinel's pool (the master's address, asked again after a failover), waiting for a
    free connection like the plain URL's pool instead of failing with "Too many connections"."""


def connect(url: str, *, max_connections: int) -> Redis:
    """A client on a pool of its own; nothing is connected until the first command.

    One immediate retry on a dropped connection: after Redis restarts (or fails over), each
    pooled connection fails once before it reconnects. A command whose answer was lost may so
    run twice: each caller's scripts must tolerate that. More retries would only delay the
    caller's own way of coping with a Redis that is gone (a 503, a fallback to this process's
    own limits).
    """
    location = RedisLocation(url)
    options: dict[str, Any] = {
        "decode_responses": True,
        "max_connections": max_connections,
        "timeout": _POOL_WAIT_SECONDS,
        "socket_connect_timeout": 2,
        "socket_timeout": 5,
        # The asyncio Retry: the synchronous one, given to this client, retries nothing.
        "retry": Retry(NoBackoff(), 1),
    }
    sentinel = location.sentinel
    if sentinel is not None:
        return _master(location, sentinel, options)
    # Without the query parameters only the bot reads (wait_replicas...): redis-py refuses them.
    pool = BlockingConnectionPool.from_url(location.plain_url, **options)
    return Redis(connection_pool=pool)


def _master(location: RedisLocation, sentinel: SentinelAddress, options: dict[str, Any]) -> Redis:
    """A client of the master the Sentinels name: it asks them again on each new connection,
    and drops its connections when the server it reaches is no longer the master."""
    manager = Sentinel(  # type: ignore[no-untyped-call]
        list(sentinel.sentinels),
        sentinel_kwargs={
            "password": sentinel.sentinel_password,
            "socket_connect_timeout": 2,
            "socket_timeout": 2,
        },
    )
    client: Redis = manager.master_for(
        sentinel.service,
        redis_class=Redis,
        connection_pool_class=_BlockingSentinelPool,
        db=sentinel.db,
        password=location.password,
        **options,
    )
    return client
