"""The embedded default store: SQLite in WAL mode through aiosqlite (one process)."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

import aiosqlite

from bot.store.base import (
    PREF_NAMES,
    Job,
    NewJob,
    Prefs,
    PrefValue,
    Scope,
    Stats,
    Usage,
    UsageTotal,
)

log = logging.getLogger(__name__)

# Each entry moves the schema one version up; PRAGMA user_version remembers where we are.
_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE users (
        user_id INTEGER PRIMARY KEY,
        model TEXT,
        updated_at REAL NOT NULL
    );
    CREATE TABLE chats (
        chat_id INTEGER PRIMARY KEY,
        model TEXT,
        auto_transcribe INTEGER,
        updated_at REAL NOT NULL
    );
    CREATE TABLE updates (
        update_id INTEGER PRIMARY KEY,
        seen_at REAL NOT NULL
    );
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY,
        chat_id INTEGER NOT NULL,
        message_id INTEGER NOT NULL,
        user_id INTEGER NOT NULL,
        chat_type TEXT NOT NULL,
        kind TEXT NOT NULL,
        file_id TEXT NOT NULL,
        file_unique_id TEXT NOT NULL,
        model TEXT NOT NULL,
        duration REAL,
        file_size INTEGER,
        file_name TEXT,
        mime_type TEXT,
        language_code TEXT,
        explicit INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL DEFAULT 'queued',
        attempts INTEGER NOT NULL DEFAULT 0,
        not_before REAL NOT NULL DEFAULT 0,
        lease_owner TEXT,
        lease_until REAL,
        placeholder_id INTEGER,
        error TEXT,
        audio_seconds REAL,
        created_at REAL NOT NULL,
        finished_at REAL,
        UNIQUE (chat_id, message_id)
    );
    CREATE INDEX jobs_ready ON jobs (status, not_before);
    CREATE INDEX jobs_user ON jobs (user_id, created_at);
    """,
    """
    CREATE TABLE prefs (
        scope TEXT NOT NULL,
        owner_id INTEGER NOT NULL,
        name TEXT NOT NULL,
        value TEXT NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (scope, owner_id, name)
    );
    INSERT INTO prefs SELECT 'user', user_id, 'model', json_quote(model), updated_at
        FROM users WHERE model IS NOT NULL;
    INSERT INTO prefs SELECT 'chat', chat_id, 'model', json_quote(model), updated_at
        FROM chats WHERE model IS NOT NULL;
    INSERT INTO prefs SELECT 'chat', chat_id, 'auto_transcribe',
        CASE auto_transcribe WHEN 0 THEN 'false' ELSE 'true' END, updated_at
        FROM chats WHERE auto_transcribe IS NOT NULL;
    DROP TABLE users;
    DROP TABLE chats;
    CREATE TABLE claims (
        key TEXT PRIMARY KEY,
        expires_at REAL NOT NULL
    );
    CREATE TABLE transcripts (
        key TEXT PRIMARY KEY,
        text TEXT NOT NULL,
        expires_at REAL NOT NULL
    );
    CREATE TABLE usage (
        id INTEGER PRIMARY KEY,
        user_id INTEGER NOT NULL,
        chat_id INTEGER NOT NULL,
        model TEXT NOT NULL,
        audio_seconds REAL NOT NULL DEFAULT 0,
        input_tokens INTEGER NOT NULL DEFAULT 0,
        output_tokens INTEGER NOT NULL DEFAULT 0,
        at REAL NOT NULL
    );
    CREATE INDEX usage_user ON usage (user_id, at);
    CREATE INDEX usage_at ON usage (at);
    INSERT INTO usage (user_id, chat_id, model, audio_seconds, at)
        SELECT user_id, chat_id, model, audio_seconds, finished_at FROM jobs
        WHERE status='done' AND audio_seconds IS NOT NULL;
    CREATE TABLE jobs_v2 (
        id INTEGER PRIMARY KEY,
        chat_id INTEGER NOT NULL,
        message_id INTEGER NOT NULL,
        user_id INTEGER NOT NULL,
        chat_type TEXT NOT NULL,
        kind TEXT NOT NULL,
        file_id TEXT NOT NULL,
        file_unique_id TEXT NOT NULL,
        model TEXT NOT NULL,
        duration REAL,
        file_size INTEGER,
        file_name TEXT,
        mime_type TEXT,
        language_code TEXT,
        explicit INTEGER NOT NULL DEFAULT 0,
        language TEXT,
        prompt TEXT,
        quiet INTEGER NOT NULL DEFAULT 0,
        sender_name TEXT,
        replaces TEXT NOT NULL DEFAULT '[]',
        status TEXT NOT NULL DEFAULT 'queued',
        attempts INTEGER NOT NULL DEFAULT 0,
        not_before REAL NOT NULL DEFAULT 0,
        lease_owner TEXT,
        lease_until REAL,
        placeholder_id INTEGER,
        error TEXT,
        reply_ids TEXT NOT NULL DEFAULT '[]',
        audio_seconds REAL,
        created_at REAL NOT NULL,
        finished_at REAL,
        UNIQUE (chat_id, message_id, model)
    );
    INSERT INTO jobs_v2 (id, chat_id, message_id, user_id, chat_type, kind, file_id,
        file_unique_id, model, duration, file_size, file_name, mime_type, language_code,
        explicit, status, attempts, not_before, lease_owner, lease_until, placeholder_id, error,
        audio_seconds, created_at, finished_at)
        SELECT id, chat_id, message_id, user_id, chat_type, kind, file_id,
        file_unique_id, model, duration, file_size, file_name, mime_type, language_code,
        explicit, status, attempts, not_before, lease_owner, lease_until, placeholder_id, error,
        audio_seconds, created_at, finished_at FROM jobs;
    DROP TABLE jobs;
    ALTER TABLE jobs_v2 RENAME TO jobs;
    CREATE INDEX jobs_ready ON jobs (status, not_before);
    CREATE INDEX jobs_user ON jobs (user_id, created_at);
    CREATE INDEX jobs_finished ON jobs (finished_at);
    """,
)

