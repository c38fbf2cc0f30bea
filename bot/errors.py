"""Domain errors and refusals, carrying their data; each is turned into one short message for
the user in one place (bot.texts.errors)."""

from __future__ import annotations

from dataclasses import dataclass


class TranscribotError(Exception):
    """Base of every error the bot expects and explains to the user."""


class AudioError(TranscribotError):
    """Something is wrong with the audio itself."""


class CorruptAudio(AudioError):
    """The file is not audio we can read (or is empty or truncated)."""


class UnsupportedAudio(AudioError):
    """The file has no audio track, or a format nothing here can read."""


class FfmpegMissing(AudioError):
    """The format needs conversion, but ffmpeg/ffprobe is not installed."""


class ConversionTimeout(AudioError):
    """ffprobe or ffmpeg took longer than its bound on this file (and was killed)."""


class AudioTooLong(AudioError):
    """Longer than MAX_AUDIO_SECONDS."""

    def __init__(self, seconds: float, limit: int) -> None:
        super().__init__(f"audio is {seconds:.0f} s, the limit is {limit} s")
        self.seconds = seconds
        self.limit = limit


class QuotaExceeded(TranscribotError):
    """The recording, as measured, would take its sender past the daily audio quota."""

    def __init__(self, limit: int, resets_in: int) -> None:
        super().__init__(f"over the daily quota of {limit} s (resets in {resets_in} s)")
        self.limit = limit
        self.resets_in = resets_in


class FileTooBig(AudioError):
    """Telegram will not let the bot download it (cloud Bot API: 20 MB; local server: 2000 MB)."""

    def __init__(self, size: int | None, limit: int) -> None:
        super().__init__(f"file is {size} bytes, the download limit is {limit}")
        self.size = size
        self.limit = limit


class UpstreamError(TranscribotError):
    """The transcription API failed."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class UpstreamUnavailable(UpstreamError):
    """Transient failure (429, 5xx, timeout, dropped connection) that outlasted the retries."""

    def __init__(
        self, message: str, status: int | None = None, *, failing_seconds: float = 0.0
    ) -> None:
        super().__init__(message, status)
        self.failing_seconds = failing_seconds  # how long the retries kept failing


class UpstreamRejected(UpstreamError):
    """The API refused the request (4xx): bad audio, too long, bad key, bad model."""


class UpstreamAuthError(UpstreamRejected):
    """401/403: the operator's key is wrong; the user cannot fix it."""


# --- recordings from a link (bot.links) ---


class LinkError(TranscribotError):
    """A link that was not fetched; the subclass says why, for the user."""


class LinkNotAllowed(LinkError):
    """Not an http(s) URL, or not one this bot may fetch (malformed, too long)."""


class LinkPrivate(LinkError):
    """The host is, or resolves to, an address outside the public internet."""


class LinkTooBig(LinkError):
    """Larger than LINK_MAX_MB (announced, or counted while downloading)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"larger than {limit} bytes")
        self.limit = limit


class LinkTooSlow(LinkError):
    """The server did not answer, or stopped sending, within the time limits."""


class LinkNotMedia(LinkError):
    """The link leads to a web page or something else that is not a recording."""


class LinkUnreachable(LinkError):
    """The server could not be reached, answered an error, or redirected too often."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


# --- refusals: work not taken on for the sender's own limits (bot.policy decides) ---
# Values, not exceptions: a refusal is an expected answer, returned to the handler that replies.


@dataclass(frozen=True)
class OverRate:
    """More jobs in the last minute than USER_JOBS_PER_MINUTE: one more fits in retry_in s."""

    retry_in: int


@dataclass(frozen=True)
class OverQuota:
    """Today's audio quota (`limit` seconds, USER_DAILY_AUDIO_SECONDS) is used: it resets at
    00:00 UTC, in resets_in seconds."""

    limit: int
    resets_in: int


Refusal = OverRate | OverQuota
