"""What the bot keeps: preferences per user and chat, seen updates, the job queue, usage."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

Scope = Literal["user", "chat"]
PrefValue = str | bool | None


@dataclass(frozen=True)
class Prefs:
    """A user's or a chat's own choices; None means "not set here, fall back"."""

    model: str | None = None
    language: str | None = None  # ISO-639-1 hint sent to the API
    prompt: str | None = None  # vocabulary / spelling hint sent to the API
    quiet: bool | None = None
    auto_transcribe: bool | None = None  # chats only
    sender_names: bool | None = None  # chats only


PREF_NAMES: frozenset[str] = frozenset(Prefs.__dataclass_fields__)


@dataclass(frozen=True)
class NewJob:
    """Everything needed to transcribe one message later, possibly after a restart."""

    chat_id: int
    message_id: int
    user_id: int
    chat_type: str
    kind: str
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
    status: str = "queued"
    attempts: int = 0
    placeholder_id: int | None = None
    error: str | None = None
    created_at: float = 0.0
    reply_ids: tuple[int, ...] = ()  # the transcript's messages, once done
    audio_seconds: float | None = None


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
    """The store cannot be reached at start; the message says where (no password)."""


class UpdateBeingHandled(Exception):
    """Another replica claimed this update and has not accepted it yet: deliver it later."""


class Store(Protocol):
    """The storage interface: SQLite for one process, Redis for several."""

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def commit(self) -> None:
        """Make everything written so far durable (coalesced across callers)."""

    async def ping(self) -> None: ...

    # preferences
    async def get_prefs(self, scope: Scope, owner_id: int) -> Prefs: ...
    async def get_chat_and_user_prefs(self, chat_id: int, user_id: int) -> tuple[Prefs, Prefs]:
        """Both in one round trip: what every voice note needs before it is queued."""

    async def set_pref(self, scope: Scope, owner_id: int, name: str, value: PrefValue) -> None:
        """Set one preference (a name in PREF_NAMES); None clears it."""

    # updates and one-off claims
    async def claim_update(self, update_id: int) -> bool:
        """True the first time this update id is seen; False once it was accepted.

        Raises UpdateBeingHandled while another replica holds it and has not confirmed it.
        """

    async def confirm_update(self, update_id: int) -> None:
        """The update is accepted (after commit): remember it as done, for good."""

    async def forget_update(self, update_id: int) -> None:
        """Undo claim_update when the update could not be accepted (it will be redelivered)."""

    async def claim_once(self, key: str, ttl_seconds: float) -> bool:
        """True for the first caller with this key (until it expires or is released)."""

    async def release_claim(self, key: str) -> None: ...

    # jobs
    async def enqueue(self, job: NewJob) -> bool:
        """Queue a job; False when one is queued, running or done for (chat, message, model).

        A failed one is replaced: asking again is how a person retries.
        """

    async def get_job(self, job_id: int) -> Job | None: ...
    async def claim_jobs(self, owner: str, limit: int, lease_seconds: float) -> list[Job]: ...
    async def renew_leases(self, owner: str, job_ids: list[int], lease_seconds: float) -> None: ...
    async def set_placeholder(self, job_id: int, message_id: int) -> None: ...
    async def finish_job(
        self, job_id: int, audio_seconds: float | None, reply_ids: tuple[int, ...] = ()
    ) -> None:
        """Done, with the transcript's message ids; audio_seconds>0 is recorded as usage."""

    async def fail_job(self, job_id: int, reason: str) -> None: ...
    async def retry_job(self, job_id: int, reason: str, delay: float) -> None: ...
    async def release_jobs(self, owner: str) -> int:
        """Give this owner's running jobs back to the queue (shutdown)."""

    async def recover_jobs(self) -> int:
        """At start: take back jobs whose worker died with the previous process."""

    async def prune(self, older_than_seconds: float) -> int:
        """Forget finished jobs older than that, and expired cache entries and claims."""

    # transcript cache (CACHE_TRANSCRIPTS_HOURS)
    async def get_transcript(self, key: str) -> str | None: ...
    async def put_transcript(self, key: str, text: str, ttl_seconds: float) -> None: ...

    # usage, limits and statistics
    async def add_usage(self, usage: Usage) -> None: ...
    async def usage_since(self, user_id: int, since: float) -> list[UsageTotal]:
        """This user's usage since then, one total per model."""

    async def user_job_times(self, user_id: int, since: float) -> list[float]:
        """When this user's jobs since `since` were accepted, oldest first."""

    async def user_audio_seconds_since(self, user_id: int, since: float) -> float:
        """Audio seconds this user has used since then (usage, plus jobs not finished yet)."""

    async def stats(self, days: int = 7) -> Stats: ...
