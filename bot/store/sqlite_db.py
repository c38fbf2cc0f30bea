"""One SQLite connection in a thread of its own: each call runs whole there, as one transaction."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from bot.store.base import StoreUnavailable, not_open

T = TypeVar("T")
Work = Callable[[sqlite3.Connection], T]


class Database:
    """Every call is one function run in the store's one thread: a write is BEGIN IMMEDIATE ...
    COMMIT around it, so nothing another caller does can commit it early or see it half done."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    async def open(self, setup: Work[None]) -> None:
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="sqlite")
        self._conn = await self._call(self._connect)
        await self._call(setup)

    def _connect(self, _: object) -> sqlite3.Connection:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level None: no implicit transactions; each call says BEGIN and COMMIT.
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a commit survives the process being killed (the WAL is in the OS);
        # only an OS crash or power loss can undo the last few commits.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=5000")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    async def close(self) -> None:
        if self._executor is None:
            return
        if self._conn is not None:
            await self._call(lambda conn: conn.close())
            self._conn = None
        self._executor.shutdown(wait=True)
        self._executor = None

    async def write(self, work: Work[T]) -> T:
        """`work` in one transaction, committed before this returns (rolled back if it raises)."""
        return await self._call(lambda conn: _transaction(conn, work, "BEGIN IMMEDIATE"))

    async def read(self, work: Work[T]) -> T:
        """`work` on one consistent snapshot."""
        return await self._call(lambda conn: _transaction(conn, work, "BEGIN"))

    async def _call(self, work: Callable[[sqlite3.Connection], T]) -> T:
        if self._executor is None:
            raise not_open()
        conn = self._conn

        def run() -> T:
            try:
                return work(conn)  # type: ignore[arg-type]
            except sqlite3.OperationalError as exc:  # locked, full, unreadable: not our bug
                raise StoreUnavailable(f"SQLite {self._path}: {exc}") from exc

        return await asyncio.get_running_loop().run_in_executor(self._executor, run)


def _transaction(conn: sqlite3.Connection, work: Work[T], begin: str) -> T:
    conn.execute(begin)
    try:
        result = work(conn)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result
