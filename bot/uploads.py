"""From a Telegram file (or a link) to the uploads the API takes: download, probe, convert, split.

Audio stays in memory only up to MEMORY_AUDIO_BYTES; larger downloads and everything ffmpeg
makes live in a temporary directory (bot.workdirs) that is removed when the caller is done
with the uploads, also on errors and cancellation (ffmpeg is killed first: see bot.audio).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

import aiohttp
from telegram import Bot
from telegram.error import BadRequest, NetworkError

from bot import audio, formats, links
from bot.config import Settings
from bot.errors import (
    AudioTooLong,
    ConversionTimeout,
    CorruptAudio,
    FfmpegMissing,
    FileTooBig,
    LinkNotMedia,
)
from bot.link_download import LinkDownloader
from bot.store import Job
from bot.workdirs import LazyDir

log = logging.getLogger(__name__)

CLOUD_DOWNLOAD_LIMIT = 20 * 1024 * 1024  # the cloud Bot API's getFile limit
LOCAL_DOWNLOAD_LIMIT = 2000 * 1024 * 1024  # a self-hosted `telegram-bot-api --local`'s
MEMORY_AUDIO_BYTES = 8 * 1024 * 1024  # larger downloads are streamed to a temporary file
_CHUNK = 1 << 16
_SNIFF_INLINE_BYTES = 1 << 20  # ~1 ms of page walking: not worth a thread

Source = bytes | Path


@dataclass(frozen=True)
class Upload:
    """One request's worth of audio, and where it sits in the recording (seconds)."""

    data: Source
    filename: str
    start: float
    duration: float  # measured (from the bytes), never what Telegram or a tag declared


class Stages(Protocol):
    """Told what is happening, for the progress shown (bot.progress); must not block."""

    def downloading(self, received: int, total: int | None) -> None: ...

    def converting(self, long: bool) -> None:
        """Converting or cutting; `long`: into parts (a long wait is certain)."""


def measured_seconds(uploads: list[Upload]) -> float:
    """How long the recording is, as read from the files sent: what the API is paid for."""
    return sum(upload.duration for upload in uploads)


