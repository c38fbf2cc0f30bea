"""The transcript cache (CACHE_TRANSCRIPTS_HOURS): the same file asked for again with the same
model and hints is answered from here. Beside each text are kept its segments (subtitles and
timestamps need them later), the language the engine reported (the Translate button), and the
seconds measured (a retry answered from here is billed them)."""

from __future__ import annotations

import contextlib
import hashlib

from bot import segments
from bot.config import Settings
from bot.segments import Transcribed
from bot.store import Job, Store

# The cache keys of a transcript's segments and of its language (as the engine reported it),
# beside its text's.
SEGMENTS_SUFFIX = ":segments"
LANGUAGE_SUFFIX = ":language"


def cache_key(job: Job) -> str:
    """The same file (forwarded anywhere) asked for with the same model and hints."""
    parts = (job.file_unique_id, job.model, job.language or "", job.prompt or "")
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


async def cached_transcript(store: Store, settings: Settings, key: str) -> Transcribed | None:
    """A transcript kept from before (CACHE_TRANSCRIPTS_HOURS), with its segments if it had any."""
    if settings.cache_transcripts_hours <= 0:
        return None
    text = await store.get_transcript(key)
    if text is None:
        return None
    stored = await store.get_transcript(key + SEGMENTS_SUFFIX)
    spoken = await store.get_transcript(key + LANGUAGE_SUFFIX)
    return Transcribed(text, segments.decode(stored) if stored else (), spoken or None)


async def remember(
    store: Store, settings: Settings, key: str, result: Transcribed, billed: float
) -> None:
    """The text, and beside it its segments and the seconds measured."""
    seconds = settings.cache_transcripts_hours * 3600
    if seconds <= 0:
        return
    await store.put_transcript(key, result.text, seconds)
    await store.put_transcript(_seconds_key(key), repr(billed), seconds)
    if result.segments:
        await store.put_transcript(key + SEGMENTS_SUFFIX, segments.encode(result.segments), seconds)
    if result.language:
        await store.put_transcript(key + LANGUAGE_SUFFIX, result.language, seconds)


async def billed_seconds(store: Store, key: str, job: Job) -> float:
    """What an earlier attempt of this job measured (and paid the API for)."""
    kept = await store.get_transcript(_seconds_key(key))
    if kept is not None:
        with contextlib.suppress(ValueError):
            return float(kept)
    return job.duration or 0.0  # cached before measured seconds were kept with the text


def _seconds_key(key: str) -> str:
    return f"{key}:seconds"
