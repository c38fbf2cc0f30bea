"""A transcript shown while it arrives: one message, edited at most once per interval."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Awaitable, Callable

from bot.replies import MESSAGE_LIMIT, escape, tail_that_fits, utf16_len

# Telegram's guidance: about one message a second in a chat, 20 a minute in a group (which
# the transcript, other notes and the bot's replies share).
PRIVATE_INTERVAL = 1.0
GROUP_INTERVAL = 3.0
# Says the text is not complete yet; it also keeps the last live edit from matching the
# final text, which Telegram would refuse as "message is not modified".
_MORE = " …"
_PARTIAL_WORD = re.compile(r"^\S{1,50}\s+")
# A proxy that buffers the stream delivers every event at once: the final text follows the
# first piece within milliseconds, and a live edit just before it would be wasted.
_SETTLE = 0.25
# About how much text a second of speech makes (150 words a minute); only used to tell when a
# stream is nearly done. Slower speech (or Chinese, Japanese) makes the guess late, so edits go
# as before; faster speech passes the guess, and then it is not used.
_CHARS_PER_SECOND = 14.0


def interval_for(chat_type: str) -> float:
    return PRIVATE_INTERVAL if chat_type == "private" else GROUP_INTERVAL


def live_html(text: str) -> str:
    """The text so far as one message: its end once it no longer fits, then " …"."""
    text = text.strip()
    room = MESSAGE_LIMIT - utf16_len(_MORE)
    if utf16_len(text) > room:
        tail = tail_that_fits(text, room - 1)
        if not text[-len(tail) - 1].isspace():
            tail = _PARTIAL_WORD.sub("", tail, count=1)  # start at a word, when there are words
        text = "…" + tail.lstrip()
    return escape(text) + _MORE


class LiveText:
    """The latest text in a message, edited beside the work, never in its way.

    At most one edit per `interval`, counted from the placeholder sent just before; always
    the newest text: texts that come faster are skipped, never queued, and the caller never
    waits for Telegram. finish() waits for an edit under way, so none lands after the final
    text.
    """

    def __init__(
        self,
        show: Callable[[str], Awaitable[None]],
        interval: float,
        *,
        shown: bool = True,
        seconds: float | None = None,
    ) -> None:
        """`seconds`: how long the recording is, to tell when its whole text is due."""
        self._show = show
        self._pace = _Pace(seconds)
        self._interval = interval
        self._latest = ""
        self._shown = ""
        self._changed = asyncio.Event()
        self._finishing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._begun = shown  # False: no placeholder yet; begin() once there is one
        self._shown_at = time.monotonic()  # the placeholder counts as this interval's message

    def begin(self) -> None:
        """The placeholder was just sent: edits may follow, one interval after it."""
        if self._begun:
            return
        self._begun, self._shown_at = True, time.monotonic()
        if self._latest and not self._finishing.is_set():
            self._task = asyncio.create_task(self._run(), name="live-text")

    async def update(self, text: str) -> None:
        """Show `text` when the interval allows; returns at once."""
        if self._finishing.is_set() or not text.strip():
            return
        self._latest = text
        self._pace.saw(len(text))
        self._changed.set()
        if self._task is None and self._begun:
            self._task = asyncio.create_task(self._run(), name="live-text")

    async def finish(self) -> None:
        """No more edits; waits for one under way."""
        self._finishing.set()
        self._changed.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        while True:
            await self._changed.wait()
            wait = max(_SETTLE, self._shown_at + self._interval - time.monotonic())
            if await self._finished_within(wait):
                return
            # The whole text looks due before the next edit could follow this one: this edit
            # would be a message spent for nothing. Wait one interval for it, at most.
            if self._pace.due_within(self._interval) and await self._finished_within(
                self._interval
            ):
                return
            self._changed.clear()
            html = live_html(self._latest)
            if html != self._shown:
                self._shown, self._shown_at = html, time.monotonic()
                await self._show(html)

    async def _finished_within(self, seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._finishing.wait(), seconds)
        return self._finishing.is_set()


class _Pace:
    """When a streamed text will be whole: its expected length at the pace it came so far."""

    def __init__(self, seconds: float | None) -> None:
        self._expected = seconds * _CHARS_PER_SECOND if seconds else None
        self._first: tuple[float, int] | None = None
        self._last: tuple[float, int] | None = None

    def saw(self, chars: int) -> None:
        now = time.monotonic()
        if self._first is None:
            self._first = (now, chars)
        self._last = (now, chars)

    def due_within(self, seconds: float) -> bool:
        if self._expected is None or self._first is None or self._last is None:
            return False
        (first_at, first), (last_at, last) = self._first, self._last
        if last_at - first_at < 0.05 or last <= first or last >= self._expected:
            return False  # no pace yet, or longer than guessed: no telling when it ends
        pace = (last - first) / (last_at - first_at)
        left = (self._expected - last) / pace - (time.monotonic() - last_at)
        return left < seconds
