"""Writes that must outlast a store outage: what they record was paid for already.

A transcript comes back from the API while Redis restarts (or fails over, or is paused): giving
the attempt up would run the job again, and pay the API again for the same note. Such a write
is tried again until the store answers, for a while: a restart takes seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from bot.store.base import StoreUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

PATIENCE_SECONDS = 60.0  # then the attempt is given up as before (the job is retried later)
_FIRST_WAIT = 0.25
_LONGEST_WAIT = 5.0


async def outlasting_outages(write: Callable[[], Awaitable[T]], what: str) -> T:
    """`write()`, tried again while the store is unavailable, for up to PATIENCE_SECONDS."""
    deadline = time.monotonic() + PATIENCE_SECONDS
    wait = _FIRST_WAIT
    while True:
        try:
            return await write()
        except StoreUnavailable as exc:
            if time.monotonic() + wait > deadline:
                raise
            if wait == _FIRST_WAIT:
                log.warning("%s waits for the store (%s)", what, exc)
            await asyncio.sleep(wait)
            wait = min(wait * 2, _LONGEST_WAIT)
