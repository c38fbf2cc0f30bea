"""What the bot keeps, and what each store operation promises on every backend.

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

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal, Protocol

Scope = Literal["user", "chat"]
PrefValue = str | bool | None
MediaKind = Literal["voice", "audio", "video_note", "video", "document", "link"]

# How long a seen update id is remembered: Telegram gives up redelivering after about a day.
UPDATE_MEMORY_SECONDS = 2 * 24 * 3600
DAY = 24 * 3600
# Charges are kept this long: the quota looks back one UTC day, the per-minute limit a minute.
CHARGE_MEMORY_SECONDS = 2 * DAY
REASON_MAX_CHARS = 1000


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


# The rules accept_job applies, written once: SQLite applies them in Python inside its
# transaction, Redis's ACCEPT script is rendered from them or given their numbers (a rule that
# needs the stored state is decided where that state is read atomically).

# A job asked for again (same chat, message and model) is replaced when it is in one of these
# states: asking again is how a person retries a failure. A queued, running or done job stays.
REPLACEABLE_STATUSES = frozenset({JobStatus.FAILED})
# The per-minute limit counts the jobs accepted in the last RATE_WINDOW_SECONDS.
RATE_WINDOW_SECONDS = 60.0


def quota_ceiling(daily_seconds: float, seconds: float) -> float:
    """The daily quota: `seconds` more are accepted while the day's charges are at most this.

    They must fit in what is left, and a quota used up takes nothing more, not even a
    recording that reserves no time.
    """
    return min(daily_seconds - seconds, math.nextafter(daily_seconds, -math.inf))


@dataclass(frozen=True)
class Prefs:
    """A user's or a chat's own choices; None means "not set here, fall back"."""

    model: str | None = None
    language: str | None = None  # ISO-639-1 hint sent to the API
    prompt: str | None = None  # vocabulary / spelling hint sent to the API
    quiet: bool | None = None
    auto_transcribe: bool | None = None  # chats only
    sender_names: bool | None = None  # chats only
    alerts: bool | None = None  # admins only: False after /alerts off
    ui_language: str | None = None  # admins only: their Telegram language, for alerts


PREF_NAMES: frozenset[str] = frozenset(Prefs.__dataclass_fields__)


def prefs_from(found: Iterable[tuple[str, str]]) -> Prefs:
    """Prefs from stored (name, JSON value) pairs; names no longer known are ignored."""
    return Prefs(**{name: json.loads(value) for name, value in found if name in PREF_NAMES})


def not_open() -> StoreUnavailable:
    return StoreUnavailable("the store is not open")


def check_pref_name(name: str) -> None:
    if name not in PREF_NAMES:
        raise ValueError(f"unknown preference {name!r}")


def short_reason(reason: str) -> str:
    """A failure reason as the store keeps it."""
    return reason[:REASON_MAX_CHARS]


@dataclass(frozen=True)
class NewJob:
    """Everything needed to transcribe one message later, possibly after a restart."""

    chat_id: int
    message_id: int
    user_id: int
    chat_type: str
    kind: MediaKind
    file_id: str
    file_unique_id: str
    model: str
    duration: float | None = None
    file_size: int | None = None
    file_name: str | None = None
    mime_type: str | None = None
    language_code: str | None = None  # the asker's Telegram language, for our replies
    explicit: bool = False  # asked for with /transcribe rather than automatic
    language: str | None = None  # hint for the API
    prompt: str | None = None  # hint for the API
    quiet: bool = False  # only the final transcript reaches the chat
    sender_name: str | None = None  # heads the transcript in groups
    # An upgrade re-runs a finished job with another model and rewrites its messages in place.
    replaces: tuple[int, ...] = ()


@dataclass(frozen=True)
class Job(NewJob):
    id: int = 0
    status: JobStatus = JobStatus.QUEUED
    attempts: int = 0
    placeholder_id: int | None = None
    error: str | None = None
    created_at: float = 0.0
    reply_ids: tuple[int, ...] = ()  # the transcript's messages, once done
    audio_seconds: float | None = None
    lease_owner: str | None = None  # who claimed it last
    epoch: int = 0  # counts claims: with the owner, it names one claim (fencing)
    # Delivery so far, for a retry to go on where it stopped: the messages sent for a text
    # whose digest is sent_digest, and whether its .txt went out.
    sent_ids: tuple[int, ...] = ()
    sent_digest: str | None = None
    file_sent: bool = False


@dataclass(frozen=True)
class Limits:
    """What accepting one job may use, decided by policy; the store checks it atomically."""

    subject: int  # whose limits: the sender, or the chat for senders shared across chats
    now: float
    jobs_per_minute: int = 0  # 0: no limit
    daily_seconds: float = 0.0  # 0: no quota
    reserve_seconds: float = 0.0  # held against the quota until the job is settled

    @property
    def day_start(self) -> float:
        return self.now - self.now % DAY

    @property
    def rate_since(self) -> float:
        """Jobs accepted since then count against jobs_per_minute."""
        return self.now - RATE_WINDOW_SECONDS

    def rate_retry_in(self, counted_at: float) -> float:
        """Seconds until the job accepted at `counted_at` stops counting (one more fits then)."""
        return counted_at + RATE_WINDOW_SECONDS - self.now

    @property
    def quota_ceiling(self) -> float | None:
        """The most the day's charges may be for this job to be accepted; None: no quota."""
        if not self.daily_seconds:
            return None
        return quota_ceiling(self.daily_seconds, self.reserve_seconds)

    @property
    def quota_retry_in(self) -> float:
        """Seconds until the quota's day ends (00:00 UTC)."""
        return self.day_start + DAY - self.now


