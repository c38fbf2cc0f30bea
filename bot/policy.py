"""Who may use the bot, how much, and with which model: plain functions over the store."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from bot import texts
from bot.config import Settings
from bot.errors import QuotaExceeded
from bot.store import Job, Prefs, Store

_DAY = 24 * 3600

# The languages OpenAI's speech-to-text models accept as a `language` hint (ISO 639-1).
LANGUAGE_HINTS = frozenset(
    {
        "af",
        "ar",
        "az",
        "be",
        "bg",
        "bs",
        "ca",
        "cs",
        "cy",
        "da",
        "de",
        "el",
        "en",
        "es",
        "et",
        "fa",
        "fi",
        "fr",
        "gl",
        "he",
        "hi",
        "hr",
        "hu",
        "hy",
        "id",
        "is",
        "it",
        "ja",
        "kk",
        "kn",
        "ko",
        "lt",
        "lv",
        "mi",
        "mk",
        "mr",
        "ms",
        "ne",
        "nl",
        "no",
        "pl",
        "pt",
        "ro",
        "ru",
        "sk",
        "sl",
        "sr",
        "sv",
        "sw",
        "ta",
        "th",
        "tl",
        "tr",
        "uk",
        "ur",
        "vi",
        "zh",
    }
)
# The API reads at most ~224 tokens of prompt; a hint is a list of words, not an essay.
PROMPT_MAX_CHARS = 300


def is_admin(settings: Settings, user_id: int | None) -> bool:
    return user_id is not None and user_id in settings.admin_user_ids


def is_allowed(settings: Settings, user_id: int | None, chat_id: int) -> bool:
    """Empty allow lists mean everyone; otherwise the user or the chat must be listed."""
    if not settings.allowed_user_ids and not settings.allowed_chat_ids:
        return True
    if is_admin(settings, user_id):
        return True
    return (user_id is not None and user_id in settings.allowed_user_ids) or (
        chat_id in settings.allowed_chat_ids
    )


@dataclass(frozen=True)
class Refusal:
    text: str


async def check_limits(
    store: Store, settings: Settings, user_id: int, duration: float | None
) -> Refusal | None:
    """The per-minute job limit and the daily audio quota; admins are exempt."""
    if is_admin(settings, user_id):
        return None
    now = time.time()
    per_minute = settings.user_jobs_per_minute
    if per_minute:
        recent = await store.user_job_times(user_id, now - 60)
        if len(recent) >= per_minute:
            frees_at = recent[len(recent) - per_minute] + 60
            return Refusal(texts.rate_limited(math.ceil(frees_at - now)))
    quota = settings.user_daily_audio_seconds
    if quota:
        day_start = now - now % _DAY
        used = await store.user_audio_seconds_since(user_id, day_start)
        if used >= quota or used + (duration or 0) > quota:
            return Refusal(texts.quota_used(quota, int(day_start + _DAY - now)))
    return None


async def check_measured_quota(store: Store, settings: Settings, job: Job, seconds: float) -> None:
    """The daily quota again, for what the recording really lasts: raise QuotaExceeded.

    A job is accepted on its declared duration (none, for a document); the measured one is
    known only once the file is read, and must hold before anything is sent to the API.
    """
    quota = settings.user_daily_audio_seconds
    declared = job.duration or 0.0
    if not quota or seconds <= declared or is_admin(settings, job.user_id):
        return  # what it declared passed when it was accepted
    now = time.time()
    day_start = now - now % _DAY
    used = await store.user_audio_seconds_since(job.user_id, day_start)
    # `used` counts this job already, at its declared duration until it is settled.
    if used - declared + seconds > quota:
        raise QuotaExceeded(quota, int(day_start + _DAY - now))


@dataclass(frozen=True)
class Choice:
    """A value in effect and where it comes from: "group", "user" or "default"."""

    value: str | bool | None
    source: str


@dataclass(frozen=True)
class Effective:
    """Everything in effect for one person in one chat."""

    model: Choice
    language: Choice
    prompt: Choice
    quiet: Choice
    auto_transcribe: Choice
    sender_names: Choice

    @property
    def model_name(self) -> str:
        return str(self.model.value)


# Telegram's Chat.type values of the chats where several people talk and admins decide.
GROUP_CHAT_TYPES = frozenset({"group", "supergroup"})


def is_group(chat_type: str) -> bool:
    """A group or supergroup. Not a channel (its id is negative too, but no one there sends
    the bot anything; it gets no channel posts) and not a private chat."""
    return chat_type in GROUP_CHAT_TYPES


async def effective(
    store: Store, settings: Settings, chat_id: int, user_id: int | None, *, group: bool
) -> Effective:
    """The group's choice if set, else the person's own, else the default."""
    if user_id is None:
        chat, user = await store.get_prefs("chat", chat_id), Prefs()
    else:
        chat, user = await store.get_chat_and_user_prefs(chat_id, user_id)

    def layered(name: str, default: str | bool | None) -> Choice:
        if group and _usable(name, getattr(chat, name), settings):
            return Choice(getattr(chat, name), "group")
        if _usable(name, getattr(user, name), settings):
            return Choice(getattr(user, name), "user")
        return Choice(default, "default")

    def chat_only(name: str, default: bool) -> Choice:
        value = getattr(chat, name)
        return (
            Choice(value, "group" if group else "user")
            if value is not None
            else (Choice(default, "default"))
        )

    return Effective(
        model=layered("model", settings.default_model),
        language=layered("language", None),
        prompt=layered("prompt", None),
        # Quiet is the chat's: a group's admins or the person in a private chat decide it.
        quiet=chat_only("quiet", settings.quiet_groups_by_default if group else False),
        auto_transcribe=chat_only("auto_transcribe", settings.auto_transcribe_groups),
        sender_names=chat_only("sender_names", True),
    )


def _usable(name: str, value: str | bool | None, settings: Settings) -> bool:
    """A choice still in effect: set, and for a model one that TRANSCRIPTION_MODELS offers."""
    if name == "model":
        return value in settings.models.offered
    return value is not None
