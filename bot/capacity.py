"""How many jobs one process may have in flight: set by the memory it may use, not a guess.

Jobs mostly wait on the network (Telegram, the transcription API). What one holds in memory is
bounded: a download up to MEMORY_AUDIO_BYTES stays in memory (larger ones go to disk) and is
sent to the API from there, with the bot's own buffers beside it.
"""

from __future__ import annotations

import os
from pathlib import Path

from bot.uploads import MEMORY_AUDIO_BYTES

_JOB_BYTES = 2 * MEMORY_AUDIO_BYTES  # the download and the request body built from it, at worst
_SHARE = 0.5  # of the memory this process may use: the rest for the interpreter, ffmpeg, caches
_FLOOR, _CEILING = 8, 512  # beyond 512, one event loop's CPU is what limits (see README)


def default_jobs_in_flight() -> int:
    """Jobs that fit in half of the memory this process may use (its cgroup's limit, else the
    machine's), between 8 and 512."""
    memory = _memory_limit()
    if memory is None:
        return _FLOOR
    return max(_FLOOR, min(_CEILING, int(memory * _SHARE) // _JOB_BYTES))


def _memory_limit() -> int | None:
    limits = [_cgroup_limit(), _physical_memory()]
    known = [limit for limit in limits if limit is not None and limit > 0]
    return min(known) if known else None


def _cgroup_limit() -> int | None:
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 1 << 60:  # "max", or cgroup v1's "no limit" value
            return int(text)
    return None


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return None