_JOB_FIELDS = tuple(f.name for f in fields(Job))
_NEW_JOB_FIELDS = tuple(f.name for f in fields(NewJob))
# How long a seen update id is remembered: Telegram gives up redelivering after about a day.
_UPDATE_MEMORY_SECONDS = 2 * 24 * 3600
_DAY = 24 * 3600


class SqliteStore:
    """Store on one SQLite file. Writes share one connection; `commit` is coalesced."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._db: aiosqlite.Connection | None = None
        self._pending_commit: asyncio.Future[None] | None = None

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("store is not open")
        return self._db

    async def open(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._db = await aiosqlite.connect(self._path)
        self._db.row_factory = sqlite3.Row
        await self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a commit survives the process being killed (the WAL is in the OS);
        # only an OS crash or power loss can undo the last few commits.
        await self._db.execute("PRAGMA synchronous=NORMAL")
        await self._db.execute("PRAGMA busy_timeout=5000")
        await self._db.execute("PRAGMA foreign_keys=ON")
        await self._migrate()

    async def _migrate(self) -> None:
        row = await self._one("PRAGMA user_version")
        version = int(row[0]) if row else 0
        for number, script in enumerate(_MIGRATIONS[version:], start=version + 1):
            await self.db.executescript(f"BEGIN;\n{script}\nPRAGMA user_version={number};\nCOMMIT;")
            log.info("database schema migrated to version %d", number)

    async def close(self) -> None:
        if self._db is not None:
            await self._db.commit()
            await self._db.close()
            self._db = None

    async def ping(self) -> None:
        await self._rows("SELECT 1")

    async def commit(self) -> None:
        # Every statement goes through aiosqlite's one thread in order, so a commit queued after
        # a caller's writes covers them. Callers that arrive while one is pending share it.
        fut = self._pending_commit
        if fut is None:
            fut = self._pending_commit = asyncio.get_running_loop().create_future()
            asyncio.get_running_loop().call_soon(self._start_commit, fut)
        await asyncio.shield(fut)

    def _start_commit(self, fut: asyncio.Future[None]) -> None:
        self._pending_commit = None

        async def run() -> None:
            try:
                await self.db.commit()
            except BaseException as exc:
                if not fut.done():
                    fut.set_exception(exc)
                raise
            else:
                if not fut.done():
                    fut.set_result(None)

        task = asyncio.get_running_loop().create_task(run())
        task.add_done_callback(_consume)

    # Each helper is one call into aiosqlite's thread that runs the statement to completion: a
    # cursor left open between calls (a SELECT not fully read, a RETURNING) would make another
    # caller's commit fail with "SQL statements in progress".

    async def _rows(self, sql: str, *params: Any) -> list[sqlite3.Row]:
        return list(await self.db.execute_fetchall(sql, params))

    async def _one(self, sql: str, *params: Any) -> sqlite3.Row | None:
        rows = await self._rows(sql, *params)
        return rows[0] if rows else None

    async def _write(self, sql: str, *params: Any) -> int:
        """Run a statement; with RETURNING, the number of rows it touched."""
        return len(await self._rows(sql, *params))

    # preferences

    async def get_prefs(self, scope: Scope, owner_id: int) -> Prefs:
        rows = await self._rows(
            "SELECT name, value FROM prefs WHERE scope=? AND owner_id=?", scope, owner_id
        )
        return Prefs(**{row[0]: json.loads(row[1]) for row in rows if row[0] in PREF_NAMES})

    async def get_chat_and_user_prefs(self, chat_id: int, user_id: int) -> tuple[Prefs, Prefs]:
        rows = await self._rows(
            "SELECT scope, name, value FROM prefs WHERE (scope='chat' AND owner_id=?) "
            "OR (scope='user' AND owner_id=?)",
            chat_id,
            user_id,
        )
        found: dict[str, dict[str, Any]] = {"chat": {}, "user": {}}
        for scope, name, value in rows:
            if name in PREF_NAMES:
                found[scope][name] = json.loads(value)
        return Prefs(**found["chat"]), Prefs(**found["user"])

    async def set_pref(self, scope: Scope, owner_id: int, name: str, value: PrefValue) -> None:
        if name not in PREF_NAMES:
            raise ValueError(f"unknown preference {name!r}")
        if value is None:
            await self._write(
                "DELETE FROM prefs WHERE scope=? AND owner_id=? AND name=?", scope, owner_id, name
            )
        else:
            await self._write(
                "INSERT INTO prefs (scope, owner_id, name, value, updated_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (scope, owner_id, name) "
                "DO UPDATE SET value=excluded.value, updated_at=excluded.updated_at",
                scope,
                owner_id,
                name,
                json.dumps(value),
                time.time(),
            )
        await self.commit()

    # updates and jobs

    async def claim_update(self, update_id: int) -> bool:
        return (
            await self._write(
                "INSERT OR IGNORE INTO updates (update_id, seen_at) VALUES (?, ?) "
                "RETURNING update_id",
                update_id,
                time.time(),
            )
            == 1
        )

    async def confirm_update(self, update_id: int) -> None:
        """Nothing to do: the claim became durable with the commit that accepted the update
        (one process owns the file, so no other can see it before)."""

    async def forget_update(self, update_id: int) -> None:
        await self._write("DELETE FROM updates WHERE update_id=?", update_id)
        await self.commit()

    async def claim_once(self, key: str, ttl_seconds: float) -> bool:
        now = time.time()
        claimed = await self._write(
            "INSERT INTO claims (key, expires_at) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET expires_at=excluded.expires_at "
            "WHERE claims.expires_at<=? RETURNING key",
            key,
            now + ttl_seconds,
            now,
        )
        await self.commit()
        return claimed == 1

    async def release_claim(self, key: str) -> None:
        await self._write("DELETE FROM claims WHERE key=?", key)
        await self.commit()

    # jobs

    async def enqueue(self, job: NewJob) -> bool:
        names = ", ".join(_NEW_JOB_FIELDS)
        marks = ", ".join("?" for _ in _NEW_JOB_FIELDS)
        values = [_column(getattr(job, name)) for name in _NEW_JOB_FIELDS]
        # A failed job asked for again starts afresh; a queued, running or done one stays.
        fresh = ", ".join(f"{name}=excluded.{name}" for name in _NEW_JOB_FIELDS)
        created = await self._write(
            f"INSERT INTO jobs ({names}, created_at) VALUES ({marks}, ?) "  # noqa: S608
            "ON CONFLICT (chat_id, message_id, model) DO UPDATE SET "
            f"{fresh}, created_at=excluded.created_at, status='queued', attempts=0, "
            "not_before=0, lease_owner=NULL, lease_until=NULL, placeholder_id=NULL, error=NULL, "
            "reply_ids='[]', audio_seconds=NULL, finished_at=NULL WHERE jobs.status='failed' "
            "RETURNING id",
            *values,
            time.time(),
        )
        return created == 1

    async def get_job(self, job_id: int) -> Job | None:
        row = await self._one("SELECT * FROM jobs WHERE id=?", job_id)
        return None if row is None else _job(row)

    async def claim_jobs(self, owner: str, limit: int, lease_seconds: float) -> list[Job]:
        now = time.time()
        rows = await self._rows(
            "UPDATE jobs SET status='running', lease_owner=?, lease_until=?, attempts=attempts+1 "
            "WHERE id IN (SELECT id FROM jobs WHERE (status='queued' AND not_before<=?) "
            "OR (status='running' AND lease_until<?) ORDER BY id LIMIT ?) RETURNING *",
            owner,
            now + lease_seconds,
            now,
            now,
            limit,
        )
        if rows:
            await self.commit()
        return sorted((_job(row) for row in rows), key=lambda job: job.id)

    async def renew_leases(self, owner: str, job_ids: list[int], lease_seconds: float) -> None:
        if not job_ids:
            return
        marks = ", ".join("?" for _ in job_ids)
        await self._write(
            f"UPDATE jobs SET lease_until=? WHERE lease_owner=? AND status='running' "  # noqa: S608
            f"AND id IN ({marks})",
            time.time() + lease_seconds,
            owner,
            *job_ids,
        )
        await self.commit()

    async def set_placeholder(self, job_id: int, message_id: int) -> None:
        await self._write("UPDATE jobs SET placeholder_id=? WHERE id=?", message_id, job_id)
        await self.commit()

    async def finish_job(
        self, job_id: int, audio_seconds: float | None, reply_ids: tuple[int, ...] = ()
    ) -> None:
        await self._write(
            "UPDATE jobs SET status='done', audio_seconds=?, reply_ids=?, finished_at=?, "
            "lease_owner=NULL, lease_until=NULL, error=NULL WHERE id=?",
            audio_seconds,
            json.dumps(list(reply_ids)),
            time.time(),
            job_id,
        )
        if audio_seconds:
            await self._write(
                "INSERT INTO usage (user_id, chat_id, model, audio_seconds, at) "
                "SELECT user_id, chat_id, model, ?, finished_at FROM jobs WHERE id=?",
                audio_seconds,
                job_id,
            )
        await self.commit()

    async def fail_job(self, job_id: int, reason: str) -> None:
        await self._write(
            "UPDATE jobs SET status='failed', error=?, finished_at=?, lease_owner=NULL, "
            "lease_until=NULL WHERE id=?",
            reason[:1000],
            time.time(),
            job_id,
        )
        await self.commit()

    async def retry_job(self, job_id: int, reason: str, delay: float) -> None:
        await self._write(
            "UPDATE jobs SET status='queued', error=?, not_before=?, lease_owner=NULL, "
            "lease_until=NULL WHERE id=?",
            reason[:1000],
            time.time() + delay,
            job_id,
        )
        await self.commit()

    async def release_jobs(self, owner: str) -> int:
        # attempts-1: being stopped is not the job's fault.
        count = await self._write(
            "UPDATE jobs SET status='queued', attempts=max(attempts-1, 0), lease_owner=NULL, "
            "lease_until=NULL WHERE status='running' AND lease_owner=? RETURNING id",
            owner,
        )
        await self.commit()
        return count

    async def recover_jobs(self) -> int:
        # One process owns a SQLite file: whatever is "running" at start belonged to a process
        # that is gone, so it need not wait for its lease to run out.
        count = await self._write(
            "UPDATE jobs SET status='queued', lease_owner=NULL, lease_until=NULL "
            "WHERE status='running' RETURNING id"
        )
        await self.commit()
        return count

    async def prune(self, older_than_seconds: float) -> int:
        cutoff = time.time() - older_than_seconds
        count = await self._write(
            "DELETE FROM jobs WHERE status IN ('done', 'failed') AND finished_at<? RETURNING id",
            cutoff,
        )
        now = time.time()
        await self._write("DELETE FROM updates WHERE seen_at<?", now - _UPDATE_MEMORY_SECONDS)
        await self._write("DELETE FROM claims WHERE expires_at<=?", now)
        await self._write("DELETE FROM transcripts WHERE expires_at<=?", now)
        await self.commit()
        return count

    # transcript cache

    async def get_transcript(self, key: str) -> str | None:
        row = await self._one(
            "SELECT text FROM transcripts WHERE key=? AND expires_at>?", key, time.time()
        )
        return None if row is None else str(row[0])

    async def put_transcript(self, key: str, text: str, ttl_seconds: float) -> None:
        if ttl_seconds <= 0:
            return
        await self._write(
            "INSERT INTO transcripts (key, text, expires_at) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET text=excluded.text, expires_at=excluded.expires_at",
            key,
            text,
            time.time() + ttl_seconds,
        )
        await self.commit()

    # usage, limits and statistics

    async def add_usage(self, usage: Usage) -> None:
        await self._write(
            "INSERT INTO usage (user_id, chat_id, model, audio_seconds, input_tokens, "
            "output_tokens, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            usage.user_id,
            usage.chat_id,
            usage.model,
            usage.audio_seconds,
            usage.input_tokens,
            usage.output_tokens,
            usage.at or time.time(),
        )
        await self.commit()

    async def usage_since(self, user_id: int, since: float) -> list[UsageTotal]:
        rows = await self._rows(
            "SELECT model, count(*), sum(audio_seconds), sum(input_tokens), sum(output_tokens) "
            "FROM usage WHERE user_id=? AND at>=? GROUP BY model ORDER BY model",
            user_id,
            since,
        )
        return [UsageTotal(str(r[0]), int(r[1]), float(r[2]), int(r[3]), int(r[4])) for r in rows]

    async def user_job_times(self, user_id: int, since: float) -> list[float]:
        rows = await self._rows(
            "SELECT created_at FROM jobs WHERE user_id=? AND created_at>=? ORDER BY created_at",
            user_id,
            since,
        )
        return [float(row[0]) for row in rows]

    async def user_audio_seconds_since(self, user_id: int, since: float) -> float:
        row = await self._one(
            "SELECT coalesce(sum(coalesce(audio_seconds, duration, 0)), 0) FROM jobs "
            "WHERE user_id=? AND created_at>=? AND status!='failed'",
            user_id,
            since,
        )
        return float(row[0]) if row else 0.0

    async def stats(self, days: int = 7) -> Stats:
        statuses = await self._rows("SELECT status, count(*) FROM jobs GROUP BY status")
        models = await self._rows(
            "SELECT model, sum(audio_seconds) FROM usage WHERE audio_seconds>0 GROUP BY model"
        )
        since = time.time() - time.time() % _DAY - (days - 1) * _DAY
        by_day: dict[str, dict[str, float]] = {}
        for day, model, seconds in await self._rows(
            "SELECT date(at, 'unixepoch'), model, sum(audio_seconds) FROM usage "
            "WHERE at>=? AND audio_seconds>0 GROUP BY 1, 2 ORDER BY 1 DESC, 2",
            since,
        ):
            by_day.setdefault(str(day), {})[str(model)] = float(seconds) / 60
        chats = await self._rows(
            "SELECT chat_id, count(*), sum(audio_seconds) FROM usage WHERE audio_seconds>0 "
            "GROUP BY chat_id ORDER BY 3 DESC LIMIT 5"
        )
        failed = await self._rows(
            "SELECT id, error FROM jobs WHERE status='failed' ORDER BY finished_at DESC LIMIT 5"
        )
        return Stats(
            by_status={str(r[0]): int(r[1]) for r in statuses},
            minutes_by_model={str(r[0]): float(r[1] or 0) / 60 for r in models},
            minutes_by_day=by_day,
            top_chats=[(int(r[0]), int(r[1]), float(r[2]) / 60) for r in chats],
            recent_failures=[(int(r[0]), str(r[1])) for r in failed],
        )


def _column(value: object) -> object:
    """A NewJob field as SQLite stores it."""
    return json.dumps(list(value)) if isinstance(value, tuple) else value


def _job(row: sqlite3.Row) -> Job:
    values = {name: row[name] for name in _JOB_FIELDS}
    values["explicit"] = bool(values["explicit"])
    values["quiet"] = bool(values["quiet"])
    values["replaces"] = tuple(json.loads(values["replaces"]))
    values["reply_ids"] = tuple(json.loads(values["reply_ids"]))
    return Job(**values)


def _consume(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("database commit failed", exc_info=task.exception())
