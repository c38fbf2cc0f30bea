"""Which language a transcript is probably in, and whether its reader reads another one.

lingua (lingua-language-detector) is made to tell short texts apart too. Its low-accuracy mode
keeps all of its 75 languages in about 100 MB of memory (the high-accuracy mode needs about
1 GB); the models load on the first detection, in a thread, not at start.
"""

from __future__ import annotations

import asyncio
import functools
import re

from lingua import LanguageDetector, LanguageDetectorBuilder

_SAMPLE_CHARS = 2000  # the start of a long transcript tells its language well enough
_MIN_WORDS = 3  # "ok", "hmm": no language to tell
_MIN_CONFIDENCE = 0.5
# Part headings ([00:25:00]) and speaker labels say nothing about the language.
_NOISE = re.compile(r"\[\d\d:\d\d:\d\d\]|^[^\n:]{1,40}:", re.MULTILINE)


@functools.cache
def _detector() -> LanguageDetector:
    return LanguageDetectorBuilder.from_all_languages().with_low_accuracy_mode().build()


def detect(text: str) -> str | None:
    """The ISO 639-1 code of the text's language, when it is fairly sure; else None."""
    sample = _NOISE.sub(" ", text[:_SAMPLE_CHARS])
    if len(sample.split()) < _MIN_WORDS:
        return None
    values = _detector().compute_language_confidence_values(sample)
    if not values or values[0].value < _MIN_CONFIDENCE:
        return None
    return values[0].language.iso_code_639_1.name.lower()


async def spoken_language(text: str, hint: str | None) -> str | None:
    """The transcript's language: the one the engine was told (a /language hint), else guessed."""
    if hint:
        return hint.lower()
    return await asyncio.to_thread(detect, text)


def reader_language(language_code: str | None) -> str | None:
    """A Telegram language_code ("pt-br") as an ISO 639-1 code ("pt")."""
    if not language_code:
        return None
    code = language_code.split("-")[0].lower()
    return code if len(code) == 2 and code.isalpha() else None


def needs_translation(spoken: str | None, reader: str | None) -> bool:
    """Probably in another language than the reader's: both known, and different."""
    return spoken is not None and reader is not None and spoken != reader
