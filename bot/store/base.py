"""What the bot keeps: settings per user and chat, seen updates, and the job queue."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class ChatSettings:
    """A group's own choices; None means "not set here, fall back"."""

    model: str | None = None
    auto_transcribe: bool | None = None


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
    language_code: str | None = None
    explicit: bool = False  # asked for with /transcribe rather than automatic


@dataclass(frozen=True)
class Job(NewJob):
    id: int = 0
    status: str = "queued"
    attempts: int = 0
    placeholder_id: int | None = None
    error: str | None = None
    created_at: float = 0.0


@dataclass(frozen=True)
class Stats:
    by_status: dict[str, int] = field(default_factory=dict)
    minutes_by_model: dict[str, float] = field(default_factory=dict)
    recent_failures: list[tuple[int, str]] = field(default_factory=list)


class Store(Protocol):
    """The storage interface; SQLite today, Redis when one machine is not enough."""

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def commit(self) -> None:
        """Make everything written so far durable (coalesced across callers)."""

    async def ping(self) -> None: ...

    # settings
    async def get_user_model(self, user_id: int) -> str | None: ...
    async def set_user_model(self, user_id: int, model: str) -> None: ...
    async def get_chat_settings(self, chat_id: int) -> ChatSettings: ...
    async def set_chat_model(self, chat_id: int, model: str) -> None: ...
    async def set_chat_auto_transcribe(self, chat_id: int, enabled: bool) -> None: ...

    # updates and jobs
    async def claim_update(self, update_id: int) -> bool:
        """True the first time this update id is seen."""

    async def forget_update(self, update_id: int) -> None:
        """Undo claim_update when the update could not be accepted (it will be redelivered)."""

    async def enqueue(self, job: NewJob) -> bool:
        """Queue a job; False when one exists already for that (chat, message)."""

    async def claim_jobs(self, owner: str, limit: int, lease_seconds: float) -> list[Job]: ...
    async def renew_leases(self, owner: str, job_ids: list[int], lease_seconds: float) -> None: ...
    async def set_placeholder(self, job_id: int, message_id: int) -> None: ...
    async def finish_job(self, job_id: int, audio_seconds: float | None) -> None: ...
    async def fail_job(self, job_id: int, reason: str) -> None: ...
    async def retry_job(self, job_id: int, reason: str, delay: float) -> None: ...
    async def release_jobs(self, owner: str) -> int:
        """Give this owner's running jobs back to the queue (shutdown)."""

    async def recover_jobs(self) -> int:
        """At start: take back jobs whose worker died with the previous process."""

    async def prune(self, older_than_seconds: float) -> int: ...

    # limits and statistics
    async def user_job_times(self, user_id: int, since: float) -> list[float]:
        """When this user's jobs since `since` were accepted, oldest first."""

    async def user_audio_seconds_since(self, user_id: int, since: float) -> float: ...
    async def stats(self) -> Stats: ...
