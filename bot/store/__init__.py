"""Storage: the Store protocol and its backends."""

from __future__ import annotations

import sqlite3

from bot.config import database_location
from bot.store.base import (
    BOOL_PREFS,
    PREF_NAMES,
    Job,
    NewJob,
    Prefs,
    PrefValue,
    Scope,
    Stats,
    Store,
    Usage,
    UsageTotal,
)
from bot.store.sqlite import SqliteStore

__all__ = [
    "BOOL_PREFS",
    "PREF_NAMES",
    "TRANSIENT_STORE_ERRORS",
    "Job",
    "NewJob",
    "PrefValue",
    "Prefs",
    "Scope",
    "SqliteStore",
    "Stats",
    "Store",
    "Usage",
    "UsageTotal",
    "open_store",
]

# Errors that mean "the store is unavailable now", not "this update is bad".
TRANSIENT_STORE_ERRORS: tuple[type[BaseException], ...] = (sqlite3.Error, OSError)


def open_store(url: str) -> Store:
    """The backend named by DATABASE_URL (not yet opened)."""
    return SqliteStore(database_location(url).path)
