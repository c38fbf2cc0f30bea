"""One job, start to end: placeholder, cache or download, prepare, transcribe, reply."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
from typing import Any

import aiohttp
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import ExtBot

from bot import i18n, policy, texts
from bot.alerts import AdminAlerts
from bot.announce import Announcer, Workload
from bot.config import Settings
from bot.delivery import Replies, shows_progress
from bot.errors import TranscribotError
from bot.failures import Failure, failure_of
from bot.link_download import LinkDownloader
from bot.logs import request_context
from bot.metrics import Metrics, job_calls
from bot.progress import EngineSpeeds, JobProgress
from bot.report import JobReport, Outcome
from bot.segments import Transcribed
from bot.store import Job, JobStatus, LeaseLost, Store
from bot.store.outlast import outlasting_outages
from bot.transcriber import Transcriber
from bot.transcribing import PARTS_AT_ONCE, UploadsTranscriber
from bot.transcript_cache import billed_seconds, cache_key, cached_transcript, remember
from bot.uploads import UploadMaker, measured_seconds

log = logging.getLogger(__name__)


class JobRunner:
    """Runs one job and records its outcome in the store; never raises for expected failures."""

    def __init__(
        self,
        bot: ExtBot[Any],
        store: Store,
        transcriber: Transcriber,
        settings: Settings,
        http: aiohttp.ClientSession,
        metrics: Metrics,
        links: LinkDownloader | None = None,
        *,
        alerts: AdminAlerts,
    ) -> None:
        self._metrics = metrics
        self._alerts = alerts
        self._bot = bot
        self._store = store
        self._settings = settings
        self._uploads = UploadMaker(bot, http, settings, links)
        self._replies = Replies(bot, store, settings)
        self._transcribing = UploadsTranscriber(transcriber, self._replies, settings)
        # Busy from as many jobs at work as the bot's second of messages holds (bot/announce.py).
        self._workload = Workload(math.floor(settings.telegram_rate_per_second))
        self._speeds = EngineSpeeds()  # for the time left shown (bot.progress)

    async def __call__(self, job: Job) -> None:
        # Everything this job says is in the language of whoever asked for it.
        with request_context(f"job-{job.id}"), i18n.use_language(job.language_code):
            report = JobReport(job)
            reason: str | None
            calls = [0]
            job_calls.set(calls)  # this task's context: the Bot API calls made for this job
            try:
                if job.status == JobStatus.FAILED:  # claimed too often: failed by the claim
                    outcome, reason = await self._given_up(job)
                else:
                    outcome, reason = await self._run(job, report)
            except LeaseLost as exc:
                # Another worker took the job over (this one stalled past its lease): it is
                # theirs now, and nothing more is written or sent from here.
                report.tell("interrupted", self._metrics, f"lease lost: {exc}")
                return
            except asyncio.CancelledError:
                report.tell("interrupted", self._metrics, "shutting down")
                raise
            except Exception as exc:
                # The dispatcher's last net logs it and queues the job again.
                report.tell("retried", self._metrics, f"crashed: {type(exc).__name__}: {exc}")
                raise
            report.tell(outcome, self._metrics, reason)
            self._metrics.job_calls_made(calls[0])

    async def _run(self, job: Job, report: JobReport) -> tuple[Outcome, str | None]:
        """The job's outcome, and why when it is not done; the store records it too."""
        announcer = Announcer(
            self._bot,
            self._replies,
            job,
            self._settings.placeholder_after_seconds,
            self._workload,
        )
        announcer.start()
        try:
            return await self._attempt(job, report, announcer)
        finally:
            await announcer.stop()  # idempotent; here for a cancelled job

    async def _attempt(
        self, job: Job, report: JobReport, announcer: Announcer
    ) -> tuple[Outcome, str | None]:
        """Every expected outcome decided here: done, failed (and told), dropped, retried."""
        try:
            return await self._complete(job, report, announcer)
        except TranscribotError as exc:
            return await self._failed(job, announcer, exc)
        except Forbidden as exc:
            # The bot may not write to this chat (blocked, removed from the group).
            failed = failure_of(exc)
            await announcer.stop()
            await self._store.fail_job(job, failed.stored)
            return "dropped", failed.logged
        except (RetryAfter, NetworkError) as exc:
            return await self._telegram_failed(job, announcer, exc)
        except LeaseLost:
            raise  # the job is another worker's now: nothing more from here
        except Exception as exc:
            log.exception("job=%d: unexpected error", job.id)
            return await self._retry_or_fail(job, announcer, failure_of(exc))

    async def _complete(
        self, job: Job, report: JobReport, announcer: Announcer
    ) -> tuple[Outcome, None]:
        """Transcribed (or found in the cache), delivered, and recorded done."""
        key = cache_key(job)
        cached = await cached_transcript(self._store, self._settings, key)
        if cached is not None:
            # The same file was transcribed already: free, unless it was this job's own
            # earlier attempt (delivery failed after the API was paid), which is billed.
            result = cached
            billed = await billed_seconds(self._store, key, job) if job.attempts > 1 else 0.0
            report.cached = True
        else:
            result, billed = await self._transcribed(job, key, announcer, report)
        report.audio_seconds, report.chars = billed, len(result.text)
        # The final text never waits behind an announcement: a placeholder under way is
        # edited, else the transcript is the one message.
        placeholder = await announcer.stop()
        reply_ids = await self._replies.transcript(job, placeholder, result)
        await outlasting_outages(
            functools.partial(self._store.finish_job, job, billed, reply_ids),
            f"job={job.id}: its outcome",
        )
        report.lap("reply")
        return "done", None

    async def _failed(
        self, job: Job, announcer: Announcer, exc: TranscribotError
    ) -> tuple[Outcome, str]:
        """An error we expected: the job fails, and the user is told why."""
        # The placeholder first: one under way records itself, which a failed job refuses.
        placeholder = await announcer.stop()
        failed = failure_of(exc)
        await self._store.fail_job(job, failed.stored)
        self._alerts.job_error(job.id, exc, failed)
        await self._replies.tell(job, placeholder, texts.for_error(exc))
        return "failed", failed.logged

    async def _telegram_failed(
        self, job: Job, announcer: Announcer, exc: RetryAfter | NetworkError
    ) -> tuple[Outcome, str]:
        """Telegram itself is in trouble: the job is retried. A request it refused (BadRequest,
        a NetworkError too) would be refused again: the job fails."""
        failed = failure_of(exc)
        if isinstance(exc, BadRequest):
            placeholder = await announcer.stop()
            await self._store.fail_job(job, failed.stored)
            # Else its placeholder would say "Transcribing…" for ever.
            await self._replies.tell(job, placeholder, texts.unexpected())
            return "failed", f"Telegram refused a request: {failed.logged}"
        return await self._retry_or_fail(job, announcer, failed)

    async def _given_up(self, job: Job) -> tuple[Outcome, str]:
        """Every earlier run of it ended without an outcome (the process died, say)."""
        self._alerts.job_given_up(job.id, job.attempts - 1)
        with contextlib.suppress(TelegramError):
            await self._replies.tell(job, job.placeholder_id, texts.unexpected())
        return (
            "failed",
            f"{job.error}: gave up after {job.attempts - 1} attempts that never finished",
        )

    async def _transcribed(
        self, job: Job, key: str, announcer: Announcer, report: JobReport
    ) -> tuple[Transcribed, float]:
        """Downloaded, prepared and transcribed, its progress shown meanwhile: the transcript
        and the seconds it is billed."""
        progress = self._job_progress(job, announcer)
        try:
            async with self._uploads.uploads(job, progress) as uploads:
                report.lap("download")
                report.prepared(uploads)
                billed = measured_seconds(uploads)
                await policy.check_measured_quota(self._store, self._settings, job, billed)
                result = await self._transcribing.transcribe(
                    job, uploads, announcer, report, progress
                )
                report.lap("upstream")
                self._alerts.upstream_answered()
        finally:
            await progress.finish()  # before any final text or error goes in the placeholder
        # Paid for: kept through a store outage rather than paid for again.
        await outlasting_outages(
            functools.partial(remember, self._store, self._settings, key, result, billed),
            f"job={job.id}: the transcript paid for",
        )
        return result, billed

    def _job_progress(self, job: Job, announcer: Announcer) -> JobProgress:
        """Downloading, converting, transcribing: in the placeholder once there is one."""

        async def show(html: str) -> None:
            if announcer.live and announcer.current is not None:
                await self._replies.live(job, announcer.current, html)

        settings = self._settings
        private = job.chat_type == "private"
        progress = JobProgress(
            show,
            settings.progress_edit_seconds if private else settings.progress_group_edit_seconds,
            speeds=self._speeds,
            model=job.model,
            slots=PARTS_AT_ONCE,
            long_wait=announcer.long_recording,
        )
        if shows_progress(job) and job.placeholder_id is None:
            announcer.when_placed(progress.begin)
        return progress

    async def _retry_or_fail(
        self, job: Job, announcer: Announcer, failed: Failure
    ) -> tuple[Outcome, str]:
        placeholder = await announcer.stop()
        if job.attempts < self._settings.job_max_attempts:
            delay = min(60.0, 2.0**job.attempts)
            await self._store.retry_job(job, failed.stored, delay)
            return "retried", f"{failed.logged}; again in {delay:.0f}s"
        await self._store.fail_job(job, failed.stored)
        self._alerts.job_failed(job.id, failed, job.attempts)
        with contextlib.suppress(TelegramError):
            await self._replies.tell(job, placeholder, texts.unexpected())
        return "failed", f"{failed.logged}; after {job.attempts} attempts"
