"""The SQLite job operations that take several statements: each runs inside one transaction."""

from __future__ import annotations

import json
import logging
import sqlite3
from typing import Any

from bot.store import codec
from bot.store.base import (
    REPLACEABLE_STATUSES,
    Acceptance,
    Job,
    LeaseLost,
    Limits,
    NewJob,
    short_reason,
)

log = logging.getLogger(__name__)

_NAMES = ", ".join(codec.NEW_JOB_FIELDS)
_MARKS = ", ".join("?" for _ in codec.NEW_JOB_FIELDS)
_FRESH = ", ".join(f"{name}=excluded.{name}" for name in codec.NEW_JOB_FIELDS)
# A job that accept() found replaceable (REPLACEABLE_STATUSES) starts afresh, under its id.
_INSERT_JOB = (
    f"INSERT INTO jobs ({_NAMES}, created_at) VALUES ({_MARKS}, ?) "  # noqa: S608
    "ON CONFLICT (chat_id, message_id, model) DO UPDATE SET "
    f"{_FRESH}, created_at=excluded.created_at, status='queued', attempts=0, not_before=0, "
    "lease_owner=NULL, lease_until=NULL, placeholder_id=NULL, error=NULL, reply_ids='[]', "
    "audio_seconds=NULL, finished_at=NULL, sent_ids='[]', sent_digest=NULL, file_sent=0 "
    "RETURNING id"
)


def accept(
    db: sqlite3.Connection, update_id: int | None, job: NewJob, limits: Limits
) -> Acceptance:
    now = limits.now
    if update_id is not None:
        seen = db.execute(
            "INSERT OR IGNORE INTO updates (update_id, seen_at) VALUES (?, ?)", (update_id, now)
        )
        if seen.rowcount == 0:
            return Acceptance("seen")
    found = db.execute(
        "SELECT id, status FROM jobs WHERE chat_id=? AND message_id=? AND model=?",
        (job.chat_id, job.message_id, job.model),
    ).fetchone()
    if found is not None and found["status"] not in REPLACEABLE_STATUSES:
        return Acceptance("exists", int(found["id"]))
    refused = _over_limits(db, limits)
    if refused is not None:
        return refused
    (job_id,) = db.execute(_INSERT_JOB, (*codec.new_job_columns(job), now)).fetchone()
    db.execute(
        "INSERT OR REPLACE INTO charges (job_id, subject, at, seconds, open) "
        "VALUES (?, ?, ?, ?, 1)",
        (job_id, limits.subject, now, limits.reserve_seconds),
    )
    return Acceptance("queued", int(job_id))


def accept_request(db: sqlite3.Connection, limits: Limits) -> Acceptance:
    """A request that is not a job: a place in the per-minute window, unless refused. Its
    charge (0 s) has an id below zero, never a job's."""
    refused = _over_limits(db, limits)
    if refused is not None:
        return refused
    db.execute(
        "INSERT INTO charges (job_id, subject, at, seconds, open) "
        "VALUES ((SELECT min(0, coalesce(min(job_id), 0)) - 1 FROM charges), ?, ?, 0, 0)",
        (limits.subject, limits.now),
    )
    return Acceptance("queued")


def _over_limits(db: sqlite3.Connection, limits: Limits) -> Acceptance | None:
    subject = limits.subject
    if limits.jobs_per_minute:
        # The per_minute-th newest job still counted: when it stops counting, one more fits.
        row = db.execute(
            "SELECT at FROM charges WHERE subject=? AND at>? ORDER BY at DESC LIMIT 1 OFFSET ?",
            (subject, limits.rate_since, limits.jobs_per_minute - 1),
        ).fetchone()
        if row is not None:
            return Acceptance("over_rate", retry_in=limits.rate_retry_in(float(row[0])))
    ceiling = limits.quota_ceiling
    if ceiling is not None:
        (used,) = db.execute(
            "SELECT coalesce(sum(seconds), 0) FROM charges WHERE subject=? AND at>=?",
            (subject, limits.day_start),
        ).fetchone()
        if used > ceiling:
            return Acceptance("over_quota", retry_in=limits.quota_retry_in)
    return None


