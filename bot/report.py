"""What one run of a job did, told once at its end: one log line, the same facts as metrics."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from bot.metrics import Metrics
from bot.store import Job
from bot.transcriber import Transcript
from bot.uploads import Upload

log = logging.getLogger(__name__)

# retried: given back to the queue for a later attempt; dropped: the chat is closed to the bot;
# interrupted: stopped by a shutdown, queued again for the next start.
Outcome = Literal["done", "failed", "retried", "dropped", "interrupted"]
PHASES = ("download", "upstream", "reply")  # download covers getFile, probing and converting

_IN_HEAD = frozenset({"job_id", "outcome"})  # the text line starts "job=42 done"
_LEVELS: dict[Outcome, int] = {
    "done": logging.INFO,
    "dropped": logging.INFO,
    "interrupted": logging.INFO,
    "retried": logging.WARNING,
    "failed": logging.WARNING,
}


@dataclass
class JobReport:
    """Timings and sizes of one run, filled in as the job goes."""

    job: Job
    started: float = field(default_factory=time.monotonic)
    seconds: dict[str, float] = field(default_factory=dict)
    parts: int = 0
    upload_bytes: int = 0
    audio_seconds: float | None = None
    chars: int | None = None
    cached: bool = False  # answered from the transcript cache: no download, no API call
    transcripts: list[Transcript] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lap = self.started

    def lap(self, phase: str) -> None:
        """The time since the previous lap (or the start) was spent in `phase`."""
        now = time.monotonic()
        self.seconds[phase] = self.seconds.get(phase, 0.0) + now - self._lap
        self._lap = now

    def prepared(self, uploads: Sequence[Upload]) -> None:
        self.parts = len(uploads)
        self.upload_bytes = sum(_size(u) for u in uploads)

    def tell(self, outcome: Outcome, metrics: Metrics, reason: str | None = None) -> None:
        """Log the run's one line and count it in `metrics`."""
        job = self.job
        metrics.job_ended(outcome, job.model, self.audio_seconds)
        for transcript in self.transcripts:
            metrics.upstream_request(job.model, transcript.upstream_seconds, transcript.attempts)
        facts = self.facts(outcome, reason)
        text = " ".join(_show(key, value) for key, value in facts.items() if key not in _IN_HEAD)
        log.log(_LEVELS[outcome], "job=%d %s %s", job.id, outcome, text, extra=facts)

    def facts(self, outcome: Outcome, reason: str | None) -> dict[str, object]:
        """The line's fields, also the keys of a JSON log line (none clashes with LogRecord's)."""
        job = self.job
        facts: dict[str, object] = {
            "job_id": job.id,
            "outcome": outcome,
            "attempt": job.attempts,
            "chat_id": job.chat_id,
            "kind": job.kind,
            "model": job.model,
            "audio_seconds": self.audio_seconds,
            "file_bytes": job.file_size,
            "upload_bytes": self.upload_bytes,
            "parts": self.parts,
            "chars": self.chars,
            "cached": self.cached,
            "upstream_attempts": sum(t.attempts for t in self.transcripts),
        }
        for phase in PHASES:
            facts[f"{phase}_seconds"] = round(self.seconds.get(phase, 0.0), 3)
        facts["total_seconds"] = round(time.monotonic() - self.started, 3)
        if reason is not None:
            facts["reason"] = reason
        return facts


def _size(upload: Upload) -> int:
    data = upload.data
    return len(data) if isinstance(data, bytes) else data.stat().st_size


def _show(key: str, value: object) -> str:
    """`key=value` for the text line: `audio=2.000s`, `file=48213B`, `reason='...'`."""
    if key.endswith("_seconds"):
        name = key.removesuffix("_seconds")
        return f"{name}=-" if value is None else f"{name}={value:.3f}s"
    if key.endswith("_bytes"):
        name = key.removesuffix("_bytes")
        return f"{name}=-" if value is None else f"{name}={value}B"
    if key == "reason":
        return f"reason={value!r}"
    return f"{key}={'-' if value is None else value}"
