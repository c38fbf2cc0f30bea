"""Prometheus metrics: what the bot counts, in a registry of its own, rendered for GET /metrics."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextvars import ContextVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from bot.models import Registry
from bot.store import TRANSIENT_STORE_ERRORS, Store

log = logging.getLogger(__name__)

# Prometheus' text exposition format, version 0.0.4: what generate_latest writes.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# A voice note takes about a second upstream; a 20-minute part can take a minute or two.
_UPSTREAM_BUCKETS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
# Most requests pass the key's gate at once; a 429's pause or a full minute is seconds.
_GATE_BUCKETS = (0.01, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
# Bot API calls a note costs: 1 is a short note's one reply; more are placeholders, edits, parts.
_CALLS_BUCKETS = (1, 2, 3, 4, 6, 10, 20, 50)
# The Bot API calls made for the job this task runs (JobRunner sets it; tasks it starts share it).
job_calls: ContextVar[list[int] | None] = ContextVar("job_calls", default=None)
# Not a message: getFile and the download it names (Telegram does not rate-limit them so).
_NOT_COUNTED_PER_NOTE = frozenset({"getFile", "file"})
# The queue depth is a counter read from the store: scrapes closer together share one read.
_QUEUE_CACHE_SECONDS = 1.0


class Metrics:
    """Every metric of the bot; one object built at start and passed to what records."""

    def __init__(self, models: Registry | None = None) -> None:
        self._models = models or Registry(())
        self.registry = CollectorRegistry()
        self._declare_jobs()
        self._declare_upstream()
        self._declare_telegram()
        self._declare_queue()
        self._store: Store | None = None
        self._queued_at = -_QUEUE_CACHE_SECONDS
        self._error_listeners: list[Callable[[str, str, str], None]] = []
        for model in self._models.offered:  # every offered model shows, at 0 until used
            self._audio.labels(model)
            self._cost.labels(model)

    def _declare_jobs(self) -> None:
        """How job runs ended, and the audio (and its cost) they delivered."""
        self._jobs = Counter(
            "transcribot_jobs",
            "Job runs by how they ended (done, failed, retried, dropped, interrupted) and model.",
            ["outcome", "model"],
            registry=self.registry,
        )
        self._audio = Counter(
            "transcribot_audio_seconds",
            "Seconds of audio in jobs transcribed and delivered, by model.",
            ["model"],
            registry=self.registry,
        )
        self._cost = Counter(
            "transcribot_audio_cost_dollars",
            "Estimated USD of the audio transcribed, at the model registry's price per minute.",
            ["model"],
            registry=self.registry,
        )

    def _declare_upstream(self) -> None:
        """The transcription API: its time, retries, and the key's gate."""
        self._upstream = Histogram(
            "transcribot_upstream_seconds",
            "Time of one successful transcription request, its retries included, by model.",
            ["model"],
            buckets=_UPSTREAM_BUCKETS,
            registry=self.registry,
        )
        self._retries = Counter(
            "transcribot_upstream_retries",
            "Transcription requests made again after a transient failure (429, 5xx, timeout).",
            ["model"],
            registry=self.registry,
        )
        self._gate_waits = Histogram(
            "transcribot_upstream_gate_wait_seconds",
            "Time a request to the API waited for the key's limits (UPSTREAM_REQUESTS_PER_MINUTE, "
            "UPSTREAM_CONCURRENT_REQUESTS) or a 429's pause before it was sent.",
            buckets=_GATE_BUCKETS,
            registry=self.registry,
        )
        self._pauses = Counter(
            "transcribot_upstream_pauses",
            "429s from the API that paused every request with the key.",
            registry=self.registry,
        )

    def _declare_telegram(self) -> None:
        """The Bot API: calls made, calls failed, calls a note cost."""
        self._telegram_errors = Counter(
            "transcribot_telegram_errors",
            "Bot API calls that failed, by method and error (HTTP status, or TimedOut/NetworkError "
            "when no answer came).",
            ["method", "error"],
            registry=self.registry,
        )
        self._telegram_calls = Counter(
            "transcribot_telegram_calls",
            "Bot API calls made, by method (file: downloads), answered or not.",
            ["method"],
            registry=self.registry,
        )
        self._calls_per_note = Histogram(
            "transcribot_telegram_calls_per_note",
            "Bot API calls one job run made (getFile and the download aside): sends, edits, "
            "chat actions.",
            buckets=_CALLS_BUCKETS,
            registry=self.registry,
        )

    def _declare_queue(self) -> None:
        """The queue and the store, read at scrape time."""
        self._queued = Gauge(
            "transcribot_jobs_queued",
            "Jobs waiting in the store, for every process sharing it.",
            registry=self.registry,
        )
        self._running = Gauge(
            "transcribot_jobs_running", "Jobs this process is running.", registry=self.registry
        )
        # For dashboards and alerts (deploy/): whether the store answers.
        self._store_up = Gauge(
            "transcribot_store_up",
            "1 when the store (SQLite or Redis) answered the last scrape's query, else 0.",
            registry=self.registry,
        )

    def watch_jobs(self, store: Store, running: Callable[[], int]) -> None:
        """Read the queue depth from `store` and the running count from `running` at scrape time."""
        self._store = store
        self._running.set_function(running)

    def job_ended(self, outcome: str, model: str, audio_seconds: float | None) -> None:
        self._jobs.labels(outcome, model).inc()
        if outcome == "done" and audio_seconds:
            self._audio.labels(model).inc(audio_seconds)
            self._cost.labels(model).inc(audio_seconds / 60 * self._models.price_per_minute(model))

    def upstream_request(self, model: str, seconds: float, attempts: int) -> None:
        """One transcription request that succeeded after `attempts` tries."""
        self._upstream.labels(model).observe(seconds)
        if attempts > 1:
            self._retries.labels(model).inc(attempts - 1)

    def upstream_gate_waited(self, seconds: float) -> None:
        self._gate_waits.observe(seconds)

    def upstream_paused(self, seconds: float) -> None:
        self._pauses.inc()

    def telegram_call(self, method: str) -> None:
        self._telegram_calls.labels(method).inc()
        calls = job_calls.get()
        if calls is not None and method not in _NOT_COUNTED_PER_NOTE:
            calls[0] += 1

    def job_calls_made(self, calls: int) -> None:
        """A job run ended having made `calls` Bot API calls (job_calls)."""
        self._calls_per_note.observe(calls)

    def telegram_error(self, method: str, error: str, description: str = "") -> None:
        self._telegram_errors.labels(method, error).inc()
        for listener in self._error_listeners:
            listener(method, error, description)

    def on_telegram_error(self, listener: Callable[[str, str, str], None]) -> None:
        """Call `listener(method, error, description)` for each failed Bot API call."""
        self._error_listeners.append(listener)

    async def render(self) -> bytes:
        """The text exposition of every metric (CONTENT_TYPE)."""
        await self._refresh_queue()
        return generate_latest(self.registry)

    async def _refresh_queue(self) -> None:
        now = time.monotonic()
        if self._store is None or now - self._queued_at < _QUEUE_CACHE_SECONDS:
            return
        self._queued_at = now  # concurrent scrapes do not query again while this one waits
        try:
            queued = await self._store.count_queued()  # a counter kept by the store: no scan
        except TRANSIENT_STORE_ERRORS as exc:
            log.warning("metrics: could not count queued jobs: %s", exc)
            self._store_up.set(0)
            return
        self._store_up.set(1)
        self._queued.set(queued)
