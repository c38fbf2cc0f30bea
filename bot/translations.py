"""A transcript's translation: made once per (text, language), cached, billed to who asked."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Awaitable, Callable

from babel import Locale, UnknownLocaleError

from bot import texts
from bot.config import Settings
from bot.replies import MESSAGE_LIMIT, escape, split_for_telegram
from bot.store import Store, Usage, UsageKind
from bot.summarizer import Summarizer

log = logging.getLogger(__name__)

OnPart = Callable[[str], Awaitable[None]]

# A part the chat model translates in one request: long transcripts go in several, each made
# of whole paragraphs (so part headings like [00:25:00] and speaker labels stay whole).
PART_CHARS = 6000
# While one press makes a translation, another press of the same waits for the cache.
_CLAIM_SECONDS = 600.0


def language_name(code: str) -> str | None:
    """The English name of an ISO 639-1 code ("ru" -> "Russian"); None when it is no language."""
    if len(code) != 2 or not code.isalpha():
        return None
    try:
        return str(Locale.parse(code.lower()).english_name)
    except (UnknownLocaleError, ValueError):
        return None


def native_name(code: str) -> str:
    """The language's name in itself ("ru" -> "русский"), for the heading."""
    try:
        return str(Locale.parse(code).display_name or code)
    except (UnknownLocaleError, ValueError):
        return code


def parts_of(text: str, limit: int = PART_CHARS) -> list[str]:
    """The text in parts of whole paragraphs, each under `limit` characters where it can be."""
    parts: list[str] = []
    current = ""
    for paragraph in text.split("\n\n"):
        pieces = [paragraph] if len(paragraph) <= limit else split_for_telegram(paragraph, limit)
        for piece in pieces:
            if current and len(current) + 2 + len(piece) > limit:
                parts.append(current)
                current = ""
            current = f"{current}\n\n{piece}" if current else piece
    if current:
        parts.append(current)
    return parts


class Translations:
    """Translate a text into a language through the chat model; the cache answers repeats."""

    def __init__(self, store: Store, summarizer: Summarizer, settings: Settings) -> None:
        self._store = store
        self._summarizer = summarizer
        self._settings = settings

    @property
    def enabled(self) -> bool:
        return bool(self._settings.chat_model)

    async def cached(self, text: str, code: str) -> str | None:
        if self._settings.cache_transcripts_hours <= 0:
            return None
        return await self._store.get_transcript(self._key(text, code))

    async def claim(self, text: str, code: str) -> bool:
        """True for the one caller that makes this translation now."""
        return await self._store.claim_once("claim:" + self._key(text, code), _CLAIM_SECONDS)

    async def make(
        self, text: str, code: str, user_id: int, chat_id: int, on_part: OnPart | None = None
    ) -> str:
        """The translation (`on_part` gets the text so far: as it streams in with STREAMING,
        else after each part), billed to `user_id` and cached; the claim goes in any case (a
        failure may be tried again, a success is in the cache)."""
        key = self._key(text, code)
        try:
            translated = await self._translate(text, code, user_id, chat_id, on_part)
            hours = self._settings.cache_transcripts_hours
            if hours > 0:
                await self._store.put_transcript(key, translated, hours * 3600)
            return translated
        finally:
            await self._store.release_claim("claim:" + key)

    async def _translate(
        self, text: str, code: str, user_id: int, chat_id: int, on_part: OnPart | None
    ) -> str:
        model = self._settings.chat_model
        name = language_name(code) or code
        done: list[str] = []
        usage = Usage(user_id=user_id, chat_id=chat_id, model=model, kind=UsageKind.TRANSLATION)
        try:
            for part in parts_of(text):
                streamed = self._so_far(done, on_part)
                made = await self._summarizer.translate(part, model, name, code, streamed)
                done.append(made.text)
                if on_part is not None:
                    await on_part("\n\n".join(done))
                usage = dataclasses.replace(
                    usage,
                    input_tokens=usage.input_tokens + made.input_tokens,
                    output_tokens=usage.output_tokens + made.output_tokens,
                )
        finally:
            if usage.input_tokens or usage.output_tokens:  # parts paid for before a failure too
                await self._bill(usage)
        log.info(
            "translation into %s made: %d part(s), %d+%d tokens",
            code,
            len(done),
            usage.input_tokens,
            usage.output_tokens,
        )
        return "\n\n".join(done)

    def _so_far(self, done: list[str], on_part: OnPart | None) -> OnPart | None:
        """The parts made, then the one streaming in, for on_part (None: nothing to stream)."""
        if on_part is None or not self._settings.streaming:
            return None
        before = list(done)

        async def so_far(piece: str) -> None:
            await on_part("\n\n".join([*before, piece]))

        return so_far

    async def _bill(self, usage: Usage) -> None:
        try:
            await self._store.add_usage(usage)
        except Exception:  # made and paid for: the user gets it all the same
            log.exception("a translation's usage could not be recorded")

    def _key(self, text: str, code: str) -> str:
        material = "\0".join(("translation", self._settings.chat_model, code, text))
        return "tr:" + hashlib.sha256(material.encode()).hexdigest()


def translation_htmls(translated: str, code: str) -> list[str]:
    """The translation as HTML messages, the first headed by the language's name."""
    head = texts.translation_heading(native_name(code)) + "\n"
    pieces = split_for_telegram(translated, MESSAGE_LIMIT - 60) or [""]
    return [head + escape(pieces[0]), *(escape(p) for p in pieces[1:])]
