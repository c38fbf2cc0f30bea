"""What the bot says to people, in one place; HTML-safe (values are escaped by callers).

Every text is looked up in the current language (bot.i18n) when its function is called: write
new ones as _("... {name} ...").format(name=value), counts with ngettext, and run `make messages`.
"""

from __future__ import annotations

from bot.errors import (
    AudioTooLong,
    ConversionTimeout,
    CorruptAudio,
    FfmpegMissing,
    FileTooBig,
    TranscribotError,
    UnsupportedAudio,
    UpstreamAuthError,
    UpstreamRejected,
    UpstreamUnavailable,
)
from bot.i18n import N_, _, ngettext

_MODEL_NOTES = {
    # Translators: the model buttons read "gpt-4o-mini-transcribe (fast, cheaper)".
    "gpt-4o-mini-transcribe": N_("fast, cheaper"),
    "gpt-4o-transcribe": N_("more accurate"),
}

_JOB_STATES = {
    # Translators: the states of jobs, counted in the admins' /stats.
    "queued": N_("queued"),
    "running": N_("running"),
    "done": N_("done"),
    "failed": N_("failed"),
}


def command_menu() -> list[tuple[str, str]]:
    """The commands Telegram lists in its menu, with their descriptions."""
    return [
        ("start", _("What this bot does")),
        ("help", _("How to use it, the current model")),
        ("model", _("Choose the transcription model")),
        ("autotranscribe", _("Groups: transcribe voice notes automatically (on/off)")),
        ("transcribe", _("Reply to a voice note to transcribe it")),
    ]


def model_label(model: str) -> str:
    return f"{model} ({_(_MODEL_NOTES[model])})"


def working() -> str:
    return _("🎙 Transcribing…")


def preparing() -> str:
    return _("🎙 A long recording: cutting it into parts…")


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


def help_text(model: str, in_group: bool) -> str:
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
        "/model – choose between gpt-4o-mini-transcribe (cheaper) and gpt-4o-transcribe "
        "(more accurate)\n"
        "/autotranscribe on|off – groups: transcribe voice notes automatically (admins)\n"
        "/transcribe – reply to a voice note to transcribe it"
    ).format(model=model)
    return f"{about}\n\n{where}"


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


def rate_limited(seconds: int) -> str:
    return _("⏳ You're sending a lot at once. Try again in {seconds} s.").format(
        seconds=max(seconds, 1)
    )


def quota_used(limit_seconds: int, resets_in_seconds: int) -> str:
    minutes = limit_seconds // 60
    wait = max(resets_in_seconds, 60) // 60 * 60  # whole minutes, at least one
    # Translators: {wait} is a duration such as "5 h 3 min" or "42 minutes".
    return ngettext(
        "⏳ You've used today's {minutes} minute of audio. It resets at 00:00 UTC (in {wait}).",
        "⏳ You've used today's {minutes} minutes of audio. It resets at 00:00 UTC (in {wait}).",
        minutes,
    ).format(minutes=minutes, wait=span(wait))


def part_progress(done: int, total: int) -> str:
    return ngettext(
        "🎙 Transcribing a long recording… {done} of {total} part done",
        "🎙 Transcribing a long recording… {done} of {total} parts done",
        total,
    ).format(done=done, total=total)


def for_error(error: TranscribotError) -> str:
    """The one short message a user sees for an error we expected."""
    if isinstance(error, FileTooBig):
        return _(
            "📦 This file is too big for me: Telegram lets bots download up to {megabytes} MB. "
            "Send a shorter recording, or a compressed one (a voice note or an mp3)."
        ).format(megabytes=error.limit // (1024 * 1024))
    if isinstance(error, AudioTooLong):
        # Translators: {limit} is a duration such as "3 hours" or "1 h 30 min".
        return _(
            "⏱ That recording is too long: I take up to {limit}. Please send a shorter one."
        ).format(limit=span(error.limit))
    if isinstance(error, FfmpegMissing):
        return _(
            "🛠 This file needs converting, and the bot's server can't do that right now "
            "(ffmpeg is missing). A voice note works."
        )
    if isinstance(error, ConversionTimeout):
        return _(
            "⏱ Converting this file took too long. Try a shorter recording, or a voice note "
            "or an mp3."
        )
    if isinstance(error, UnsupportedAudio):
        return _("🔇 I couldn't find any audio in that file.")
    if isinstance(error, CorruptAudio):
        return _("🔇 I couldn't read that file: it seems damaged, or it isn't audio.")
    if isinstance(error, UpstreamAuthError):
        return _("🛠 The transcription service refused the bot's credentials. The admin is told.")
    if isinstance(error, UpstreamRejected):
        return _("🔇 The transcription service couldn't process this audio.")
    if isinstance(error, UpstreamUnavailable):
        return _("🌩 The transcription service is not answering right now. Please try again later.")
    return unexpected()


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


def stats(by_status: dict[str, int], minutes: dict[str, float], failures: list[str]) -> str:
    lines = [_("<b>Jobs</b>")]
    for status, label in _JOB_STATES.items():
        lines.append(f"{_(label)}: {by_status.get(status, 0)}")
    lines.append("\n" + _("<b>Audio minutes</b>"))
    lines.extend(f"{model}: {value:.2f}" for model, value in sorted(minutes.items()))
    if not minutes:
        lines.append(_("none yet"))
    if failures:
        lines.append("\n" + _("<b>Recent failures</b>"))
        lines.extend(failures)
    return "\n".join(lines)
