"""The conversation: the command menu, /start and /help, the model, the placeholder and pieces
of a transcript (a long job's progress: texts.progress); `span` words a duration for every room."""

from __future__ import annotations

from bot.i18n import _, ngettext
from bot.models import ModelSpec


def command_menu() -> list[tuple[str, str]]:
    """The commands Telegram lists in its menu, with their descriptions."""
    return [
        ("start", _("What this bot does")),
        ("help", _("How to use it, the current model")),
        ("model", _("Choose the transcription model")),
        ("autotranscribe", _("Groups: transcribe voice notes automatically (on/off)")),
        ("transcribe", _("Reply to a voice note to transcribe it")),
        ("translate", _("Reply to a transcript to translate it (or /translate xx)")),
        ("language", _("Language of your recordings (or auto)")),
        ("prompt", _("Vocabulary hint: names, jargon, spelling")),
        ("quiet", _("Only post finished transcripts (on/off)")),
        ("names", _("Groups: start transcripts with the sender's name (on/off)")),
        ("settings", _("Everything in effect here, and where it comes from")),
        ("usage", _("Your minutes this month and their estimated cost")),
    ]


def model_label(spec: ModelSpec) -> str:
    """The /model button: the operator's label, or the name with its note (built-in models)."""
    if spec.label:
        return spec.label
    return f"{spec.name} ({_(spec.note)})" if spec.note else spec.name


def working() -> str:
    return _("🎙 Transcribing…")


def no_speech() -> str:
    return _("🤷 No speech recognised.")


def full_transcript_caption() -> str:
    return _("The whole transcript as a text file.")


def unexpected() -> str:
    return _("😔 Sorry, something went wrong with this one. Please try again later.")


def not_allowed() -> str:
    return _("Sorry, this bot is private. Ask its owner for access.")


def group_admins_only() -> str:
    return _("Only this group's admins can change that.")


def groups_only() -> str:
    return _("This setting is for groups: add me to one and use it there.")


def auto_usage() -> str:
    return _("Use /autotranscribe on or /autotranscribe off.")


def transcribe_usage() -> str:
    return _("Reply to a voice note or audio with /transcribe to transcribe it.")


def admins_only() -> str:
    return _("That command is for the bot's admins.")


def start(model: str) -> str:
    return _(
        "👋 Send me a voice note, audio or video and I'll reply with its text.\n\n"
        "Model: <b>{model}</b> (change it with /model). /help tells more."
    ).format(model=model)


def help_text(model: str, in_group: bool, for_admin: bool = False) -> str:
    """/help; a bot admin asking in private also reads their own commands."""
    where = (
        _(
            "In this group I transcribe voice notes automatically unless an admin turns it off "
            "with /autotranscribe off; then reply /transcribe to a voice note to transcribe it."
        )
        if in_group
        else _("Add me to a group to transcribe its voice notes automatically.")
    )
    about = _(
        "<b>Transcribot</b> turns voice notes, audio and video into text.\n\n"
        "Current model: <b>{model}</b>\n"
        "/model – choose the transcription model\n"
        "/autotranscribe on|off – groups: transcribe voice notes automatically (admins)\n"
        "/transcribe – reply to a voice note to transcribe it"
    ).format(model=model)
    more = _(
        "/language – the language of your recordings (a hint for the model)\n"
        "/prompt – names and words to spell right\n"
        "/quiet on|off – only the finished transcript, no progress\n"
        "/settings – what is in effect here, and where it comes from\n"
        "/usage – your minutes this month and what they cost"
    )
    if for_admin and not in_group:
        more += "\n\n" + _(
            "For the bot's admins:\n"
            "/stats – jobs, minutes and costs of the whole bot, recent failures\n"
            "/alerts on|off – a message here when something needs fixing"
        )
    return f"{about}\n{more}\n\n{where}"


def model_prompt(model: str, for_group: bool) -> str:
    if for_group:
        text = _("Choose the transcription model for this group. Now: <b>{model}</b>")
    else:
        text = _("Choose the transcription model for you. Now: <b>{model}</b>")
    return text.format(model=model)


def model_set(model: str, for_group: bool) -> str:
    if for_group:
        text = _("✅ Model for this group: <b>{model}</b>")
    else:
        text = _("✅ Model for you: <b>{model}</b>")
    return text.format(model=model)


def auto_transcribe_state(enabled: bool) -> str:
    if enabled:
        return _("✅ I'll transcribe voice notes in this group automatically.")
    return _("⏸ Automatic transcription is off here. Reply /transcribe to a voice note to ask.")


def speaker(label: str) -> str:
    # Translators: heads a speaker's turn in a transcript: "Speaker A", "Speaker B".
    return _("Speaker {label}").format(label=label)


def span(seconds: float) -> str:
    """A duration as people say it: "45 seconds", "1 minute", "1 h 30 min", "3 hours"."""
    total = max(1, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if not hours and not minutes:
        return ngettext("{n} second", "{n} seconds", secs).format(n=secs)
    if not secs and not minutes:
        return ngettext("{n} hour", "{n} hours", hours).format(n=hours)
    if not secs and not hours:
        return ngettext("{n} minute", "{n} minutes", minutes).format(n=minutes)
    # Translators: the short units of a mixed duration: "1 h 30 min", "2 min 5 s".
    units = ((hours, _("{n} h")), (minutes, _("{n} min")), (secs, _("{n} s")))
    return " ".join(unit.format(n=n) for n, unit in units if n)
