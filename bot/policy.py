"""Who may use the bot, how much, and with which model: plain functions over the store."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from bot import texts
from bot.config import Settings
from bot.store import Store

_DAY = 24 * 3600


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


async def model_for(store: Store, settings: Settings, chat_id: int, user_id: int | None) -> str:
    """The group's choice if set, else the sender's own, else DEFAULT_MODEL."""
    if chat_id < 0:
        chosen = (await store.get_chat_settings(chat_id)).model
        if chosen:
            return chosen
    if user_id is not None:
        own = await store.get_user_model(user_id)
        if own:
            return own
    return settings.default_model


async def auto_transcribe_on(store: Store, settings: Settings, chat_id: int) -> bool:
    chosen = (await store.get_chat_settings(chat_id)).auto_transcribe
    return settings.auto_transcribe_groups if chosen is None else chosen
