"""Storage: the Store protocol and its backends."""

from __future__ import annotations

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
    StoreUnavailable,
    UpdateBeingHandled,
    Usage,
    UsageKind,
    UsageTotal,
)
from bot.store.contract import Store
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
    "UsageKind",
    "UsageTotal",
    "open_store",
]

# Errors that mean "the store cannot take this now", not "this update is bad": each backend
# turns its own into StoreUnavailable; an update another replica is handling right now is
# answered 503 too, and comes again later.
TRANSIENT_STORE_ERRORS: tuple[type[BaseException], ...] = (UpdateBeingHandled, StoreUnavailable)


def open_store(url: str) -> Store:
    """The backend named by DATABASE_URL (not yet opened)."""
    location = database_location(url)
    if isinstance(location, RedisLocation):
        return RedisStore(location)
    return SqliteStore(location.path)
