"""What comes after a transcript: its buttons (upgrade, summary, subtitles, translate), what they
answer, and /translate."""

from __future__ import annotations

from bot.i18n import _


def upgrade_button(model: str) -> str:
    return _("✨ Transcribe with {model}").format(model=model)


def summary_button() -> str:
    return _("📝 Summary")


def button_expired() -> str:
    return _("This button has expired.")


def upgrade_not_yours() -> str:
    return _("Only the person who asked for this transcript, or an admin, can do that.")


def upgrading(model: str) -> str:
    return _("Transcribing again with {model}…").format(model=model)


def summarizing() -> str:
    return _("📝 Summarising…")


def summary_made_already() -> str:
    return _("The summary is already there (or on its way).")


def summary_heading() -> str:
    return _("📝 <b>Summary</b>")


def summary_text_gone() -> str:
    return _("The whole transcript is no longer kept, so I can't summarise it.")


def upgrade_under_way() -> str:
    return _("That one is done with the better model already, or on its way.")


def subtitles_button() -> str:
    return _("🎬 Subtitles")


def subtitles_gone() -> str:
    return _("The timed transcript is no longer kept, so I can't make subtitles.")


def subtitles_caption() -> str:
    return _("Subtitles (.srt) from the transcript's timestamps.")


def translate_button() -> str:
    # Translators: the button under a transcript in another language than the reader's.
    return _("🌐 Translate")


def translating() -> str:
    return _("🌐 Translating…")


def translation_heading(language: str) -> str:
    # Translators: {language} is the language's own name, e.g. "русский".
    return _("🌐 <b>Translation ({language})</b>").format(language=language)


def translation_under_way() -> str:
    return _("That translation is on its way.")


def translation_text_gone() -> str:
    return _("The whole transcript is no longer kept, so I can't translate it.")


def translate_usage() -> str:
    return _(
        "Reply to a transcript (or a transcribed voice note) with /translate to translate it "
        "into your language, or with /translate xx for another one (a two-letter code such as "
        "en, ru, vi)."
    )


def translate_unknown_language(code: str) -> str:
    return _("I don't know the language code <b>{code}</b>. {usage}").format(
        code=code, usage=translate_usage()
    )


def translate_needs_transcript() -> str:
    return _("Transcribe it first (reply /transcribe to it), then /translate.")


def translations_off() -> str:
    return _("Translations are turned off on this bot.")
