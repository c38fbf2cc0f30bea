"""A finished transcript's summary: made once, billed to who asked, in messages under it."""

from __future__ import annotations

import logging

from bot import segments, texts
from bot.config import Settings
from bot.delivery import without_heading
from bot.replies import MESSAGE_LIMIT, escape, split_for_telegram
from bot.store import Job, Store, Usage, UsageKind
from bot.summarizer import Summarizer
from bot.transcript_cache import cache_key, cached_transcript

log = logging.getLogger(__name__)

# A summary is made once per transcript; the claim outlives any transcript's buttons.
_CLAIM_SECONDS = 400 * 24 * 3600


class Summaries:
    """The summary workflow: find the whole text, claim the job's summary, make it, bill it."""

    def __init__(self, store: Store, summarizer: Summarizer, settings: Settings) -> None:
        self._store = store
        self._summarizer = summarizer
        self._settings = settings

    async def whole_text(self, job: Job, shown: str | None) -> str | None:
        """The transcript: cached, or `shown` (its message's text) when that is all of it.

        None when only a part is at hand: a summary of that would mislead.
        """
        kept = await cached_transcript(self._store, self._settings, cache_key(job))
        if kept is not None and kept.text:
            return segments.layout(kept, texts.speaker)  # with its speakers and timestamps
        if len(job.reply_ids) > 1 or not shown:
            return None
        return without_heading(job, shown)

    async def claim(self, job: Job) -> bool:
        """True for the one press that makes this job's summary (until released)."""
        return await self._store.claim_once(_claim(job), _CLAIM_SECONDS)

    async def make(self, job: Job, text: str, user_id: int) -> list[str]:
        """The summary as HTML messages, billed to `user_id`; on any failure the claim goes
        (a later press may work) and the error is raised."""
        model = self._settings.summary_model
        try:
            made = await self._summarizer.summarize(text, model)
        except BaseException:
            await self._store.release_claim(_claim(job))
            raise
        log.info(
            "job=%d: summary made (%d+%d tokens)", job.id, made.input_tokens, made.output_tokens
        )
        usage = Usage(
            user_id=user_id,
            chat_id=job.chat_id,
            model=model,
            input_tokens=made.input_tokens,
            output_tokens=made.output_tokens,
            kind=UsageKind.SUMMARY,
        )
        try:
            await self._store.add_usage(usage)
        except Exception:  # the summary is made and paid for: the user gets it all the same
            log.exception("job=%d: the summary's usage could not be recorded", job.id)
        pieces = split_for_telegram(made.text, MESSAGE_LIMIT - 40) or [""]
        return [texts.summary_heading() + "\n" + escape(piece) for piece in pieces]


def _claim(job: Job) -> str:
    return f"summary:{job.id}"
