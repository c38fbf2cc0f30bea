"""What the bot says to people, in one place; HTML-safe (values are escaped by callers)."""

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
from bot.i18n import _, ngettext

MODEL_LABELS = {
    "gpt-4o-mini-transcribe": "gpt-4o-mini-transcribe (fast, cheaper)",
    "gpt-4o-transcribe": "gpt-4o-transcribe (more accurate)",
}

WORKING = "🎙 Transcribing…"
PREPARING = "🎙 A long recording: cutting it into parts…"
NO_SPEECH = "🤷 No speech recognised."
FULL_TRANSCRIPT_CAPTION = "The whole transcript as a text file."
UNEXPECTED = "😔 Sorry, something went wrong with this one. Please try again later."
NOT_ALLOWED = "Sorry, this bot is private. Ask its owner for access."
GROUP_ADMINS_ONLY = "Only this group's admins can change that."
AUTO_USAGE = "Use /autotranscribe on or /autotranscribe off."
TRANSCRIBE_USAGE = "Reply to a voice note or audio with /transcribe to transcribe it."
ADMINS_ONLY = "That command is for the bot's admins."


def start(model: str) -> str:
    return (
        "👋 Send me a voice note, audio or video and I'll reply with its text.\n\n"
        f"Model: <b>{model}</b> (change it with /model). /help tells more."
    )


def help_text(model: str, in_group: bool) -> str:
    where = (
        "In this group I transcribe voice notes automatically unless an admin turns it off "
        "with /autotranscribe off; then reply /transcribe to a voice note to transcribe it."
        if in_group
        else "Add me to a group to transcribe its voice notes automatically."
    )
    return (
        "<b>Transcribot</b> turns voice notes, audio and video into text.\n\n"
        f"Current model: <b>{model}</b>\n"
        "/model – choose between gpt-4o-mini-transcribe (cheaper) and gpt-4o-transcribe "
        "(more accurate)\n"
        "/autotranscribe on|off – groups: transcribe voice notes automatically (admins)\n"
        "/transcribe – reply to a voice note to transcribe it\n\n" + where
    )


def model_prompt(model: str, for_group: bool) -> str:
    whose = "this group" if for_group else "you"
    return f"Choose the transcription model for {whose}. Now: <b>{model}</b>"


def model_set(model: str, for_group: bool) -> str:
    whose = "this group" if for_group else "you"
    return f"✅ Model for {whose}: <b>{model}</b>"


def auto_transcribe_state(enabled: bool) -> str:
    if enabled:
        return "✅ I'll transcribe voice notes in this group automatically."
    return "⏸ Automatic transcription is off here. Reply /transcribe to a voice note to ask."


def rate_limited(seconds: int) -> str:
    return f"⏳ You're sending a lot at once. Try again in {max(seconds, 1)} s."


def quota_used(limit_seconds: int, resets_in_seconds: int) -> str:
    hours, rest = divmod(max(resets_in_seconds, 60), 3600)
    return (
        f"⏳ You've used today's {limit_seconds // 60} minutes of audio. "
        f"It resets at 00:00 UTC (in {hours} h {rest // 60} min)."
    )


def part_progress(done: int, total: int) -> str:
    return f"🎙 Transcribing a long recording… {done} of {total} parts done"