AcceptOutcome = Literal["queued", "exists", "seen", "over_rate", "over_quota"]


@dataclass(frozen=True)
class Acceptance:
    """What accept_job did. queued: a new job (job_id); exists: one is queued, running or done
    for that message and model; seen: the update was accepted before; over_rate / over_quota:
    refused, and free again in retry_in seconds."""

    outcome: AcceptOutcome
    job_id: int | None = None
    retry_in: float = 0.0


@dataclass(frozen=True)
class Usage:
    """One billable thing: a transcription (audio seconds) or a summary (tokens)."""

    user_id: int
    chat_id: int
    model: str
    audio_seconds: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    at: float = 0.0  # unix time; 0 means now


@dataclass(frozen=True)
class UsageTotal:
    model: str
    count: int = 0
    audio_seconds: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True)
class Stats:
    by_status: dict[str, int] = field(default_factory=dict)
    minutes_by_model: dict[str, float] = field(default_factory=dict)
    # {"2026-11-25": {"gpt-4o-transcribe": 12.5}} for the last days, newest first
    minutes_by_day: dict[str, dict[str, float]] = field(default_factory=dict)
    top_chats: list[tuple[int, int, float]] = field(default_factory=list)  # chat, jobs, minutes
    recent_failures: list[tuple[int, str]] = field(default_factory=list)


class StoreUnavailable(Exception):
    """The store cannot be reached (or is full, or busy); the message says where, no password."""


class UpdateBeingHandled(Exception):
    """Another replica claimed this update and has not accepted it yet: deliver it later."""


class LeaseLost(Exception):
    """This claim of the job is over (its lease was taken over): the write was not made."""


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

    async def get_job(self, job_id: int) -> Job | None: ...
    async def claim_jobs(
        self, owner: str, limit: int, lease_seconds: float, max_attempts: int, gave_up: str
    ) -> list[Job]:
        """Take jobs that are due (or whose lease ran out), each claim one more attempt. A job
        past max_attempts is failed here, with `gave_up` as its reason, and returned with
        status FAILED: tell, do not run."""

    async def renew_leases(self, owner: str, job_ids: list[int], lease_seconds: float) -> None: ...
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
        """This user's usage since then, one total per model."""

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
