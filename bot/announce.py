"""While a job works: a chat action costs no message; a placeholder only when the wait is long.

A short note is answered with one message, the transcript: a placeholder and its edit would be
two against Telegram's limits (30 a second per bot, 20 a minute per group). The placeholder
goes out when the transcript is not there within `placeholder_after` seconds (private chats),
or at once for a long recording (private chats and groups); in groups a short note never gets
one. Meanwhile "typing" shows that the bot is at work. A busy bot (more notes at work than its
second of messages holds) sends none for short waits: their transcripts will fill that second,
and a placeholder would make its note cost two messages and push another's transcript back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from telegram import Bot
from telegram.constants import ChatAction
from telegram.error import TelegramError

from bot.delivery import Replies, shows_progress
from bot.store import Job

log = logging.getLogger(__name__)

LONG_RECORDING_SECONDS = 120  # declared duration from which a placeholder goes out at once
_ACTION_AFTER = 1.0  # a transcript ready sooner needs no sign of work (and costs no call)
_ACTION_LASTS = 4.5  # Telegram shows a chat action for about 5 s


class Workload:
    """How many jobs are at work in this process; busy from `busy_from` of them (0: never)."""

    def __init__(self, busy_from: int) -> None:
        self._busy_from = busy_from
        self.jobs = 0

    @property
    def busy(self) -> bool:
        return 0 < self._busy_from <= self.jobs


class Announcer:
    """Shows that `job` is at work, with as few messages as it can; `current` is the message
    progress and live text go in (None while there is none)."""

    def __init__(
        self,
        bot: Bot,
        replies: Replies,
        job: Job,
        placeholder_after: float,
        workload: Workload | None = None,
    ) -> None:
        self._bot = bot
        self._workload = workload or Workload(0)
        self._counted = False
        self._replies = replies
        self._job = job
        self._after = placeholder_after
        # A placeholder from an earlier attempt (or the transcript it already sent) is reused,
        # never announced into again: it may hold the delivered text.
        self.current: int | None = job.placeholder_id
        self._sending: asyncio.Task[int | None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._on_placed: list[Callable[[], None]] = []

    @property
    def live(self) -> bool:
        """Whether progress and live text may be shown in `current`."""
        placeholder = self.current is not None or self._sending is not None
        return placeholder and self._job.placeholder_id is None and shows_progress(self._job)

    def start(self) -> None:
        if not self._counted:
            self._counted = True
            self._workload.jobs += 1
        if self.current is not None or not shows_progress(self._job):
            return  # a retry reuses its message; quiet jobs and upgrades show nothing
        long = (self._job.duration or 0) >= LONG_RECORDING_SECONDS
        if long or (self._after <= 0 and self._job.chat_type == "private"):
            self.long_recording()
        else:
            self._task = asyncio.create_task(self._wait(), name=f"announce:{self._job.id}")

    def long_recording(self) -> None:
        """A long wait is certain (a long recording): the placeholder now, in any chat."""
        if self.current is None and self._sending is None and shows_progress(self._job):
            self._sending = asyncio.create_task(self._send(), name=f"placeholder:{self._job.id}")

    async def stop(self) -> int | None:
        """No more announcing; the placeholder (sent, or under way: waited for), if any."""
        if self._counted:
            self._counted = False
            self._workload.jobs -= 1
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._sending is not None:
            # Never cancelled: a placeholder sent but not recorded would stay for ever.
            with contextlib.suppress(TelegramError):
                await asyncio.shield(self._sending)
        return self.current

    async def _wait(self) -> None:
        """Typing after a moment; in a private chat the placeholder once the wait is long;
        typing again while there is none (no room for it)."""
        private = self._job.chat_type == "private"
        if private and self._after <= _ACTION_AFTER:
            await asyncio.sleep(self._after)
            if await self._placed():
                return
        else:
            await asyncio.sleep(_ACTION_AFTER)
        waited = _ACTION_AFTER
        while True:
            await self._chat_action()
            pause = _ACTION_LASTS
            if private and self._sending is None and waited < self._after:
                pause = min(pause, self._after - waited)
            await asyncio.sleep(pause)
            waited += pause
            due = private and self._sending is None and waited >= self._after
            if due and await self._placed():
                return

    async def _placed(self) -> bool:
        """Send the placeholder now; whether it went (no room for it: it did not)."""
        if self._workload.busy and self._sending is None:
            return False  # typing goes on meanwhile; asked again when the next one is due
        self.long_recording()
        if self._sending is not None:
            with contextlib.suppress(TelegramError):
                await asyncio.shield(self._sending)
        return self.current is not None

    async def _chat_action(self) -> None:
        # Not a message: Telegram does not count it against the flood limits, nor does ours.
        try:
            await self._bot.send_chat_action(self._job.chat_id, ChatAction.TYPING)
        except TelegramError as exc:
            log.debug("job=%d: no chat action: %s", self._job.id, exc)

    def when_placed(self, callback: Callable[[], None]) -> None:
        """Call `callback` once this job's own placeholder is sent (now, if it is)."""
        if self.current is not None and self._sending is not None:
            callback()
        else:
            self._on_placed.append(callback)

    async def _send(self) -> int | None:
        self.current = await self._replies.placeholder(self._job)
        for callback in self._on_placed:
            callback()
        return self.current
