"""The job queue's consumer: a bounded pool of workers taking jobs from the store under a lease."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

from bot.chat_turns import ChatTurns
from bot.failures import failure
from bot.flood import long_wait_hook
from bot.leases import still_ours
from bot.store import TRANSIENT_STORE_ERRORS, Job, LeaseLost, Store

log = logging.getLogger(__name__)

_IDLE_POLL_SECONDS = 1.0  # also how soon a retry's not_before or an expired lease is noticed
_OUTAGE_MAX_WAIT_SECONDS = 5.0  # while the store is down: how long between tries, at most
_PRUNE_EVERY_SECONDS = 3600.0
# Jobs claimed at most per job slot, those waiting for Telegram included: such a job holds a
# lease and a little memory (its text), not a slot.
_CLAIMED_PER_SLOT = 4
# Jobs waiting for their chat's turn have not started: they hold only a lease, and do not count
# above. Counting them let one busy group's backlog fill this replica's claims, and another
# chat's note stayed in the queue behind it. This only bounds how much of a backlog one replica
# takes (others take the rest).
_TAKEN_PER_SLOT = 64
# A lease renewed (or claimed) less than this share of a lease ago is surely still held: no
# need to ask the store before paying the API. Renewals come every third of a lease.
_SURELY_HELD = 0.5


class Dispatcher:
    """Claims jobs while there is room, runs each as a task, renews their leases."""

    def __init__(
        self,
        store: Store,
        *,
        max_concurrent: int,
        lease_seconds: float,
        retention_seconds: float,
        max_attempts: int,
    ) -> None:
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._store = store
        self._max = max_concurrent
        self._lease = lease_seconds
        self._retention = retention_seconds
        self._max_attempts = max_attempts
        self._wake = asyncio.Event()
        self._running: dict[int, asyncio.Task[None]] = {}
        # Per running job: until when (monotonic) its lease is surely held, from the last
        # claim or renewal that the store confirmed.
        self._held_until: dict[int, float] = {}
        self._background: list[asyncio.Task[None]] = []
        self._run: Callable[[Job], Awaitable[None]] | None = None
        self._outage = _Outage()
        self._waiting = 0  # running jobs that wait (their chat's turn, Telegram's limits)
        # At most a quarter of the slots (at least 2) for one chat.
        self._turns = ChatTurns(max(2, max_concurrent // 4), self._waiting_elsewhere)

    @property
    def running(self) -> int:
        return len(self._running)

    @property
    def alive(self) -> bool:
        """Started, and none of its loops has ended (they end only when stopped)."""
        return bool(self._background) and not any(t.done() for t in self._background)

    def wake(self) -> None:
        """A job was queued: look now rather than at the next poll."""
        self._wake.set()

    async def start(self, run: Callable[[Job], Awaitable[None]]) -> None:
        self._run = run
        recovered = await self._store.recover_jobs()
        if recovered:
            log.info("took back %d jobs left running by a previous process", recovered)
        self._background = [
            asyncio.create_task(self._claim_loop(), name="jobs:claim"),
            asyncio.create_task(self._lease_loop(), name="jobs:lease"),
            asyncio.create_task(self._prune_loop(), name="jobs:prune"),
        ]

    async def stop(self, grace_seconds: float) -> None:
        """Take no new jobs; let running ones finish within the grace; requeue the rest."""
        for task in self._background:
            task.cancel()
        for task in self._background:
            await _until_cancelled(task)
        self._background = []
        pending = list(self._running.values())
        if pending:
            log.info("waiting up to %.0f s for %d running jobs", grace_seconds, len(pending))
            _, still = await asyncio.wait(pending, timeout=grace_seconds)
            for task in still:
                task.cancel()
            if still:
                await asyncio.wait(still)
        released = await self._store.release_jobs(self.owner)
        if released:
            log.info("left %d unfinished jobs queued for the next start", released)

    async def _claim_loop(self) -> None:
        while True:
            # Cleared before looking, so a wake-up that comes during the claim is not lost; and
            # cleared even when there is no room, else a set event makes this loop spin.
            self._wake.clear()
            free = self._free_slots()
            claimed: list[Job] = []
            wait = _IDLE_POLL_SECONDS
            if free > 0:
                sent = time.monotonic()
                try:
                    claimed = await self._store.claim_jobs(
                        self.owner, free, self._lease, self._max_attempts, _gave_up()
                    )
                except TRANSIENT_STORE_ERRORS as exc:
                    wait = self._outage.failed(exc)
                except Exception:
                    log.exception("could not take jobs from the store")
                else:
                    self._outage.over()
                for job in claimed:
                    # Its lease ran out while it still runs here (renewals failed): the claim
                    # renewed it; one run is enough.
                    if job.id not in self._running:
                        self._spawn(job)
                    self._held(job.id, sent)
            if free > 0 and len(claimed) == free:
                continue  # there may be more waiting
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
            # arrives while it handles its own timeout, and stop() would wait for ever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()

    def _spawn(self, job: Job) -> None:
        task = asyncio.create_task(self._guarded(job), name=f"job:{job.id}")
        self._running[job.id] = task

        def done(_: asyncio.Task[None]) -> None:
            self._running.pop(job.id, None)
            self._held_until.pop(job.id, None)
            self._wake.set()  # a slot is free

        task.add_done_callback(done)

    def _free_slots(self) -> int:
        """Slots for more jobs: those not held by running jobs that wait, within the caps on
        jobs claimed at once."""
        working = len(self._running) - self._waiting
        started = len(self._running) - self._turns.waiters
        return min(
            self._max - working,
            self._max * _CLAIMED_PER_SLOT - started,
            self._max * _TAKEN_PER_SLOT - len(self._running),
        )

    @contextlib.asynccontextmanager
    async def _waiting_elsewhere(self) -> AsyncIterator[None]:
        """A running job waits (for Telegram's limits, a 429): its slot is free meanwhile."""
        self._waiting += 1
        self._wake.set()
        try:
            yield
        finally:
            self._waiting -= 1

    async def _guarded(self, job: Job) -> None:
        assert self._run is not None
        long_wait_hook.set(self._waiting_elsewhere)  # this task's own context
        still_ours.set(functools.partial(self._still_ours, job.id))
        try:
            async with self._turns.turn(job.chat_id):
                await self._run(job)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # The runner decides every expected outcome itself; this is the last net.
            crashed = failure("crashed", f"{type(exc).__name__}: {exc}")
            log.exception("job=%d crashed (%s); it will be retried", job.id, crashed.stored)
            with contextlib.suppress(Exception):
                await self._store.retry_job(job, crashed.stored, delay=5.0)

    def _held(self, job_id: int, sent: float) -> None:
        """The store confirmed, in a call sent at `sent`, that this worker holds the job."""
        if job_id in self._running:
            self._held_until[job_id] = sent + self._lease * _SURELY_HELD

    async def _still_ours(self, job_id: int) -> None:
        """Raise LeaseLost when the job was taken over (this worker stalled past its lease);
        asks the store only when no renewal confirmed it lately."""
        if time.monotonic() < self._held_until.get(job_id, 0.0):
            return
        sent = time.monotonic()
        if job_id not in await self._store.renew_leases(self.owner, [job_id], self._lease):
            raise LeaseLost(f"job={job_id}: taken over while this worker stalled")
        self._held(job_id, sent)

    async def _lease_loop(self) -> None:
        while True:
            await asyncio.sleep(self._lease / 3)
            sent = time.monotonic()
            running = list(self._running)
            try:
                held = await self._store.renew_leases(self.owner, running, self._lease)
            except TRANSIENT_STORE_ERRORS as exc:
                self._outage.failed(exc)
            except Exception:
                log.exception("could not renew job leases")
            else:
                for job_id in running:
                    if job_id in held:
                        self._held(job_id, sent)
                    else:  # taken over: the job's next paid step asks, and stops
                        self._held_until.pop(job_id, None)

    async def _prune_loop(self) -> None:
        while True:
            try:
                pruned = await self._store.prune(self._retention)
                if pruned:
                    log.info("pruned %d finished jobs", pruned)
            except TRANSIENT_STORE_ERRORS as exc:
                self._outage.failed(exc)
            except Exception:
                log.exception("could not prune old jobs")
            await asyncio.sleep(_PRUNE_EVERY_SECONDS)


def _gave_up() -> str:
    """The reason a job claimed once too often fails with: every earlier run of it ended without
    an outcome (the process was killed, say); /stats shows it as a crash."""
    return failure("crashed", "gave up: claimed too often").stored


async def _until_cancelled(task: asyncio.Task[None]) -> None:
    """Cancel again until the task ends: a cancellation that lands as a timeout inside it
    expires (redis-py's socket timeout, asyncio.timeout) comes out as TimeoutError, which the
    loops take for a store outage and go on. Seen: shutdown waiting for ever on jobs:claim."""
    while not task.done():
        await asyncio.wait({task}, timeout=1.0)
        if not task.done():
            task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


class _Outage:
    """The store is unreachable: said once when it starts and once when it ends; meanwhile
    the claim loop tries again after a growing wait."""

    def __init__(self) -> None:
        self._since: float | None = None
        self._wait = _IDLE_POLL_SECONDS

    def failed(self, exc: BaseException) -> float:
        """Seconds to wait before the next try."""
        if self._since is None:
            self._since = time.monotonic()
            self._wait = _IDLE_POLL_SECONDS
            log.error("the store is unavailable (%s); jobs wait until it is back", exc)
        else:
            self._wait = min(self._wait * 2, _OUTAGE_MAX_WAIT_SECONDS)
        return self._wait

    def over(self) -> None:
        if self._since is not None:
            log.info(
                "the store is back after %.0f s; taking jobs again", time.monotonic() - self._since
            )
            self._since = None
