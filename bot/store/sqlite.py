"""The embedded default store: SQLite in WAL mode, one process (contract.py: the promises)."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from bot.store import codec
from bot.store.base import (
    CHARGE_MEMORY_SECONDS,
    UPDATE_MEMORY_SECONDS,
    Acceptance,
    Job,
    Limits,
    NewJob,
    Prefs,
    PrefValue,
    Scope,
    Stats,
    UpdateBeingHandled,
    Usage,
    UsageTotal,
    check_pref_name,
    prefs_from,
    short_reason,
)
from bot.store.sqlite_db import Database
from bot.store.sqlite_jobs import accept, accept_request, claim, fail, fenced_update, finish
from bot.store.sqlite_schema import MIGRATIONS, migrate
from bot.store.sqlite_usage import stats, usage_total

SCHEMA_VERSION = len(MIGRATIONS)  # what this code migrates a database to


class SqliteStore:
    """Store on one SQLite file, owned by one process."""

    def __init__(self, path: Path) -> None:
        self._db = Database(path)
        # Updates this process is handling now (one process owns the file: memory is enough).
        self._holding: set[int] = set()

    async def open(self) -> None:
        await self._db.open(migrate)

    async def close(self) -> None:
        await self._db.close()

    async def ping(self) -> None:
        await self._db.read(lambda db: db.execute("SELECT 1").fetchall())

    async def _rows(self, sql: str, *params: Any) -> list[sqlite3.Row]:
        return await self._db.read(lambda db: db.execute(sql, params).fetchall())

    async def _write(self, sql: str, *params: Any) -> int:
        """One statement in its own transaction; the rows it changed."""
        return await self._db.write(lambda db: db.execute(sql, params).rowcount)

    # preferences

    async def get_prefs(self, scope: Scope, owner_id: int) -> Prefs:
        rows = await self._rows(
            "SELECT name, value FROM prefs WHERE scope=? AND owner_id=?", scope, owner_id
        )
        return prefs_from((r[0], r[1]) for r in rows)

    async def get_chat_and_user_prefs(self, chat_id: int, user_id: int) -> tuple[Prefs, Prefs]:
        rows = await self._rows(
            "SELECT scope, name, value FROM prefs WHERE (scope='chat' AND owner_id=?) "
            "OR (scope='user' AND owner_id=?)",
            chat_id,
            user_id,
        )
        chat = prefs_from((r[1], r[2]) for r in rows if r[0] == "chat")
        return chat, prefs_from((r[1], r[2]) for r in rows if r[0] == "user")

    async def set_pref(self, scope: Scope, owner_id: int, name: str, value: PrefValue) -> None:
        check_pref_name(name)
        if value is None:
            await self._write(
                "DELETE FROM prefs WHERE scope=? AND owner_id=? AND name=?", scope, owner_id, name
            )
            return
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

    # updates and one-off claims

    async def claim_update(self, update_id: int) -> bool:
        if update_id in self._holding:
            raise UpdateBeingHandled(f"update {update_id} is being handled now")
        if await self._rows("SELECT 1 FROM updates WHERE update_id=?", update_id):
            return False
        self._holding.add(update_id)
        return True

    async def confirm_update(self, update_id: int) -> None:
        if update_id not in self._holding:
            return  # marked seen already, by the accept_job that queued its job
        try:
            await self._write(
                "INSERT OR IGNORE INTO updates (update_id, seen_at) VALUES (?, ?)",
                update_id,
                time.time(),
            )
        finally:
            self._holding.discard(update_id)

    async def forget_update(self, update_id: int) -> None:
        self._holding.discard(update_id)

    async def claim_once(self, key: str, ttl_seconds: float) -> bool:
        now = time.time()
        claimed = await self._write(
            "INSERT INTO claims (key, expires_at) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET expires_at=excluded.expires_at "
            "WHERE claims.expires_at<=?",
            key,
            now + ttl_seconds,
            now,
        )
        return claimed == 1

    async def release_claim(self, key: str) -> None:
        await self._write("DELETE FROM claims WHERE key=?", key)

    # jobs

    async def accept_job(self, update_id: int | None, job: NewJob, limits: Limits) -> Acceptance:
        accepted = await self._db.write(lambda db: accept(db, update_id, job, limits))
        if update_id is not None:
            self._holding.discard(update_id)
        return accepted

    async def accept_request(self, limits: Limits) -> Acceptance:
        return await self._db.write(lambda db: accept_request(db, limits))

    async def get_job(self, job_id: int) -> Job | None:
        rows = await self._rows("SELECT * FROM jobs WHERE id=?", job_id)
        return codec.from_columns(rows[0]) if rows else None

    async def claim_jobs(
        self, owner: str, limit: int, lease_seconds: float, max_attempts: int, gave_up: str
    ) -> list[Job]:
        if limit <= 0:
            return []
        return await self._db.write(
            lambda db: claim(db, owner, limit, time.time(), lease_seconds, max_attempts, gave_up)
        )

    async def renew_leases(self, owner: str, job_ids: list[int], lease_seconds: float) -> set[int]:
        if not job_ids:
            return set()
        marks = ", ".join("?" for _ in job_ids)
        sql = (
            f"UPDATE jobs SET lease_until=? WHERE lease_owner=? AND status='running' "  # noqa: S608
            f"AND id IN ({marks}) RETURNING id"
        )
        params = (time.time() + lease_seconds, owner, *job_ids)
        rows = await self._db.write(lambda db: db.execute(sql, params).fetchall())
        return {int(row[0]) for row in rows}

    async def set_placeholder(self, job: Job, message_id: int) -> None:
        await self._fenced(job, "placeholder_id=?", message_id)

    async def record_sent(
        self, job: Job, digest: str, sent_ids: tuple[int, ...], file_sent: bool
    ) -> None:
        await self._fenced(
            job, "sent_digest=?, sent_ids=?, file_sent=?", digest, json.dumps(sent_ids), file_sent
        )

    async def finish_job(
        self, job: Job, audio_seconds: float | None, reply_ids: tuple[int, ...] = ()
    ) -> None:
        await self._db.write(lambda db: finish(db, job, audio_seconds, reply_ids, time.time()))

    async def fail_job(self, job: Job, reason: str) -> None:
        await self._db.write(lambda db: fail(db, job, short_reason(reason), time.time()))

    async def retry_job(self, job: Job, reason: str, delay: float) -> None:
        await self._fenced(
            job,
            "status='queued', error=?, not_before=?, lease_owner=NULL, lease_until=NULL",
            short_reason(reason),
            time.time() + delay,
        )

    async def _fenced(self, job: Job, assignments: str, *params: Any) -> None:
        await self._db.write(lambda db: fenced_update(db, job, assignments, *params))

    async def release_jobs(self, owner: str) -> int:
        # attempts-1: being stopped is not the job's fault.
        return await self._write(
            "UPDATE jobs SET status='queued', attempts=max(attempts-1, 0), lease_owner=NULL, "
            "lease_until=NULL WHERE status='running' AND lease_owner=?",
            owner,
        )

    async def recover_jobs(self) -> int:
        # One process owns a SQLite file: whatever is "running" at start belonged to a process
        # that is gone, so it need not wait for its lease to run out. Its claim counted.
        return await self._write(
            "UPDATE jobs SET status='queued', lease_owner=NULL, lease_until=NULL "
            "WHERE status='running'"
        )

    async def prune(self, older_than_seconds: float) -> int:
        def prune(db: sqlite3.Connection) -> int:
            now = time.time()
            count = db.execute(
                "DELETE FROM jobs WHERE status IN ('done', 'failed') AND finished_at<?",
                (now - older_than_seconds,),
            ).rowcount
            db.execute("DELETE FROM updates WHERE seen_at<?", (now - UPDATE_MEMORY_SECONDS,))
            db.execute("DELETE FROM charges WHERE open=0 AND at<?", (now - CHARGE_MEMORY_SECONDS,))
            db.execute("DELETE FROM claims WHERE expires_at<=?", (now,))
            db.execute("DELETE FROM transcripts WHERE expires_at<=?", (now,))
            return count

        return await self._db.write(prune)

    async def count_queued(self) -> int:
        rows = await self._rows("SELECT n FROM job_counts WHERE status='queued'")
        return int(rows[0][0]) if rows else 0

    # transcript cache

    async def get_transcript(self, key: str) -> str | None:
        rows = await self._rows(
            "SELECT text FROM transcripts WHERE key=? AND expires_at>?", key, time.time()
        )
        return str(rows[0][0]) if rows else None

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

    # usage, limits and statistics

    async def add_usage(self, usage: Usage) -> None:
        await self._write(
            "INSERT INTO usage (user_id, chat_id, model, audio_seconds, input_tokens, "
            "output_tokens, at, kind) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            usage.user_id,
            usage.chat_id,
            usage.model,
            usage.audio_seconds,
            usage.input_tokens,
            usage.output_tokens,
            usage.at or time.time(),
            usage.kind.value,
        )

    async def usage_since(self, user_id: int, since: float) -> list[UsageTotal]:
        rows = await self._rows(
            "SELECT model, count(*), sum(audio_seconds), sum(input_tokens), sum(output_tokens), "
            "kind FROM usage WHERE user_id=? AND at>=? GROUP BY model, kind ORDER BY model, kind",
            user_id,
            since,
        )
        return [usage_total(row) for row in rows]

    async def quota_used(self, subject: int, since: float) -> float:
        rows = await self._rows(
            "SELECT coalesce(sum(seconds), 0) FROM charges WHERE subject=? AND at>=?",
            subject,
            since,
        )
        return float(rows[0][0])

    async def recent_job_times(self, subject: int, since: float) -> list[float]:
        rows = await self._rows(
            "SELECT at FROM charges WHERE subject=? AND at>=? ORDER BY at", subject, since
        )
        return [float(row[0]) for row in rows]

    async def stats(self, days: int = 7) -> Stats:
        return await self._db.read(lambda db: stats(db, days))
