"""One job, start to end: placeholder, download, prepare, transcribe, reply."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from telegram import Bot, InputFile, ReplyParameters
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from bot import audio, texts
from bot.config import Settings
from bot.errors import AudioTooLong, CorruptAudio, FileTooBig, TranscribotError
from bot.replies import ATTACH_AFTER_MESSAGES, escape, split_for_telegram
from bot.store import Job, Store
from bot.transcriber import Transcriber

log = logging.getLogger(__name__)

CLOUD_DOWNLOAD_LIMIT = 20 * 1024 * 1024  # the cloud Bot API's getFile limit
MEMORY_AUDIO_BYTES = 8 * 1024 * 1024  # larger downloads are streamed to a temporary file
PARTS_AT_ONCE = 4  # parts of one long recording sent to the API concurrently


@dataclass(frozen=True)
class Upload:
    """One request's worth of audio."""

    data: bytes | Path
    filename: str
    start: float
    duration: float | None


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
        self._http = http

    async def __call__(self, job: Job) -> None:
        started = time.monotonic()
        placeholder = job.placeholder_id
        try:
            placeholder = await self._ensure_placeholder(job)
            async with self._uploads(job) as uploads:
                text, audio_seconds = await self._transcribe(job, uploads, placeholder)
            await self._deliver(job, placeholder, text)
            await self._store.finish_job(job.id, audio_seconds)
            log.info(
                "job=%d done chat=%s model=%s audio=%.1fs chars=%d in %.2fs",
                job.id,
                job.chat_id,
                job.model,
                audio_seconds or 0,
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

    async def _progress(self, job: Job, placeholder: int, done: int, total: int) -> None:
        with contextlib.suppress(TelegramError):
            await self._edit(job, placeholder, texts.part_progress(done, total))

    # audio side

    @contextlib.asynccontextmanager
    async def _uploads(self, job: Job) -> AsyncIterator[list[Upload]]:
        """Download the file and turn it into uploads; temporary files go when this exits."""
        limit = self._settings.max_audio_seconds
        if job.duration is not None and job.duration > limit:
            raise AudioTooLong(job.duration, limit)
        local = self._settings.telegram_local_mode
        if not local and job.file_size is not None and job.file_size > CLOUD_DOWNLOAD_LIMIT:
            raise FileTooBig(job.file_size, CLOUD_DOWNLOAD_LIMIT)
        location = await self._locate(job)
        with tempfile.TemporaryDirectory(prefix="transcribot-") as tmp:
            workdir = Path(tmp)
            source: bytes | Path
            if local and Path(location).is_absolute():
                source = Path(location)  # a local Bot API server's own disk: read it in place
            else:
                source = await self._download(location, job, workdir)
            fast = _as_is(source, job)
            if fast is not None:
                yield [fast]
                return
            path = source if isinstance(source, Path) else _spill(source, workdir)
            info = await audio.probe(path)
            audio.check_duration(info, limit)
            parts = await audio.prepare_parts(path, info, workdir)
            yield [Upload(p.path, p.filename, p.start, p.duration) for p in parts]

    async def _locate(self, job: Job) -> str:
        try:
            tg_file = await self._bot.get_file(job.file_id)
        except BadRequest as exc:
            if "too big" in str(exc).lower():
                raise FileTooBig(job.file_size, CLOUD_DOWNLOAD_LIMIT) from exc
            if "invalid file_id" in str(exc).lower() or "wrong file_id" in str(exc).lower():
                raise CorruptAudio("Telegram does not know this file any more") from exc
            raise
        if not tg_file.file_path:
            raise CorruptAudio("Telegram gave no file path")
        return tg_file.file_path

    async def _download(self, url: str, job: Job, workdir: Path) -> bytes | Path:
        """Small files into memory, large ones streamed to disk: memory stays bounded."""
        try:
            async with self._http.stream("GET", url) as response:
                if response.status_code != 200:
                    raise NetworkError(f"file download answered HTTP {response.status_code}")
                size = int(response.headers.get("content-length") or job.file_size or 0)
                if size and size <= MEMORY_AUDIO_BYTES:
                    data = await response.aread()
                    if not data:
                        raise CorruptAudio("the file is empty")
                    return data
                target = workdir / "download"
                written = 0
                with target.open("wb") as out:
                    async for chunk in response.aiter_bytes(1 << 16):
                        out.write(chunk)
                        written += len(chunk)
                if written == 0:
                    raise CorruptAudio("the file is empty")
                return target
        except httpx.HTTPError as exc:
            raise NetworkError(f"file download failed: {type(exc).__name__}") from exc

    async def _transcribe(
        self, job: Job, uploads: list[Upload], placeholder: int
    ) -> tuple[str, float | None]:
        total = len(uploads)
        gate = asyncio.Semaphore(PARTS_AT_ONCE)
        done = 0

        async def one(upload: Upload) -> str:
            nonlocal done
            async with gate:
                result = await self._transcriber.transcribe(
                    upload.data, upload.filename, job.model, duration=upload.duration
                )
            done += 1
            if total > 1:
                await self._progress(job, placeholder, done, total)
            return result.text

        if total > 1:
            await self._progress(job, placeholder, 0, total)
        texts_in_order = await asyncio.gather(*(one(u) for u in uploads))
        seconds = [u.duration for u in uploads]
        audio_seconds = sum(s for s in seconds if s is not None) if None not in seconds else None
        if audio_seconds is None:
            audio_seconds = job.duration
        return "\n\n".join(t for t in texts_in_order if t), audio_seconds


def _as_is(source: bytes | Path, job: Job) -> Upload | None:
    """A voice note (or mp3/wav/flac) the API takes as it is: no ffprobe, no copy."""
    if not isinstance(source, bytes):
        return None
    if job.duration is None or job.duration > audio.MAX_PART_SECONDS:
        return None
    if len(source) > audio.MAX_UPLOAD_BYTES:
        return None
    extension = audio.sniff_extension(source[:64])
    if extension is None:
        return None
    # Telegram names voice notes .oga; the API (and strict proxies) want .ogg for the same bytes.
    return Upload(source, f"audio.{extension}", 0.0, job.duration)


def _spill(data: bytes, workdir: Path) -> Path:
    path = workdir / "download"
    path.write_bytes(data)
    return path
