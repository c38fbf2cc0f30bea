"""The language of the current update or job, and gettext lookups in it.

The catalogues are the .po files under bot/locales, read with Babel the first time a language is
used: no compiled .mo file to build or to fall out of step. The msgids are the English texts,
so English needs no catalogue.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import gettext
import io
from collections.abc import Iterator
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LANGUAGES = ("en", "vi", "ru")
SOURCE_LANGUAGE = "en"
LOCALES = Path(__file__).parent / "locales"
DOMAIN = "messages"

# A ContextVar, not a global: each update's handlers and each job run in their own asyncio
# context (a task copies its creator's), so concurrent users each get their own language.
_language: contextvars.ContextVar[str] = contextvars.ContextVar("language", default=SOURCE_LANGUAGE)


def language_for(code: str | None) -> str:
    """The language we answer a Telegram `language_code` in: "vi-VN" -> "vi", "pt-br" -> "en"."""
    base = (code or "").replace("_", "-").split("-", 1)[0].lower()
    return base if base in LANGUAGES else SOURCE_LANGUAGE


def current_language() -> str:
    return _language.get()


def set_language(code: str | None) -> contextvars.Token[str]:
    """Answer in the language for `code` from now on, in this context and the tasks it starts."""
    return _language.set(language_for(code))


@contextlib.contextmanager
def use_language(code: str | None) -> Iterator[str]:
    """Answer in the language for `code` inside the block."""
    token = set_language(code)
    try:
        yield _language.get()
    finally:
        _language.reset(token)


def _(message: str) -> str:
    """`message` in the current language (itself in English, or when not translated)."""
    return _translations(_language.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The form of a message for the count `n`, in the current language."""
    return _translations(_language.get()).ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Marks a text for extraction where it is defined; translate it with _() where it is used."""
    return message


def catalogue_path(language: str) -> Path:
    return LOCALES / language / "LC_MESSAGES" / f"{DOMAIN}.po"


@functools.cache
def _translations(language: str) -> gettext.NullTranslations:
    if language == SOURCE_LANGUAGE:
        return gettext.NullTranslations()
    with catalogue_path(language).open("rb") as po:
        catalogue = read_po(po, locale=language, domain=DOMAIN)
    mo = io.BytesIO()
    write_mo(mo, catalogue)  # without fuzzy entries: a guessed translation is not shown
    mo.seek(0)
    return gettext.GNUTranslations(mo)
