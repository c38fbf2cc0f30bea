"""Why something was not done: domain errors and refusals (values that carry their limits and
times), worded in the reader's language. The only place that turns them into text."""

from __future__ import annotations

from bot.errors import (
    AudioTooLong,
    ConversionTimeout,
    CorruptAudio,
    FfmpegMissing,
    FileTooBig,
    LinkError,
    LinkNotAllowed,
    LinkNotMedia,
    LinkPrivate,
    LinkTooBig,
    LinkTooSlow,
    OverRate,
    QuotaExceeded,
    Refusal,
    TranscribotError,
    UnsupportedAudio,
    UpstreamAuthError,
    UpstreamRejected,
    UpstreamUnavailable,
)
from bot.i18n import _, ngettext
from bot.texts.common import span, unexpected


def refusal(refusal: Refusal) -> str:
    """Why a job was not taken on: the sender's own limits."""
    if isinstance(refusal, OverRate):
        return rate_limited(refusal.retry_in)
    return quota_used(refusal.limit, refusal.resets_in)


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


def for_error(error: TranscribotError) -> str:
    """The one short message a user sees for an error we expected."""
    if isinstance(error, LinkError):
        return link_error(error)
    if isinstance(error, FileTooBig):
        return _(
            "📦 This file is too big for me: Telegram lets bots download up to {megabytes} MB. "
            "Send a shorter recording, or a compressed one (a voice note or an mp3)."
        ).format(megabytes=error.limit // (1024 * 1024))
    if isinstance(error, QuotaExceeded):
        return quota_used(error.limit, error.resets_in)
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
        return _(
            "🛠 The transcription service refused the bot's credentials. "
            "Only the bot's admin can fix this."
        )
    if isinstance(error, UpstreamRejected):
        return _("🔇 The transcription service couldn't process this audio.")
    if isinstance(error, UpstreamUnavailable):
        return _("🌩 The transcription service is not answering right now. Please try again later.")
    return unexpected()


def link_error(error: LinkError) -> str:
    """Why a link was not transcribed."""
    if isinstance(error, LinkNotAllowed):
        return link_not_allowed()
    if isinstance(error, LinkPrivate):
        return _(
            "🔒 That link points into a private network. I only fetch recordings from the "
            "public internet."
        )
    if isinstance(error, LinkTooBig):
        return _("📦 The file behind that link is too big: I take up to {megabytes} MB.").format(
            megabytes=error.limit // (1024 * 1024)
        )
    if isinstance(error, LinkTooSlow):
        return _("⏱ The server behind that link was too slow. Please try again later.")
    if isinstance(error, LinkNotMedia):
        return _(
            "🔗 That link leads to a web page, not to an audio or video file. Send a direct "
            "download link (Google Drive, Dropbox and OneDrive share links work too)."
        )
    return _("🔗 I couldn't download the file behind that link.")


def link_not_allowed() -> str:
    return _("🔗 I can only fetch recordings from http:// and https:// links.")


def summary_failed(error: TranscribotError) -> str:
    if isinstance(error, UpstreamUnavailable):
        return _("🌩 The summary service is not answering right now. Try the button again later.")
    if isinstance(error, UpstreamAuthError):
        return _(
            "🛠 The summary service refused the bot's credentials. "
            "Only the bot's admin can fix this."
        )
    return _("😔 I couldn't summarise this transcript. Try the button again later.")


def translation_failed(error: TranscribotError) -> str:
    if isinstance(error, UpstreamUnavailable):
        return _("🌩 The translation service is not answering right now. Please try again later.")
    if isinstance(error, UpstreamAuthError):
        return _(
            "🛠 The translation service refused the bot's credentials. "
            "Only the bot's admin can fix this."
        )
    return _("😔 I couldn't translate this transcript. Please try again later.")