def for_error(error: TranscribotError) -> str:
    """The one short message a user sees for an error we expected."""
    if isinstance(error, FileTooBig):
        return (
            f"📦 This file is too big for me: Telegram lets bots download up to "
            f"{error.limit // (1024 * 1024)} MB. Send a shorter recording, or a compressed one "
            "(a voice note or an mp3)."
        )
    if isinstance(error, AudioTooLong):
        return (
            f"⏱ That recording is too long: I take up to {span(error.limit)}. "
            "Please send a shorter one."
        )
    if isinstance(error, FfmpegMissing):
        return (
            "🛠 This file needs converting, and the bot's server can't do that right now "
            "(ffmpeg is missing). A voice note works."
        )
    if isinstance(error, ConversionTimeout):
        return (
            "⏱ Converting this file took too long. Try a shorter recording, or a voice note "
            "or an mp3."
        )
    if isinstance(error, UnsupportedAudio):
        return "🔇 I couldn't find any audio in that file."
    if isinstance(error, CorruptAudio):
        return "🔇 I couldn't read that file: it seems damaged, or it isn't audio."
    if isinstance(error, UpstreamAuthError):
        return "🛠 The transcription service refused the bot's credentials. The admin is told."
    if isinstance(error, UpstreamRejected):
        return "🔇 The transcription service couldn't process this audio."
    if isinstance(error, UpstreamUnavailable):
        return "🌩 The transcription service is not answering right now. Please try again later."
    return UNEXPECTED


