"""What a long job is doing, in its placeholder: downloading, converting, transcribing, time left.

"Downloading 38 %", "Converting…", "Transcribing part 3 of 8, about 2 min left". The time left
comes from measurement only: how long this engine took per second of audio on the parts it has
finished (this job's and earlier ones'), and the durations of the parts still to do; before
anything is measured no time is shown.

Edits follow the newest state at most once per interval (PROGRESS_EDIT_SECONDS, 5 s; in groups
PROGRESS_GROUP_EDIT_SECONDS, 15 s), counted from the placeholder. They are made beside the
work, never in its way: states that come faster are skipped, never queued, and the caller never
waits for Telegram (the edit itself is a WHEN_FREE call of the flood limiter: see
delivery.Replies.live).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence

from bot import texts

# Parts shorter than this say more about the request's overhead than about the engine's speed.
MEASURE_MIN_SECONDS = 30.0
_WEIGHT = 0.5  # of the newest measurement in the running average
# A download still going after this long is a long wait: worth a placeholder in any chat.
LONG_DOWNLOAD_SECONDS = 3.0
_SETTLE = 0.25  # states that come together (the last parts of a round) make one edit


class EngineSpeeds:
    """Seconds each model took per second of audio, one request at a time, as measured here."""

    def __init__(self) -> None:
        self._rates: dict[str, float] = {}

    def measured(self, model: str, audio_seconds: float, wall_seconds: float) -> None:
        if audio_seconds < MEASURE_MIN_SECONDS or wall_seconds <= 0:
            return
        rate = wall_seconds / audio_seconds
        earlier = self._rates.get(model)
        self._rates[model] = rate if earlier is None else earlier + _WEIGHT * (rate - earlier)

    def rate(self, model: str) -> float | None:
        return self._rates.get(model)


def time_left(
    now: float,
    running: Iterable[tuple[float, float]],
    waiting: Sequence[float],
    rate: float,
    slots: int,
) -> float:
    """Seconds until the last part is done: each running part (started, audio seconds) ends
    `rate` seconds per second of audio after its start, not before now; each waiting part
    starts, in order, when one of the `slots` frees."""
    ends = [max(now, started + seconds * rate) for started, seconds in running]
    free = ends + [now] * max(0, slots - len(ends))
    heapq.heapify(free)
    last = max(ends, default=now)
    for seconds in waiting:
        end = heapq.heappop(free) + seconds * rate
        heapq.heappush(free, end)
        last = max(last, end)
    return last - now


class JobProgress:
    """One job's stages, shown in its placeholder once there is one (begin())."""

    def __init__(
        self,
        show: Callable[[str], Awaitable[None]],
        interval: float,
        *,
        speeds: EngineSpeeds,
        model: str,
        slots: int,
        long_wait: Callable[[], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._show = show
        self._interval = interval
        self._speeds = speeds
        self._model = model
        self._slots = slots
        self._long_wait = long_wait
        self._clock = clock
        self._render: Callable[[], str | None] = lambda: None
        self._estimating = False  # the text changes with time alone (the time left)
        self._download_started: float | None = None
        self._durations: list[float] = []
        self._started: dict[int, float] = {}
        self._done: set[int] = set()
        self._shown = texts.working()  # the placeholder's own text
        self._shown_at = clock()
        self._begun = False
        self._changed = asyncio.Event()
        self._finishing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def begin(self) -> None:
        """The placeholder was just sent: notes may follow, one interval after it."""
        if self._begun or self._finishing.is_set():
            return
        self._begun, self._shown_at = True, self._clock()
        self._task = asyncio.create_task(self._run(), name="progress")

    def downloading(self, received: int, total: int | None) -> None:
        now = self._clock()
        if self._download_started is None:
            self._download_started = now
        elif now - self._download_started >= LONG_DOWNLOAD_SECONDS:
            self._long_wait()  # idempotent
        self._set(lambda: texts.downloading(received, total))

    def converting(self, long: bool) -> None:
        if long:
            self._long_wait()  # cut into parts: seconds, or a minute for hours of audio
        self._set(texts.converting)

    def transcribing(self, durations: Sequence[float]) -> None:
        """The parts' audio seconds, in the order they are sent."""
        self._durations = list(durations)
        if len(self._durations) > 1:
            self._long_wait()
        self._set(self._transcribing, estimating=True)

    def part_started(self, index: int) -> None:
        self._started[index] = self._clock()
        self._changed.set()

    def part_done(self, index: int) -> None:
        started = self._started.pop(index, None)
        if started is not None:
            seconds = self._durations[index]
            self._speeds.measured(self._model, seconds, self._clock() - started)
        self._done.add(index)
        self._changed.set()

    def silence(self) -> None:
        """No more notes: the text itself is shown now (live text)."""
        self._finishing.set()
        self._changed.set()

    def replaced_by(
        self, show: Callable[[str], Awaitable[None]]
    ) -> Callable[[str], Awaitable[None]]:
        """`show` (the transcript streamed in) taking the placeholder over at its first piece."""

        async def shown(text: str) -> None:
            await self.finish()  # once: after that it returns at once
            await show(text)

        return shown

    async def finish(self) -> None:
        """No more notes; waits for one under way, so that none lands after the final text."""
        self.silence()
        if self._task is not None:
            await self._task

    def _set(self, render: Callable[[], str | None], *, estimating: bool = False) -> None:
        self._render, self._estimating = render, estimating
        self._changed.set()

    def _transcribing(self) -> str | None:
        total = len(self._durations)
        part = min(len(self._done) + 1, total)
        left = self._time_left()
        if total == 1 and left is None:
            return texts.working()
        return texts.transcribing(part, total, left)

    def _time_left(self) -> float | None:
        rate = self._speeds.rate(self._model)
        if rate is None or not self._durations:
            return None
        now = self._clock()
        running = [(at, self._durations[i]) for i, at in self._started.items()]
        waiting = [
            seconds
            for i, seconds in enumerate(self._durations)
            if i not in self._done and i not in self._started
        ]
        left = time_left(now, running, waiting, rate, self._slots)
        # A part running late counts as about to end: the note stays, no edit says "0 s".
        return max(left, 1.0)

    async def _run(self) -> None:
        while True:
            idle = self._interval if self._estimating else None  # re-count the time left
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), idle)
            wait = max(_SETTLE, self._shown_at + self._interval - self._clock())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._finishing.wait(), wait)
            if self._finishing.is_set():
                return
            self._changed.clear()
            html = self._render()
            if html is not None and html != self._shown:
                self._shown = html
                await self._show(html)
                # Counted from Telegram's answer: the next edit reaches it an interval later
                # at the soonest, however long this one took to get there.
                self._shown_at = self._clock()
