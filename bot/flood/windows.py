"""Telegram's flood limits as sliding windows: in this process, or shared by replicas in Redis.

Telegram allows about 30 messages a second over all chats, 20 a minute in one group and about
one a second in one chat (short bursts allowed), and answers 429 past them. The windows are
sliding ("at most 30 in any 1 s"): a token bucket that lets a burst of 30 through on top of 30
a second sends 60 within one second.

A message holds its place in the windows from the moment it is reserved until its answer
came back (`release` moves its time there): Telegram counted it somewhere in between, so the
next one waits a whole window after the latest moment Telegram can have seen it. Until then it
is scored in the future (IN_FLIGHT_SECONDS ahead), so it counts in every window however slow
the answer: scored at its request, a message unanswered after a whole window stopped counting
while Telegram could still count it (one 429 under load came from that).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Protocol

# A message not answered yet is scored this far ahead: it counts until its answer comes (or,
# if the replica that sent it died, this long). Longer than any Bot API call may take.
IN_FLIGHT_SECONDS = 60.0
# While the place a message waits for is held by one not answered yet: how soon to ask again.
ANSWER_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class Window:
    """At most `count` messages in any `seconds`; count 0 means no limit."""

    count: int
    seconds: float

    @classmethod
    def per(cls, rate: float, period: float, burst: float | None = None) -> Window:
        """`rate` messages per `period` seconds, `burst` of them at once (default: the rate)."""
        if rate <= 0:
            return cls(0, 0.0)
        count = max(1, math.floor(burst if burst else rate))
        return cls(count, count / rate * period)


@dataclass(frozen=True)
class FloodLimits:
    overall: Window
    group: Window
    chat: Window

    def for_chat(self, chat: int) -> tuple[Window, ...]:
        """The windows a message to `chat` counts in besides the overall one."""
        return (self.chat, self.group) if chat < 0 else (self.chat,)

    @property
    def chat_horizon(self) -> float:
        return max(self.chat.seconds, self.group.seconds)


@dataclass(frozen=True)
class Ticket:
    """A reserved place: `wait` 0 and a key to release, or the seconds to wait before asking
    again (nothing reserved)."""

    wait: float
    key: str = ""
    overall: bool = False  # the wait is the bot's overall window's (or a pause of every chat)


class FloodWindows(Protocol):
    """Where the windows live; every method is one atomic step."""

    async def reserve(self, chat: int | None, spare: int = 0) -> Ticket:
        """A place for one message to `chat`, keeping `spare` places of its chat's windows
        free (for a live edit that must not take the final text's place), and with `spare`,
        a third of the overall window (see overall_spare)."""

    async def release(self, chat: int | None, ticket: Ticket) -> None:
        """The answer came back: the message counts from now."""

    async def pause(self, chat: int | None, seconds: float) -> None:
        """Telegram said 429: nothing more to this chat for `seconds` (to anyone when two chats
        were refused within a second: that is the bot's overall limit)."""

    async def close(self) -> None: ...


class LocalWindows:
    """The windows of one process (SQLite: one bot process)."""

    def __init__(self, limits: FloodLimits) -> None:
        self._limits = limits
        self._overall: dict[str, float] = {}
        self._chats: dict[int, dict[str, float]] = {}
        self._paused: dict[int | None, float] = {}  # None: every chat
        self._last_refusal: tuple[int | None, float] = (None, -math.inf)
        self._serial = 0

    async def reserve(self, chat: int | None, spare: int = 0) -> Ticket:
        now = time.monotonic()
        limits = self._limits
        overall = limits.overall
        spared = overall_spare(overall, spare)
        everyone = max(
            self._paused.get(None, 0.0) - now,
            _wait(self._overall, overall, now, overall.seconds, spared),
        )
        own = self._paused.get(chat, 0.0) - now
        if chat is not None:
            times = self._chats.setdefault(chat, {})
            for window in limits.for_chat(chat):
                own = max(own, _wait(times, window, now, limits.chat_horizon, spare))
        if everyone > 0 or own > 0:
            return Ticket(max(everyone, own), overall=everyone >= own)
        self._serial += 1
        key = str(self._serial)
        self._overall[key] = now + IN_FLIGHT_SECONDS
        if chat is not None:
            self._chats[chat][key] = now + IN_FLIGHT_SECONDS
        return Ticket(0.0, key)

    async def release(self, chat: int | None, ticket: Ticket) -> None:
        now = time.monotonic()
        if ticket.key in self._overall:
            self._overall[ticket.key] = now
        times = self._chats.get(chat) if chat is not None else None
        if times is not None and ticket.key in times:
            times[ticket.key] = now

    async def pause(self, chat: int | None, seconds: float) -> None:
        now = time.monotonic()
        until = now + seconds
        self._paused[chat] = max(self._paused.get(chat, 0.0), until)
        last_chat, last_at = self._last_refusal
        if chat is None or (last_chat != chat and now - last_at < 1.0):
            self._paused[None] = max(self._paused.get(None, 0.0), until)
        self._last_refusal = (chat, now)
        self._paused = {k: v for k, v in self._paused.items() if v > now}

    async def close(self) -> None:
        return None


def overall_spare(window: Window, spare: int) -> int:
    """Places of the bot's overall window a courtesy message (placeholder, live edit) leaves
    free: a third of it. Under load the overall window is what every chat's final text waits
    for; a placeholder taken there makes its note cost two messages and another note wait."""
    return max(spare, window.count // 3) if spare > 0 else 0


def _wait(times: dict[str, float], window: Window, now: float, horizon: float, spare: int) -> float:
    """Seconds until one more fits in `window` with `spare` places left (0: it fits now);
    forgets times older than `horizon`, the longest window these times are read for."""
    if window.count <= 0:
        return 0.0
    for key in [k for k, at in times.items() if at <= now - horizon]:
        del times[key]
    allowed = window.count - spare
    inside = sorted(at for at in times.values() if at > now - window.seconds)
    if len(inside) < allowed:
        return 0.0
    if allowed <= 0:
        return window.seconds
    blocking = inside[len(inside) - allowed]
    if blocking > now:  # not answered yet: it counts until it is, then for a whole window
        return min(window.seconds, ANSWER_POLL_SECONDS)
    return blocking + window.seconds - now
