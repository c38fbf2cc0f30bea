"""Before a step that costs money or posts a message, a job's worker checks the job is its own.

A worker that stalled past its lease (a frozen VM, a long pause) has had its job taken over by
another replica, which pays the API and answers for it. When the stalled one wakes, its writes
are fenced (LeaseLost), but what it does before writing is not: an API request it would retry
is paid again, and a placeholder it would post stays "Transcribing…" for ever. The dispatcher
sets `still_ours` in each job's task; the API client and the placeholder call it first.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar

# Raises LeaseLost when this task's job was taken over; None outside a job's task.
still_ours: ContextVar[Callable[[], Awaitable[None]] | None] = ContextVar(
    "still_ours", default=None
)


async def ensure_still_ours() -> None:
    """Raise LeaseLost when the job this task runs is no longer this worker's."""
    check = still_ours.get()
    if check is not None:
        await check()