def claim(
    db: sqlite3.Connection,
    owner: str,
    limit: int,
    now: float,
    lease_seconds: float,
    max_attempts: int,
    gave_up: str,
) -> list[Job]:
    """Due jobs (and those whose lease ran out), one more attempt each. A claim by the worker
    that still runs the job (its renewals failed for a while) is that same run: neither an
    attempt nor a new epoch."""
    rows = db.execute(
        "UPDATE jobs SET status='running', lease_until=:until, "
        "attempts=attempts+(lease_owner IS NOT :owner), "
        "epoch=epoch+(lease_owner IS NOT :owner), lease_owner=:owner "
        "WHERE id IN (SELECT id FROM jobs WHERE (status='queued' AND not_before<=:now) "
        "OR (status='running' AND lease_until<:now) ORDER BY id LIMIT :limit) RETURNING *",
        {"owner": owner, "until": now + lease_seconds, "now": now, "limit": limit},
    ).fetchall()
    jobs = [codec.from_columns(row) for row in rows]
    claimed = []
    for job in sorted(jobs, key=lambda j: j.id):
        if job.attempts > max_attempts:
            job = _give_up(db, job, now, gave_up)
        claimed.append(job)
    return claimed


def _give_up(db: sqlite3.Connection, job: Job, now: float, gave_up: str) -> Job:
    """Claimed once too often: each earlier run ended without an outcome (a crash, a kill)."""
    reason = short_reason(gave_up)
    db.execute(
        "UPDATE jobs SET status='failed', error=?, finished_at=?, lease_owner=NULL, "
        "lease_until=NULL WHERE id=?",
        (reason, now, job.id),
    )
    _settle(db, job, 0)
    found = db.execute("SELECT * FROM jobs WHERE id=?", (job.id,)).fetchone()
    return codec.from_columns(found)


def _settle(db: sqlite3.Connection, job: Job, seconds: float | None) -> None:
    """The job's quota charge closed at these seconds (None: the reservation stands)."""
    db.execute(
        "UPDATE charges SET seconds=coalesce(?, seconds), open=0 WHERE job_id=?", (seconds, job.id)
    )


def fenced_update(db: sqlite3.Connection, job: Job, assignments: str, *params: Any) -> None:
    """Change a running job only under the claim that `job` came from; else LeaseLost."""
    changed = db.execute(
        f"UPDATE jobs SET {assignments} WHERE id=? AND status='running' "  # noqa: S608
        "AND lease_owner IS ? AND epoch=?",
        (*params, job.id, job.lease_owner, job.epoch),
    ).rowcount
    if changed != 1:
        raise LeaseLost(f"job={job.id}: its claim by {job.lease_owner} (epoch {job.epoch}) is over")


def finish(
    db: sqlite3.Connection,
    job: Job,
    audio_seconds: float | None,
    reply_ids: tuple[int, ...],
    now: float,
) -> None:
    """Done (fenced): its charge settled with the measured seconds, its usage recorded."""
    fenced_update(
        db,
        job,
        "status='done', audio_seconds=?, reply_ids=?, finished_at=?, lease_owner=NULL, "
        "lease_until=NULL, error=NULL",
        audio_seconds,
        json.dumps(list(reply_ids)),
        now,
    )
    _settle(db, job, audio_seconds)
    if audio_seconds:
        db.execute(
            "INSERT INTO usage (user_id, chat_id, model, audio_seconds, at) VALUES (?, ?, ?, ?, ?)",
            (job.user_id, job.chat_id, job.model, audio_seconds, now),
        )


def fail(db: sqlite3.Connection, job: Job, reason: str, now: float) -> None:
    """Failed (fenced): its charge released."""
    fenced_update(
        db,
        job,
        "status='failed', error=?, finished_at=?, lease_owner=NULL, lease_until=NULL",
        reason,
        now,
    )
    _settle(db, job, 0)
