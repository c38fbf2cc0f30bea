"""Telegram's flood limits, enforced by the fake when a test or the bench asks for them.

Telegram's guidance: about 30 messages a second over all chats, 20 a minute in one group,
about one a second in one chat (short bursts allowed); past them it answers 429 with
`parameters.retry_after`. The fake counts sends and edits alike (whether Telegram does is not
documented) over sliding windows: "at most 30 in any 1 s", not a token bucket, which would let
a burst of 30 through on top of 30 a second. Calls Telegram does not count as messages
(sendChatAction, getFile, answerCallbackQuery, getChatMember...) pass freely.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.telegram_rules import TelegramError

# The methods that put or change a message in a chat.
COUNTED_METHODS = frozenset(
    {
        "sendMessage",
        "editMessageText",
        "editMessageCaption",
        "editMessageReplyMarkup",
        "editMessageMedia",
        "sendDocument",
        "sendPhoto",
        "sendAudio",
        "sendVoice",
        "sendVideo",
        "sendAnimation",
        "sendSticker",
        "sendMediaGroup",
        "copyMessage",
        "forwardMessage",
    }
)


@dataclass(frozen=True)
class Window:
    """At most `count` in any `seconds`."""

    count: int
    seconds: float


@dataclass(frozen=True)
class Limits:
    overall: Window = Window(30, 1.0)
    group: Window = Window(20, 60.0)
    # About one a second in a chat, bursts allowed: a group's 20 a minute binds before this.
    chat: Window = Window(20, 20.0)


@dataclass
class _Windows:
    overall: deque[float] = field(default_factory=deque)
    by_chat: dict[int, deque[float]] = field(default_factory=dict)


class FloodControl:
    """Admits a counted call or raises the 429 Telegram would answer; counts the 429s."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.refused = 0  # 429s answered
        self.admitted = 0  # counted calls let through
        self._seen = _Windows()

    def check(self, method: str, params: dict[str, Any], now: float) -> None:
        if method not in COUNTED_METHODS:
            return
        chat = params.get("chat_id")
        if not isinstance(chat, int):
            return  # inline messages: not tied to a chat
        limits = self.limits
        chat_times = self._seen.by_chat.setdefault(chat, deque())
        chat_horizon = max(limits.chat.seconds, limits.group.seconds)
        waits = [
            _wait(self._seen.overall, limits.overall, now, limits.overall.seconds),
            _wait(chat_times, limits.chat, now, chat_horizon),
        ]
        if chat < 0:
            waits.append(_wait(chat_times, limits.group, now, chat_horizon))
        wait = max(waits)
        if wait > 0:
            self.refused += 1
            retry_after = max(1, math.ceil(wait))
            raise TelegramError(429, f"Too Many Requests: retry after {retry_after}", retry_after)
        self._seen.overall.append(now)
        chat_times.append(now)
        self.admitted += 1


def _wait(times: deque[float], window: Window, now: float, horizon: float) -> float:
    """Seconds until one more fits in `window` (0: it fits now); forgets times older than
    `horizon` (the longest window these times are read for)."""
    while times and times[0] <= now - horizon:
        times.popleft()
    inside = [t for t in times if t > now - window.seconds] if len(times) >= window.count else []
    if len(inside) < window.count:
        return 0.0
    return inside[-window.count] + window.seconds - now
