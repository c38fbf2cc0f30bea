"""Who may use the bot, how much, and with which model: plain functions over the store."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from bot.config import Settings
from bot.errors import OverQuota, OverRate, QuotaExceeded, Refusal
from bot.store import Acceptance, Job, Limits, Prefs, Store
from bot.store.base import quota_ceiling

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


# Telegram's stand-ins, the same user id in every group: an anonymous group admin
# (GroupAnonymousBot) and a channel posting in a group (Channel_Bot). Their limits are per chat.
SHARED_SENDER_IDS = frozenset({1087968824, 136817688})
# A document declares no duration: until it is measured it is reckoned at a voice recording's
# 32 kbit/s (richer encodings come out longer, which only reserves more for a while).
_ESTIMATE_BYTES_PER_SECOND = 4000


def limit_subject(user_id: int | None, chat_id: int, *, as_chat: bool = False) -> int:
    """Whose limits a job counts against: the sender's own, or the chat's for a sender that
    speaks as the chat (sender_chat) or is one of Telegram's shared stand-ins."""
    if user_id is None or as_chat or user_id in SHARED_SENDER_IDS:
        return chat_id
    return user_id


def limits_for(
    settings: Settings,
    user_id: int | None,
    subject: int,
    duration: float | None,
    file_size: int | None,
) -> Limits:
    """What accepting one job may use; admins are exempt (their use is still counted)."""
    quota = settings.user_daily_audio_seconds
    if duration is not None:
        reserve = duration
    else:
        reserve = float(settings.max_audio_seconds)
        if file_size:
            reserve = min(reserve, max(1.0, file_size / _ESTIMATE_BYTES_PER_SECOND))
        if quota:
            reserve = min(reserve, float(quota))  # settled with what is measured
    if is_admin(settings, user_id):
        return Limits(subject, time.time(), reserve_seconds=reserve)
    return Limits(
        subject,
        time.time(),
        jobs_per_minute=settings.user_jobs_per_minute,
        daily_seconds=float(quota),
        reserve_seconds=reserve,
    )


async def accept_request(store: Store, settings: Settings, user_id: int) -> Refusal | None:
    """A paid request that is not a job (a translation), checked against the sender's limits
    and counted in the per-minute window in one store step, as a job is; None when it may go."""
    if is_admin(settings, user_id):
        return None
    limits = Limits(
        limit_subject(user_id, user_id),
        time.time(),
        jobs_per_minute=settings.user_jobs_per_minute,
        daily_seconds=float(settings.user_daily_audio_seconds),
    )
    return refusal(await store.accept_request(limits), settings)


def refusal(acceptance: Acceptance, settings: Settings) -> Refusal | None:
    """Why a job was not accepted for its sender's limits (None: it was not refused)."""
    seconds = math.ceil(acceptance.retry_in)
    if acceptance.outcome == "over_rate":
        return OverRate(max(1, seconds))
    if acceptance.outcome == "over_quota":
        return OverQuota(settings.user_daily_audio_seconds, max(0, seconds))
    return None


async def check_measured_quota(store: Store, settings: Settings, job: Job, seconds: float) -> None:
    """The daily quota again, for what the recording really lasts: raise QuotaExceeded.

    A job is accepted on what it declares (a document: an estimate from its size), reserved
    as such; the measured length is known only once the file is read, and must hold before
    anything is sent to the API.
    """
    quota = settings.user_daily_audio_seconds
    if not quota or is_admin(settings, job.user_id):
        return
    subject = limit_subject(job.user_id, job.chat_id)
    reserved = limits_for(settings, job.user_id, subject, job.duration, job.file_size)
    if seconds <= reserved.reserve_seconds:
        return  # what it reserved passed when it was accepted
    # `used` holds this job's reservation already, until it is settled.
    used = await store.quota_used(subject, reserved.day_start)
    if used - reserved.reserve_seconds > quota_ceiling(quota, seconds):
        raise QuotaExceeded(quota, int(reserved.quota_retry_in))


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
