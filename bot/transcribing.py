"""A job's uploads through the API: the parts of a long recording at once (PARTS_AT_ONCE),
the text shown as it streams in when one request makes the whole of it, the parts joined into
one transcript."""

from __future__ import annotations

import asyncio
import collections
from typing import TypeVar

from bot import segments
from bot.announce import Announcer
from bot.config import Settings
from bot.delivery import Replies, shows_progress
from bot.live import LiveText, interval_for
from bot.progress import JobProgress
from bot.report import JobReport
from bot.segments import Transcribed
from bot.store import Job
from bot.transcriber import Transcriber
from bot.uploads import Upload

_T = TypeVar("_T")

PARTS_AT_ONCE = 4  # parts of one long recording sent to the API concurrently


class UploadsTranscriber:
    """Transcribes a job's uploads; built once with the job runner, shared by every job."""

    def __init__(self, transcriber: Transcriber, replies: Replies, settings: Settings) -> None:
        self._transcriber = transcriber
        self._replies = replies
        self._settings = settings

    async def transcribe(
        self,
        job: Job,
        uploads: list[Upload],
        announcer: Announcer,
        report: JobReport,
        progress: JobProgress,
    ) -> Transcribed:
        """Each upload's text, joined in order; the parts of a long one go concurrently."""
        progress.transcribing([upload.duration for upload in uploads])
        live = self._live_text(job, uploads, announcer)
        on_text = None if live is None else progress.replaced_by(live.update)
        gate = asyncio.Semaphore(PARTS_AT_ONCE)

        spec = self._settings.models.get(job.model)

        async def one(index: int, upload: Upload) -> Transcribed:
            async with gate:
                progress.part_started(index)
                result = await self._transcriber.transcribe(
                    upload.data,
                    upload.filename,
                    spec,
                    duration=upload.duration,
                    language=job.language,
                    prompt=job.prompt,
                    on_text=on_text,
                )
            report.transcripts.append(result)
            progress.part_done(index)
            moved = segments.shifted(result.segments, upload.start)
            return Transcribed(result.text, moved, result.language)

        tasks = [asyncio.create_task(one(i, u)) for i, u in enumerate(uploads)]
        try:
            parts = await _all_or_none(tasks)
        finally:
            if live is not None:
                await live.finish()  # before _deliver's final edit
        return join_parts(uploads, parts)

    def _live_text(self, job: Job, uploads: list[Upload], announcer: Announcer) -> LiveText | None:
        """The transcript shown as it streams in, when one request makes the whole of it."""
        if not shows_progress(job) or job.placeholder_id is not None:
            return None  # quiet, an upgrade keeping the old text, or a retry's delivered text
        if len(uploads) != 1 or not self._transcriber.streams(self._settings.models.get(job.model)):
            return None

        async def show(html: str) -> None:
            if announcer.current is not None:
                await self._replies.live(job, announcer.current, html)

        interval = interval_for(job.chat_type)
        live = LiveText(show, interval, shown=False, seconds=uploads[0].duration)
        announcer.when_placed(live.begin)
        return live


async def _all_or_none(tasks: list[asyncio.Task[_T]]) -> list[_T]:
    """Every task's result, in order. When one fails (or this is cancelled) the others are of no
    use any more (and their files are about to be removed): cancelled, and awaited."""
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def join_parts(uploads: list[Upload], parts: list[Transcribed]) -> Transcribed:
    """One transcript: the texts, each headed by where it starts when the recording came in
    parts, and the segments (already moved to where their part starts) in order."""
    timed = tuple(s for part in parts for s in part.segments)
    spoken = _spoken_most(uploads, parts)
    if len(uploads) == 1:
        return Transcribed(parts[0].text.strip(), timed, spoken)
    text = "\n\n".join(
        f"[{segments.clock(upload.start)}]\n{part.text.strip()}"
        for upload, part in zip(uploads, parts, strict=True)
        if part.text.strip()
    )
    return Transcribed(text, timed, spoken)


def _spoken_most(uploads: list[Upload], parts: list[Transcribed]) -> str | None:
    """The language the engine reported for most of the recording's seconds, if it did."""
    seconds: dict[str, float] = collections.defaultdict(float)
    for upload, part in zip(uploads, parts, strict=True):
        if part.language is not None:
            seconds[part.language] += upload.duration
    return max(seconds, key=seconds.__getitem__) if seconds else None
