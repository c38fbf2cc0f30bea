"""Storage: the Store protocol and its backends."""

from __future__ import annotations

import sqlite3

from bot.config import database_location
from bot.store.base import ChatSettings, Job, NewJob, Stats, Store
from bot.store.sqlite import SqliteStore

__all__ = [
    "TRANSIENT_STORE_ERRORS",
    "ChatSettings",
    "Job",
    "NewJob",
    "SqliteStore",
    "Stats",
    "Store",
    "open_store",
]

# Errors that mean "the store is unavailable now", not "this update is bad".
TRANSIENT_STORE_ERRORS: tuple[type[BaseException], ...] = (sqlite3.Error, OSError)


def open_store(url: str) -> Store:
    """The backend named by DATABASE_URL (not yet opened)."""
    return SqliteStore(database_location(url).path)
