"""Telegram's flood limits: one limiter for the whole fleet (Redis) or this process (SQLite)."""

from __future__ import annotations

from bot.config import RedisLocation, Settings, database_location
from bot.flood.limiter import FloodLimiter, NoRoom, Urgency, long_wait_hook
from bot.flood.windows import FloodLimits, FloodWindows, LocalWindows, Window

__all__ = [
    "FloodLimiter",
    "FloodLimits",
    "NoRoom",
    "Urgency",
    "build_limiter",
    "flood_limits",
    "long_wait_hook",
]


def flood_limits(settings: Settings) -> FloodLimits:
    """The windows the settings describe (Telegram's published limits by default)."""
    return FloodLimits(
        overall=Window.per(settings.telegram_rate_per_second, 1.0),
        group=Window.per(settings.telegram_group_rate_per_minute, 60.0),
        chat=Window.per(settings.telegram_chat_rate_per_second, 1.0, settings.telegram_chat_burst),
    )


def build_limiter(settings: Settings) -> FloodLimiter:
    """Shared through Redis when DATABASE_URL names one, else this process's own."""
    limits = flood_limits(settings)
    location = database_location(settings.database_url)

    def make_windows() -> FloodWindows:
        if isinstance(location, RedisLocation):
            from bot.flood.fallback import FallbackWindows
            from bot.flood.redis import RedisWindows

            return FallbackWindows(RedisWindows(location.url, limits), LocalWindows(limits))
        return LocalWindows(limits)

    return FloodLimiter(make_windows)
