"""One job, start to end: placeholder, download, prepare, transcribe, reply."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable

import httpx
from telegram import Bot, InputFile, ReplyParameters
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from bot import texts
from bot.config import Settings
from bot.errors import TranscribotError
from bot.live import LiveText, interval_for
from bot.replies import ATTACH_AFTER_MESSAGES, escape, split_for_telegram
from bot.store import Job, Store
from bot.transcriber import Transcriber
from bot.uploads import Upload, UploadMaker

log = logging.getLogger(__name__)

PARTS_AT_ONCE = 4  # parts of one long recording sent to the API concurrently


class JobRunner:
    """Runs one job and records its outcome in the store; never raises for expected failures."""

    def __init__(
        self,
        bot: Bot,
        store: Store,
        transcriber: Transcriber,
        settings: Settings,
        http: httpx.AsyncClient,
    ) -> None:
        self._bot = bot
        self._store = store
        self._transcriber = transcriber
        self._settings = settings
        self._uploads = UploadMaker(bot, http, settings)

    async def __call__(self, job: Job) -> None:
        started = time.monotonic()
        placeholder = job.placeholder_id
        try:
            placeholder = await self._ensure_placeholder(job)
            preparing = functools.partial(self._progress, job, placeholder, texts.PREPARING)
            async with self._uploads.uploads(job, preparing) as uploads:
                text, audio_seconds = await self._transcribe(job, uploads, placeholder)
            await self._deliver(job, placeholder, text)
            await self._store.finish_job(job.id, audio_seconds)
            log.info(
                "job=%d done chat=%s kind=%s model=%s audio=%.1fs parts=%d chars=%d in %.2fs",
                job.id,
                job.chat_id,
                job.kind,
                job.model,
                audio_seconds or 0,
                len(uploads),
                len(text),
                time.monotonic() - started,
            )
        except TranscribotError as exc:
            log.warning("job=%d failed: %s: %s", job.id, type(exc).__name__, exc)
            await self._store.fail_job(job.id, f"{type(exc).__name__}: {exc}")
            await self._tell(job, placeholder, texts.for_error(exc))
        except Forbidden as exc:
            log.info(
                "job=%d dropped: the bot may not write to chat=%s (%s)", job.id, job.chat_id, exc
            )
            await self._store.fail_job(job.id, f"Forbidden: {exc}")
        except (RetryAfter, NetworkError) as exc:
            # Telegram itself is in trouble (BadRequest is a NetworkError subclass: handled below).
            if isinstance(exc, BadRequest):
                log.warning("job=%d: Telegram refused a request: %s", job.id, exc)
                await self._store.fail_job(job.id, f"BadRequest: {exc}")
                return
            await self._retry_or_fail(job, placeholder, f"Telegram: {exc}")
        except Exception as exc:
            log.exception("job=%d: unexpected error", job.id)
            await self._retry_or_fail(job, placeholder, f"{type(exc).__name__}: {exc}")

    async def _retry_or_fail(self, job: Job, placeholder: int | None, reason: str) -> None:
        if job.attempts < self._settings.job_max_attempts:
            delay = min(60.0, 2.0**job.attempts)
            log.warning(
                "job=%d attempt %d failed (%s); retrying in %.0fs",
                job.id,
                job.attempts,
                reason,
                delay,
            )
            await self._store.retry_job(job.id, reason, delay)
            return
        log.error("job=%d failed after %d attempts: %s", job.id, job.attempts, reason)
        await self._store.fail_job(job.id, reason)
        with contextlib.suppress(TelegramError):
            await self._tell(job, placeholder, texts.UNEXPECTED)

    # Telegram side

    def _reply_to(self, job: Job) -> ReplyParameters:
        return ReplyParameters(job.message_id, allow_sending_without_reply=True)

    async def _ensure_placeholder(self, job: Job) -> int:
        """The "working" reply, sent once: a retried job edits the one it already has."""
        if job.placeholder_id is not None:
            return job.placeholder_id
        message = await self._bot.send_message(
            job.chat_id, texts.WORKING, reply_parameters=self._reply_to(job)
        )
        await self._store.set_placeholder(job.id, message.message_id)
        return message.message_id

    async def _edit(self, job: Job, message_id: int, html: str) -> None:
        try:
            await self._bot.edit_message_text(html, chat_id=job.chat_id, message_id=message_id)
        except BadRequest as exc:
            text = str(exc).lower()
            if "not modified" in text:
                return  # a retried job delivering the same text again
            if "not found" in text:
                await self._bot.send_message(
                    job.chat_id, html, reply_parameters=self._reply_to(job)
                )
                return
            raise

    async def _tell(self, job: Job, placeholder: int | None, html: str) -> None:
        try:
            if placeholder is not None:
                await self._edit(job, placeholder, html)
            else:
                await self._bot.send_message(
                    job.chat_id, html, reply_parameters=self._reply_to(job)
                )
        except TelegramError as exc:
            log.warning("job=%d: could not tell the user: %s", job.id, exc)

    async def _deliver(self, job: Job, placeholder: int, text: str) -> None:
        pieces = split_for_telegram(text)
        if not pieces:
            await self._edit(job, placeholder, texts.NO_SPEECH)
            return
        await self._edit(job, placeholder, escape(pieces[0]))
        for piece in pieces[1:]:
            await self._bot.send_message(
                job.chat_id, escape(piece), reply_parameters=self._reply_to(job)
            )
        if len(pieces) > ATTACH_AFTER_MESSAGES:
            await self._bot.send_document(
                job.chat_id,
                InputFile(text.encode("utf-8"), filename="transcript.txt"),
                caption=texts.FULL_TRANSCRIPT_CAPTION,
                reply_parameters=self._reply_to(job),
            )

    async def _progress(self, job: Job, placeholder: int, html: str) -> None:
        """A progress note in the placeholder; not worth failing the job for."""
        with contextlib.suppress(TelegramError):
            await self._edit(job, placeholder, html)

    async def _live_edit(self, job: Job, placeholder: int, html: str) -> None:
        """The text so far in the placeholder; an edit Telegram refuses is skipped."""
        # Unlike _edit, never a new message: a deleted placeholder would get one per edit.
        with contextlib.suppress(TelegramError):
            await self._bot.edit_message_text(html, chat_id=job.chat_id, message_id=placeholder)

    def _live_text(self, job: Job, uploads: list[Upload], placeholder: int) -> LiveText | None:
        """The transcript shown as it streams in, when one request makes the whole of it."""
        if len(uploads) != 1 or not self._transcriber.streams:
            return None
        show = functools.partial(self._live_edit, job, placeholder)
        return LiveText(show, interval_for(job.chat_type))

    async def _transcribe(
        self, job: Job, uploads: list[Upload], placeholder: int
    ) -> tuple[str, float | None]:
        """Each upload's text, joined in order; the parts of a long one go concurrently."""
        progress = _Progress(len(uploads), functools.partial(self._progress, job, placeholder))
        live = self._live_text(job, uploads, placeholder)
        gate = asyncio.Semaphore(PARTS_AT_ONCE)

        async def one(upload: Upload) -> str:
            async with gate:
                result = await self._transcriber.transcribe(
                    upload.data,
                    upload.filename,
                    job.model,
                    duration=upload.duration,
                    # The job's language= and prompt= hints go here once Job carries them.
                    on_text=live.update if live is not None else None,
                )
            progress.part_done()
            return result.text

        progress.start()
        tasks = [asyncio.create_task(one(u)) for u in uploads]
        try:
            texts_in_order = await asyncio.gather(*tasks)
        except BaseException:
            # One part failed (or the job was cancelled): the others are of no use any more,
            # and their files are about to be removed.
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        finally:
            await progress.finish()
            if live is not None:
                await live.finish()  # before _deliver's final edit
        seconds = [u.duration for u in uploads]
        audio_seconds = sum(s for s in seconds if s is not None) if None not in seconds else None
        if audio_seconds is None:
            audio_seconds = job.duration
        return "\n\n".join(t for t in texts_in_order if t), audio_seconds


class _Progress:
    """ "3 of 8 parts done" in a long job's placeholder, edited beside the work, not in its way.

    One edit at a time, always the latest count: when Telegram is slow (a group allows 20
    messages a minute) counts are skipped rather than queued, and transcription never waits.
    """

    def __init__(self, total: int, show: Callable[[str], Awaitable[None]]) -> None:
        self._total = total
        self._show = show
        self._done = 0
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._total > 1:
            self._changed.set()  # "0 of 8": tells how long the wait is
            self._task = asyncio.create_task(self._run(), name="progress")

    def part_done(self) -> None:
        self._done += 1
        self._changed.set()

    async def finish(self) -> None:
        """Wait for an edit under way, so that none can land after the transcript."""
        if self._task is not None:
            self._done = self._total
            self._changed.set()
            await self._task

    async def _run(self) -> None:
        while True:
            await self._changed.wait()
            self._changed.clear()
            if self._done >= self._total:
                return  # the transcript replaces the placeholder now
            await self._show(texts.part_progress(self._done, self._total))