def span(seconds: float) -> str:
    """A duration as people say it: "45 seconds", "1 minute", "1 h 30 min", "3 hours"."""
    total = max(1, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if not hours and not minutes:
        return f"{secs} second{'s' if secs != 1 else ''}"
    if not secs and not (hours and minutes):
        count, unit = (hours, "hour") if hours else (minutes, "minute")
        return f"{count} {unit}{'s' if count != 1 else ''}"
    units = ((hours, "h"), (minutes, "min"), (secs, "s"))
    return " ".join(f"{n} {unit}" for n, unit in units if n)


def stats(by_status: dict[str, int], minutes: dict[str, float], failures: list[str]) -> str:
    lines = ["<b>Jobs</b>"]
    for status in ("queued", "running", "done", "failed"):
        lines.append(f"{status}: {by_status.get(status, 0)}")
    lines.append("\n<b>Audio minutes</b>")
    lines.extend(f"{model}: {value:.2f}" for model, value in sorted(minutes.items()))
    if not minutes:
        lines.append("none yet")
    if failures:
        lines.append("\n<b>Recent failures</b>")
        lines.extend(failures)
    return "\n".join(lines)


# Settings: /language, /prompt, /quiet, /names, /settings. Catalogue-ready: every text goes
# through `_` when it is used, with named {placeholders}.


def _whose(for_group: bool) -> str:
    return _("this group") if for_group else _("you")


def language_state(code: str | None, for_group: bool) -> str:
    if code is None:
        return _("Language for {whose}: detected from the audio.").format(whose=_whose(for_group))
    return _("Language for {whose}: <b>{code}</b>.").format(whose=_whose(for_group), code=code)


def language_usage() -> str:
    return _(
        "Tell me the language of your recordings to make transcripts more accurate: "
        "/language vi, /language en, /language ru… (a two-letter ISO 639-1 code), "
        "or /language auto to let the model detect it."
    )


def language_unknown(code: str) -> str:
    return _("I don't know the language code <b>{code}</b>. {usage}").format(
        code=code, usage=language_usage()
    )


def prompt_state(prompt: str | None, for_group: bool) -> str:
    if prompt is None:
        return _("No vocabulary hint for {whose}.").format(whose=_whose(for_group))
    return _("Vocabulary hint for {whose}: <i>{prompt}</i>").format(
        whose=_whose(for_group), prompt=prompt
    )


def prompt_usage(limit: int) -> str:
    return _(
        "A vocabulary hint helps with names, jargon and spelling: "
        "/prompt Kubernetes, Nguyễn, PostgreSQL (up to {limit} characters). "
        "/prompt off removes it."
    ).format(limit=limit)


def prompt_too_long(limit: int) -> str:
    return _("That hint is too long: {limit} characters at most.").format(limit=limit)


def quiet_state(enabled: bool) -> str:
    if enabled:
        return _("🤫 Quiet mode is on: I only post the finished transcript here.")
    return _("🔔 Quiet mode is off: I show progress while I work.")


def quiet_usage() -> str:
    return _("Use /quiet on or /quiet off.")


def names_state(enabled: bool) -> str:
    if enabled:
        return _("👤 Transcripts here start with the sender's name.")
    return _("Transcripts here no longer start with the sender's name.")


def names_usage() -> str:
    return _("Use /names on or /names off.")


def groups_only() -> str:
    return _("This setting is for groups: add me to one and use it there.")


def settings_overview(rows: list[tuple[str, str, str]]) -> str:
    """rows: (what, value, where it comes from), all HTML-safe already."""
    lines = [_("<b>Settings in effect here</b>")]
    lines.extend(
        _("{what}: <b>{value}</b> ({source})").format(what=w, value=v, source=s) for w, v, s in rows
    )
    lines.append(_("Change them with /model, /language, /prompt, /quiet, /names."))
    return "\n".join(lines)


def source_label(source: str) -> str:
    return {
        "group": _("this group's"),
        "user": _("yours"),
        "default": _("default"),
    }.get(source, source)


def setting_label(name: str) -> str:
    return {
        "model": _("Model"),
        "language": _("Language"),
        "prompt": _("Vocabulary hint"),
        "quiet": _("Quiet mode"),
        "auto_transcribe": _("Automatic transcription"),
        "sender_names": _("Sender names"),
    }[name]


def on_off(value: bool) -> str:
    return _("on") if value else _("off")


def auto_detect() -> str:
    return _("detected")


def none_set() -> str:
    return _("none")


# Usage and statistics: /usage, /stats.


def usage_report(since: str, rows: list[tuple[str, str, float]], total: float) -> str:
    """rows: (model, amount already worded, estimated USD)."""
    lines = [_("<b>Your usage this month</b> (since {date}, UTC)").format(date=since)]
    if not rows:
        lines.append(_("Nothing yet."))
    lines.extend(
        _("{model}: {amount}, ≈ ${cost}").format(model=m, amount=a, cost=f"{c:.4f}")
        for m, a, c in rows
    )
    if rows:
        lines.append(_("Total ≈ ${cost}").format(cost=f"{total:.4f}"))
    lines.append(_("Prices are estimates from list prices. Answers from the cache are free."))
    return "\n".join(lines)


def audio_amount(seconds: float, count: int) -> str:
    notes = ngettext("{n} recording", "{n} recordings", count).format(n=count)
    return _("{duration} in {notes}").format(duration=span(seconds), notes=notes)


def tokens_amount(input_tokens: int, output_tokens: int) -> str:
    return _("summaries, {tokens} tokens").format(tokens=input_tokens + output_tokens)


def stats_report(
    by_status: dict[str, int],
    minutes: dict[str, float],
    by_day: dict[str, dict[str, float]],
    top_chats: list[tuple[int, int, float]],
    failures: list[str],
) -> str:
    lines = [_("<b>Jobs</b>")]
    lines.extend(
        f"{status}: {by_status.get(status, 0)}"
        for status in ("queued", "running", "done", "failed")
    )
    lines.append("\n" + _("<b>Audio minutes by model</b>"))
    lines.extend(f"{model}: {value:.2f}" for model, value in sorted(minutes.items()))
    if not minutes:
        lines.append(_("none yet"))
    if by_day:
        lines.append("\n" + _("<b>Minutes by day</b>"))
        for day, models in by_day.items():
            per_model = ", ".join(f"{m} {v:.1f}" for m, v in sorted(models.items()))
            lines.append(f"{day}: {per_model}")
    if top_chats:
        lines.append("\n" + _("<b>Top chats</b>"))
        lines.extend(
            _("{chat}: {jobs} jobs, {minutes} min").format(
                chat=chat, jobs=jobs, minutes=f"{mins:.1f}"
            )
            for chat, jobs, mins in top_chats
        )
    if failures:
        lines.append("\n" + _("<b>Recent failures</b>"))
        lines.extend(failures)
    return "\n".join(lines)


# Buttons under a transcript.


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