class UploadMaker:
    """Turns a job's file into uploads; built once, shared by every job."""

    def __init__(
        self,
        bot: Bot,
        http: aiohttp.ClientSession,
        settings: Settings,
        links: LinkDownloader | None = None,
    ) -> None:
        self._bot = bot
        self._http = http
        self._limit = settings.max_audio_seconds
        self._models = settings.models
        self._local = settings.telegram_local_mode
        self._links = links or LinkDownloader(settings)

    @contextlib.asynccontextmanager
    async def uploads(self, job: Job, stages: Stages) -> AsyncIterator[list[Upload]]:
        """The job's uploads, in order; their temporary files go when this exits.

        `stages` hears of the download's bytes and of long work (converting or splitting).
        """
        if job.duration is not None and job.duration > self._limit:
            raise AudioTooLong(job.duration, self._limit)  # refused before any download
        with LazyDir() as workdir:
            source: Source
            if job.kind == links.KIND:
                source = await self._fetch_link(job, workdir, stages)
            else:
                source = await self._fetch(job, workdir, stages)
            try:
                uploads = await self._prepare(job, source, workdir, stages)
            except TimeoutError as exc:  # probe's or prepare_parts' own bound: ffmpeg is killed
                raise ConversionTimeout("ffmpeg took too long on this file") from exc
            yield uploads

    async def _fetch(self, job: Job, workdir: LazyDir, stages: Stages) -> Source:
        """A Telegram file: in memory or on disk, or in place on a local Bot API server's disk."""
        size_limit = LOCAL_DOWNLOAD_LIMIT if self._local else CLOUD_DOWNLOAD_LIMIT
        if job.file_size is not None and job.file_size > size_limit:
            raise FileTooBig(job.file_size, size_limit)
        location = await self._locate(job, size_limit)
        if self._local and Path(location).is_absolute():
            return Path(location)  # a local Bot API server's own disk: read in place
        return await self._download(location, workdir, job.file_size, stages)

    async def _fetch_link(self, job: Job, workdir: LazyDir, stages: Stages) -> Path:
        """A link's file on disk, checked with ffprobe before anything is paid for it."""
        path = workdir / "download"
        size = await self._links.download(job.file_id, path, stages.downloading)
        log.info("job=%d: link downloaded, %d bytes", job.id, size)
        try:
            info = await audio.probe(path)
        except CorruptAudio as exc:
            raise LinkNotMedia("ffprobe found no recording in it") from exc
        audio.check_duration(info, self._limit)
        return path

    async def _locate(self, job: Job, size_limit: int) -> str:
        """getFile: a URL to download from, or in local mode a path on this machine."""
        try:
            tg_file = await self._bot.get_file(job.file_id)
        except BadRequest as exc:
            text = str(exc).lower()
            if "too big" in text:
                raise FileTooBig(job.file_size, size_limit) from exc
            if "invalid file_id" in text or "wrong file_id" in text:
                raise CorruptAudio("Telegram does not know this file any more") from exc
            raise
        if not tg_file.file_path:
            raise CorruptAudio("Telegram gave no file path")
        if self._local and tg_file.file_path.startswith(self._bot.base_file_url + "//"):
            # python-telegram-bot turns a path it cannot find on this disk into a URL.
            log.warning(
                "job=%d: local mode, but the Bot API server's file is not on this machine: "
                "mount its working directory here at the same path; trying HTTP instead",
                job.id,
            )
        return tg_file.file_path

    async def _download(
        self, url: str, workdir: LazyDir, size_hint: int | None, stages: Stages
    ) -> Source:
        """Into memory up to MEMORY_AUDIO_BYTES, else to a file: memory stays bounded."""
        chunks: list[bytes] = []
        held = 0
        spilled: Path | None = None
        try:
            async with self._http.get(url) as response:
                if response.status != 200:
                    raise NetworkError(f"file download answered HTTP {response.status}")
                announced = response.content_length or size_hint or 0
                received = 0
                with contextlib.ExitStack() as stack:
                    out: BinaryIO | None = None
                    if announced > MEMORY_AUDIO_BYTES:
                        spilled = workdir / "download"
                        out = stack.enter_context(spilled.open("wb"))
                    async for chunk in response.content.iter_chunked(_CHUNK):
                        received += len(chunk)
                        stages.downloading(received, announced or None)
                        if out is not None:
                            out.write(chunk)
                            continue
                        chunks.append(chunk)
                        held += len(chunk)
                        if held > MEMORY_AUDIO_BYTES:  # longer than announced: spill
                            spilled = workdir / "download"
                            out = stack.enter_context(spilled.open("wb"))
                            out.writelines(chunks)
                            chunks.clear()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise NetworkError(f"file download failed: {type(exc).__name__}") from exc
        if spilled is not None:
            return spilled
        if held == 0:
            raise CorruptAudio("the file is empty")
        return b"".join(chunks)

    async def _prepare(
        self,
        job: Job,
        source: Source,
        workdir: LazyDir,
        stages: Stages,
    ) -> list[Upload]:
        """As it is when the bytes say it may go as it is; else probed, converted, split."""
        size = len(source) if isinstance(source, bytes) else source.stat().st_size
        if size == 0:
            raise CorruptAudio("the file is empty")
        limits = self._models.get(job.model).part_limits
        sniffed = await _sniff(source, size)
        if sniffed is not None and sniffed.duration is not None:
            if sniffed.duration > self._limit:
                raise AudioTooLong(sniffed.duration, self._limit)
            if _fits(size, sniffed.duration, limits):
                return [Upload(source, f"audio.{sniffed.extension}", 0.0, sniffed.duration)]
        path = source if isinstance(source, Path) else _spill(source, workdir)
        try:
            info = await audio.probe(path)
        except FfmpegMissing:
            as_declared = _as_declared(job, source, size, sniffed, limits)
            if as_declared is None:
                raise
            return as_declared
        audio.check_duration(info, self._limit)
        long = info.duration is None or not _fits(info.size, info.duration, limits)
        if long or audio.api_upload_name(info) is None:
            # Converted, or cut into parts: seconds, or a minute for hours of audio.
            stages.converting(long)
        parts = await audio.prepare_parts(
            path,
            info,
            workdir.path,
            max_bytes=limits[0],
            max_seconds=limits[1],
            max_total_seconds=self._limit,
        )
        return [Upload(p.path, p.filename, p.start, p.duration) for p in parts]


def _as_declared(
    job: Job, source: Source, size: int, sniffed: formats.Sniffed | None, limits: tuple[int, float]
) -> list[Upload] | None:
    """Without ffprobe: an mp3 needs no conversion, only ffprobe to tell its length, so
    Telegram's is trusted; None when that will not do. (A sniffed file with a known duration
    got here because it needs splitting.)"""
    declared = job.duration
    if sniffed is None or sniffed.duration is not None or declared is None:
        return None
    if not _fits(size, declared, limits):
        return None
    # The one declared duration used: nothing here can measure without ffmpeg.
    log.warning("job=%d: no ffprobe; sending the %s as it is", job.id, sniffed.extension)
    return [Upload(source, f"audio.{sniffed.extension}", 0.0, declared)]


async def _sniff(source: Source, size: int) -> formats.Sniffed | None:
    """formats.sniff; off the event loop when the file is big (Ogg is walked page by page)."""
    if isinstance(source, Path):
        return await asyncio.to_thread(formats.sniff_file, source)
    sniff = functools.partial(
        formats.sniff, source[: formats.HEAD_BYTES], source[-formats.TAIL_BYTES :], size, source
    )
    return sniff() if size <= _SNIFF_INLINE_BYTES else await asyncio.to_thread(sniff)


def _fits(size: int, duration: float, limits: tuple[int, float]) -> bool:
    """Whether one request takes it: the model's limits (ModelSpec.part_limits)."""
    return size <= limits[0] and duration <= limits[1]


def _spill(data: bytes, workdir: LazyDir) -> Path:
    path = workdir / "download"
    path.write_bytes(data)
    return path
