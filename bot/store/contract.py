"""What each store operation promises, on every backend: the Store protocol, split by concern.

Guarantees (SQLite and Redis alike):

- Every write is one atomic operation, durable when its call returns: SQLite runs each in its
  own transaction (BEGIN IMMEDIATE ... COMMIT, in the store's one thread), Redis in one Lua
  script or one command. No write ever becomes durable through another caller's commit, and no
  caller composes two writes that must both happen.
- `accept_job`: the update's seen mark, the job, its quota reservation and its place in the
  per-minute count happen together or not at all. A kill at any moment leaves either nothing
  (Telegram's redelivery is accepted) or all of it.
- Quota: what a subject used today is the sum of its charges (settled: measured seconds; open:
  reserved seconds). Charges are kept apart from jobs, so pruning jobs never resets a quota.
- Jobs: every claim by a worker counts as an attempt (a worker re-claiming a job it still
  runs, after its renewals failed a while, is that same run); a job claimed more than its
  allowance is failed by the claim itself and handed back with status FAILED, not run. Ids
  are never reused.
- Fencing: job writes after the claim (progress, finish, retry, fail) name the claim (owner
  and epoch); a writer whose lease was taken over writes nothing and gets LeaseLost.
- Errors: a backend that cannot be reached (or is full, or locked) raises StoreUnavailable,
  whatever its own error type; anything else is a bug.
"""

from __future__ import annotations

from typing import Protocol

from bot.store.base import (
    Acceptance,
    Job,
    Limits,
    NewJob,
    Prefs,
    PrefValue,
    Scope,
    Stats,
    Usage,
    UsageTotal,
)


class UpdateStore(Protocol):
    async def claim_update(self, update_id: int) -> bool:
        """True the first time this update id is seen; False once it was accepted.

        Writes nothing durable: it holds the update while this process handles it. Raises
        UpdateBeingHandled while another holder has it and has not accepted it.
        """

    async def confirm_update(self, update_id: int) -> None:
        """The update is handled: mark it seen for good (one atomic write) and let go of it."""

    async def forget_update(self, update_id: int) -> None:
        """Let go of an update that could not be accepted (it will be delivered again)."""


class ClaimStore(Protocol):
    async def claim_once(self, key: str, ttl_seconds: float) -> bool:
        """True for the first caller with this key (until it expires or is released)."""

    async def release_claim(self, key: str) -> None: ...


class SettingsStore(Protocol):
    async def get_prefs(self, scope: Scope, owner_id: int) -> Prefs: ...
    async def get_chat_and_user_prefs(self, chat_id: int, user_id: int) -> tuple[Prefs, Prefs]:
        """Both in one round trip: what every voice note needs before it is queued."""

    async def set_pref(self, scope: Scope, owner_id: int, name: str, value: PrefValue) -> None:
        """Set one preference (a name in PREF_NAMES); None clears it."""


class JobStore(Protocol):
    async def accept_job(self, update_id: int | None, job: NewJob, limits: Limits) -> Acceptance:
        """One atomic step: mark the update seen, check the limits, queue the job and reserve
        its quota. A failed job for the same (chat, message, model) is replaced: asking again
        is how a person retries. With update_id None (not from an update) no mark is made."""

    async def accept_request(self, limits: Limits) -> Acceptance:
        """One atomic step for a paid request that is not a job (a translation): check the
        limits as accept_job does and take a place in the per-minute window ("queued"), or
        refuse. Reserves no seconds."""

    async def get_job(self, job_id: int) -> Job | None: ...
    async def claim_jobs(
        self, owner: str, limit: int, lease_seconds: float, max_attempts: int, gave_up: str
    ) -> list[Job]:
        """Take jobs that are due (or whose lease ran out), each claim one more attempt. A job
        past max_attempts is failed here, with `gave_up` as its reason, and returned with
        status FAILED: tell, do not run."""

    async def renew_leases(self, owner: str, job_ids: list[int], lease_seconds: float) -> set[int]:
        """Extend this owner's leases; the ids it still holds (the others were taken over,
        or are over)."""

    async def set_placeholder(self, job: Job, message_id: int) -> None:
        """Fenced (LeaseLost)."""

    async def record_sent(
        self, job: Job, digest: str, sent_ids: tuple[int, ...], file_sent: bool
    ) -> None:
        """The transcript with this digest is delivered so far. Fenced (LeaseLost)."""

    async def finish_job(
        self, job: Job, audio_seconds: float | None, reply_ids: tuple[int, ...] = ()
    ) -> None:
        """Done: settles the quota with the measured seconds and records usage. Fenced."""

    async def fail_job(self, job: Job, reason: str) -> None:
        """Failed: releases its quota reservation. Fenced (LeaseLost)."""

    async def retry_job(self, job: Job, reason: str, delay: float) -> None:
        """Queued again after `delay`, keeping its reservation. Fenced (LeaseLost)."""

    async def release_jobs(self, owner: str) -> int:
        """Give this owner's running jobs back to the queue (shutdown): not an attempt."""

    async def recover_jobs(self) -> int:
        """At start: take back jobs whose worker died with the previous process."""

    async def prune(self, older_than_seconds: float) -> int:
        """Forget finished jobs older than that, and expired seen marks, charges and claims."""

    async def count_queued(self) -> int:
        """Jobs waiting, from a counter kept as jobs change (no scan)."""


class CacheStore(Protocol):
    """The transcript cache (CACHE_TRANSCRIPTS_HOURS)."""

    async def get_transcript(self, key: str) -> str | None: ...
    async def put_transcript(self, key: str, text: str, ttl_seconds: float) -> None: ...


class UsageStore(Protocol):
    async def add_usage(self, usage: Usage) -> None: ...
    async def usage_since(self, user_id: int, since: float) -> list[UsageTotal]:
        """This user's usage since then, one total per model and kind (what it paid for)."""

    async def quota_used(self, subject: int, since: float) -> float:
        """Audio seconds charged to this subject since then: settled plus reserved."""

    async def recent_job_times(self, subject: int, since: float) -> list[float]:
        """When this subject's jobs since then were accepted, oldest first."""

    async def stats(self, days: int = 7) -> Stats: ...


class Store(UpdateStore, ClaimStore, SettingsStore, JobStore, CacheStore, UsageStore, Protocol):
    """The storage interface: SQLite for one process, Redis for several."""

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def ping(self) -> None: ...
