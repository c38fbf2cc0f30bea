"""While a shared Redis does not answer, a replica keeps to its own limits: when to ask Redis
again, and the two lines the operator reads (gone, back). Used by the flood windows and the
upstream gate, which both fall back to this process's own count meanwhile."""

from __future__ import annotations

import logging
import time

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# What says "Redis does not answer now" (a restart, a failover, a network cut).
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)
_RETRY_AFTER_SECONDS = 1.0  # while Redis is down, it is asked again at most this often


class RedisOutage:
    """Whether to use Redis now; said once each way in the caller's log.

    `what` names what lives in Redis ("Telegram's flood windows"), `meanwhile` what this
    replica does instead ("this replica limits itself alone").
    """

    def __init__(self, log: logging.Logger, what: str, meanwhile: str) -> None:
        self._log = log
        self._what = what
        self._meanwhile = meanwhile
        self._down_since: float | None = None
        self._next_try = 0.0

    def use_shared(self) -> bool:
        return self._down_since is None or time.monotonic() >= self._next_try

    def failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        if self._down_since is None:
            self._down_since = now
            self._log.error(
                "%s in Redis are unreachable (%s): %s until Redis is back",
                self._what,
                type(exc).__name__,
                self._meanwhile,
            )
        self._next_try = now + _RETRY_AFTER_SECONDS

    def back(self) -> None:
        if self._down_since is not None:
            self._log.info(
                "%s in Redis are back after %.0f s",
                self._what,
                time.monotonic() - self._down_since,
            )
            self._down_since = None
