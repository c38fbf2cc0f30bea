"""How every part of the bot connects to Redis (the store, the flood windows, the upstream gate):
each on a pool of its own, with the same timeouts and the same retry."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff


def connect(url: str, *, max_connections: int) -> Redis:
    """A client on a pool of its own; nothing is connected until the first command.

    One immediate retry on a dropped connection: after Redis restarts, each pooled connection
    fails once before it reconnects. A command whose answer was lost may so run twice: each
    caller's scripts must tolerate that. More retries would only delay the caller's own way of
    coping with a Redis that is gone (a 503, a fallback to this process's own limits).
    """
    pool = BlockingConnectionPool.from_url(
        url,
        decode_responses=True,
        max_connections=max_connections,
        timeout=10,  # waiting for a free connection
        socket_connect_timeout=2,
        socket_timeout=5,
        # The asyncio Retry: the synchronous one, given to this client, retries nothing.
        retry=Retry(NoBackoff(), 1),
    )
    return Redis(connection_pool=pool)
