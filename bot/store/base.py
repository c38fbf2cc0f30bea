"""What the bot keeps (the values the store takes and gives), and the rules accept_job applies
on every backend. What each operation promises is in contract.py."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

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


class UsageKind(StrEnum):
    """What a usage record paid for."""

    TRANSCRIPTION = "transcription"  # audio seconds
    SUMMARY = "summary"  # tokens of the chat model
    TRANSLATION = "translation"  # tokens of the chat model
    CHAT = "chat"  # a summary or a translation recorded before the two were told apart


@dataclass(frozen=True)
class Usage:
    """One billable thing: a transcription (audio seconds), a summary or a translation (tokens)."""

    user_id: int
    chat_id: int
    model: str
    audio_seconds: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    at: float = 0.0  # unix time; 0 means now
    kind: UsageKind = UsageKind.TRANSCRIPTION


@dataclass(frozen=True)
class UsageTotal:
    model: str
    count: int = 0
    audio_seconds: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    kind: UsageKind = UsageKind.TRANSCRIPTION


@dataclass(frozen=True)
class Stats:
    by_status: dict[str, int] = field(default_factory=dict)
    minutes_by_model: dict[str, float] = field(default_factory=dict)
    # {"2026-11-25": {"gpt-4o-transcribe": 12.5}} for the last days, newest first
    minutes_by_day: dict[str, dict[str, float]] = field(default_factory=dict)
    top_chats: list[tuple[int, int, float]] = field(default_factory=list)  # chat, jobs, minutes
    recent_failures: list[tuple[int, str]] = field(default_factory=list)
    # Tokens of summaries and translations by model and kind, all time (Redis: since kinds).
    chat_usage: list[UsageTotal] = field(default_factory=list)


class StoreUnavailable(Exception):
    """The store cannot be reached (or is full, or busy); the message says where, no password."""


class UpdateBeingHandled(Exception):
    """Another replica claimed this update and has not accepted it yet: deliver it later."""


class LeaseLost(Exception):
    """This claim of the job is over (its lease was taken over): the write was not made."""
