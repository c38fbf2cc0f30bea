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
