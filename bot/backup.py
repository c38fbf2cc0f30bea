"""`python -m bot backup PATH` and `restore PATH`: consistent copies of the SQLite database.

SQLite's online backup API copies the pages of one consistent snapshot while the bot goes on
writing (WAL mode: readers and the writer do not block each other), so a backup taken under
load is never half of one transaction. The copy is written beside its destination and renamed
into place only once it is whole and passes `PRAGMA integrity_check`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import logging
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

from bot.store.sqlite import SCHEMA_VERSION

log = logging.getLogger(__name__)

_BUSY_TIMEOUT_MS = 10_000


class BackupError(Exception):
    """The copy was not made; the message says why and what to do."""


@dataclass(frozen=True)
class Summary:
    path: Path
    size: int
    schema: int
    jobs_waiting: int  # queued or running: what a restored bot goes on with

    def describe(self) -> str:
        return (
            f"{self.path}: {self.size} bytes, schema {self.schema}, "
            f"{self.jobs_waiting} jobs queued or running"
        )


def destination_for(path: str, now: datetime) -> Path:
    """PATH itself, or a new file named by the time in it when PATH is a directory (or ends
    with a slash, as a directory still to be made)."""
    target = Path(path)
    if path.endswith(os.sep) or target.is_dir():
        return target / f"transcribot-{now:%Y%m%d-%H%M%S}.sqlite3"
    return target


def backup(database: Path, destination: Path) -> Summary:
    """Copy the live database to `destination` (replaced atomically when it exists)."""
    if not database.exists():
        raise BackupError(f"{database} does not exist: check DATABASE_URL")
    if destination.resolve() == database.resolve():
        raise BackupError("the backup must go to another file than the database itself")
    return _copy(database, destination)


def restore(source: Path, database: Path) -> Summary:
    """Replace the database's content with a backup's. The bot must be stopped."""
    if not source.exists():
        raise BackupError(f"{source} does not exist")
    summary = summarize(source)  # a damaged or foreign file is refused before anything changes
    if summary.schema > SCHEMA_VERSION:
        raise BackupError(
            f"{source} has schema {summary.schema}, newer than this version knows "
            f"({SCHEMA_VERSION}): restore it with the version that made it"
        )
    database.parent.mkdir(parents=True, exist_ok=True)
    # Into the live file through SQLite (not a file copy): its -wal and -shm stay consistent.
    with (
        _no_bot_running(database),
        _connect(source, read_only=True) as src,
        _connect(database) as dst,
    ):
        src.backup(dst)
    return summarize(database)


@contextlib.contextmanager
def running_on(database: Path) -> Iterator[None]:
    """Held by a bot while it runs on this SQLite file, so that `restore` refuses it.

    flock, not fcntl: SQLite's own locks are fcntl locks, which flock does not touch. A
    file system without flock (some network ones) only loses the check, never the bot.
    """
    with _locked(database, fcntl.LOCK_SH) as locked:
        if locked is False:
            raise BackupError(f"{database} is being restored: start the bot when that is done")
        yield


@contextlib.contextmanager
def _locked(database: Path, how: int) -> Iterator[bool | None]:
    """flock `how` without waiting: True if taken, False if another holds it, None when this
    file system cannot tell (logged)."""
    try:
        fd = os.open(database, os.O_RDONLY)
    except OSError as exc:
        log.warning("cannot open %s to lock it (%s): restore cannot tell a bot runs", database, exc)
        yield None
        return
    locked: bool | None = True
    try:
        fcntl.flock(fd, how | fcntl.LOCK_NB)
    except BlockingIOError:
        locked = False
    except OSError as exc:
        log.warning("cannot lock %s (%s): restore cannot tell a bot runs", database, exc)
        locked = None
    try:
        yield locked
    finally:
        os.close(fd)  # the lock goes with it


@contextlib.contextmanager
def _no_bot_running(database: Path) -> Iterator[None]:
    """Keeps bots off the database while it is replaced; BackupError when one is running."""
    if not database.exists():
        yield
        return
    with _locked(database, fcntl.LOCK_EX) as locked:
        if locked is False:
            raise BackupError(
                f"a bot is running on {database}: stop the bot first (a restore replaces "
                "everything it works on), then restore, then start it"
            )
        yield


def summarize(path: Path) -> Summary:
    """Check a database file whole and count what it holds; BackupError when it is unusable."""
    try:
        with _connect(path, read_only=True) as db:
            verdict = db.execute("PRAGMA integrity_check").fetchone()[0]
            if verdict != "ok":
                raise BackupError(f"{path} is damaged: {verdict}")
            schema = int(db.execute("PRAGMA user_version").fetchone()[0])
            waiting = db.execute(
                "SELECT count(*) FROM jobs WHERE status IN ('queued', 'running')"
            ).fetchone()[0]
    except sqlite3.Error as exc:
        raise BackupError(f"{path} is not a Transcribot database ({exc})") from None
    return Summary(path, path.stat().st_size, schema, int(waiting))


def _copy(database: Path, destination: Path) -> Summary:
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(f".{destination.name}.partial-{os.getpid()}")
    try:
        with _connect(database, read_only=True) as src, _connect(partial) as dst:
            # pages=-1: one step, so the copy is one snapshot even while the bot writes.
            src.backup(dst, pages=-1)
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside
        summary = summarize(partial)
        os.replace(partial, destination)
    except sqlite3.Error as exc:
        raise BackupError(f"cannot copy {database} to {destination}: {exc}") from None
    except OSError as exc:
        raise BackupError(f"cannot write {destination}: {exc.strerror}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return dataclasses.replace(summary, path=destination)


@contextlib.contextmanager
def _connect(path: Path, *, read_only: bool = False) -> Iterator[sqlite3.Connection]:
    # read_only: never creates the file, and never takes the write lock on the live database.
    target = f"file:{quote(str(path))}" + ("?mode=ro" if read_only else "")
    db = sqlite3.connect(target, uri=True, timeout=_BUSY_TIMEOUT_MS / 1000)
    try:
        yield db
    finally:
        db.close()
