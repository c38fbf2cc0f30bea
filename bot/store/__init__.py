"""Storage: the Store protocol and its backends."""

from __future__ import annotations

import sqlite3

from redis.exceptions import BusyLoadingError, OutOfMemoryError, ReadOnlyError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.config import RedisLocation, database_location
from bot.store.base import (
    PREF_NAMES,
    Acceptance,
    Job,
    JobStatus,
    LeaseLost,
    Limits,
    MediaKind,
    NewJob,
    Prefs,
    PrefValue,
    Scope,
    Stats,
    Store,
    StoreUnavailable,
    UpdateBeingHandled,
    Usage,
    UsageTotal,
)
from bot.store.redis import RedisStore
from bot.store.sqlite import SqliteStore

__all__ = [
    "PREF_NAMES",
    "TRANSIENT_STORE_ERRORS",
    "Acceptance",
    "Job",
    "JobStatus",
    "LeaseLost",
    "Limits",
    "MediaKind",
    "NewJob",
    "PrefValue",
    "Prefs",
    "RedisStore",
    "Scope",
    "SqliteStore",
    "Stats",
    "Store",
    "StoreUnavailable",
    "UpdateBeingHandled",
    "Usage",
    "UsageTotal",
    "open_store",
]

# Errors that mean "the store is unavailable now", not "this update is bad". Redis: the
# connection is lost or timed out (BusyLoadingError: restarting, still reading its AOF), the
# server is a replica that a failover has not promoted yet (ReadOnlyError), or it is full
# (OutOfMemoryError, with maxmemory-policy noeviction). And an update another replica is
# handling right now: it too is answered 503 and comes again later.
TRANSIENT_STORE_ERRORS: tuple[type[BaseException], ...] = (
    UpdateBeingHandled,
    StoreUnavailable,
    sqlite3.Error,
    OSError,
    RedisConnectionError,
    RedisTimeoutError,
    BusyLoadingError,
    ReadOnlyError,
    OutOfMemoryError,
)


def open_store(url: str) -> Store:
    """The backend named by DATABASE_URL (not yet opened)."""
    location = database_location(url)
    if isinstance(location, RedisLocation):
        return RedisStore(location)
    return SqliteStore(location.path)
