"""Which language a transcript is probably in, and whether its reader reads another one.

lingua (lingua-language-detector) is made to tell short texts apart too. Measured here: its
high-accuracy mode needs about 850 MB and 18 s to load for 40 languages, its low-accuracy mode
about 30 MB and 1 s, so: low accuracy, and only the 40 most spoken languages it knows (fewer
candidates, fewer wrong guesses: with all 75, "a voice note" reads as Latin). The models load
on the first detection, in a thread.
"""

from __future__ import annotations

import asyncio
import functools
import re

from lingua import IsoCode639_1, Language, LanguageDetector, LanguageDetectorBuilder

_SAMPLE_CHARS = 2000  # the start of a long transcript tells its language well enough
_MIN_WORDS = 3  # "ok", "hmm": no language to tell
_MIN_CONFIDENCE = 0.5
# Short texts are ambiguous: when the reader's own language is this likely, assume it is.
_READER_DOUBT = 0.2
_CANDIDATES = [
    "en",
    "es",
    "fr",
    "de",
    "it",
    "pt",
    "ru",
    "uk",
    "pl",
    "nl",
    "tr",
    "ar",
    "fa",
    "hi",
    "bn",
    "ur",
    "id",
    "ms",
    "vi",
    "th",
    "zh",
    "ja",
    "ko",
    "sv",
    "da",
    "nb",
    "fi",
    "cs",
    "sk",
    "hu",
    "ro",
    "bg",
    "el",
    "he",
    "sr",
    "hr",
    "ka",
    "hy",
    "kk",
    "az",
    "tl",
    "sw",
]
# Part headings ([00:25:00]) and speaker labels say nothing about the language.
_NOISE = re.compile(r"\[\d\d:\d\d:\d\d\]|^[^\n:]{1,40}:", re.MULTILINE)


@functools.cache
def _detector() -> LanguageDetector:
    languages = [
        Language.from_iso_code_639_1(getattr(IsoCode639_1, c.upper())) for c in _CANDIDATES
    ]
    return LanguageDetectorBuilder.from_languages(*languages).with_low_accuracy_mode().build()


def detect(text: str, reader: str | None = None) -> str | None:
    """The ISO 639-1 code of the text's language, when it is fairly sure; else None.

    `reader`: the reader's language, answered whenever the text may well be in it.
    """
    sample = _NOISE.sub(" ", text[:_SAMPLE_CHARS])
    if len(sample.split()) < _MIN_WORDS:
        return None
    values = _detector().compute_language_confidence_values(sample)
    if not values or values[0].value < _MIN_CONFIDENCE:
        return None
    confidence = {v.language.iso_code_639_1.name.lower(): v.value for v in values}
    if reader is not None and confidence.get(reader, 0.0) >= _READER_DOUBT:
        return reader
    return values[0].language.iso_code_639_1.name.lower()


async def spoken_language(
    text: str, hint: str | None, reader: str | None, reported: str | None = None
) -> str | None:
    """The transcript's language: the one the engine was told (a /language hint), else the one
    it reported (ISO 639-1), else guessed from the text."""
    if hint:
        return hint.lower()
    if reported:
        return reported
    return await asyncio.to_thread(detect, text, reader)


def code_of(reported: object) -> str | None:
    """An engine's word for a language as ISO 639-1: "en", "en-US" or "english" (Whisper's
    verbose_json says the name) give "en"; what lingua does not know, None."""
    if not isinstance(reported, str):
        return None
    word = reported.strip().lower().replace("-", "_").replace(" ", "_")
    if len(word) >= 2 and word[:2].isalpha() and (len(word) == 2 or word[2] == "_"):
        code = getattr(IsoCode639_1, word[:2].upper(), None)
        return code.name.lower() if code is not None else None
    found = getattr(Language, word.upper(), None)
    return found.iso_code_639_1.name.lower() if isinstance(found, Language) else None


def reader_language(language_code: str | None) -> str | None:
    """A Telegram language_code ("pt-br") as an ISO 639-1 code ("pt")."""
    if not language_code:
        return None
    code = language_code.split("-")[0].lower()
    return code if len(code) == 2 and code.isalpha() else None


def needs_translation(spoken: str | None, reader: str | None) -> bool:
    """Probably in another language than the reader's: both known, and different."""
    return spoken is not None and reader is not None and spoken != reader
