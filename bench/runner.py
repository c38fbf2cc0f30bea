"""One run of one scenario: fresh fakes and a fresh bot, the load, then what was measured."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import tempfile
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

from bench import load
from bench.figures import figures
from bench.machine import cpu_seconds, memory_kib
from bench.media import BIG_SECONDS, NOTE_SECONDS, Media
from bench.processes import (
    BenchError,
    Bot,
    Fakes,
    RedisProcess,
    running_bot,
    running_fakes,
    running_redis,
)
from bench.profile import Profiler
from bench.scenarios import Scenario

_GAP = 0.005  # between notes of the one-by-one scenario, so that they do not overlap
_NOTE_WAIT = 10.0  # the longest a one-by-one note may take before it counts as lost
_FIRST_CHAT = 10_000  # private chats 10000, 10001, ...: one per note
_FIRST_MESSAGE = 500
_FIRST_UPDATE = 1_000_000
# Far beyond any target: a bot past these is broken, and is killed before it hurts the machine.
_RSS_CEILING_MIB = 2048
_LOG_CEILING_MIB = 256

T = TypeVar("T")


@dataclass(frozen=True)
class Setup:
    """Where the processes run: CPUs for the bot, and for the fakes and load generator (None:
    not pinned); and the source tree `python -m bot` is run from."""

    bot: set[int] | None
    rest: set[int] | None
    source: Path

    def describe(self) -> str:
        if self.bot is None or self.rest is None:
            return "not pinned: the bot, the fakes and the load generator share every core"
        return (
            f"bot pinned to CPU {_cpus(self.bot)}; fakes (one process) and load generator "
            f"(this process) pinned to CPU {_cpus(self.rest)}"
        )


def _cpus(cpus: set[int]) -> str:
    return ",".join(str(c) for c in sorted(cpus))


async def run_once(
    scenario: Scenario, media: Media, setup: Setup, profile_to: Path | None = None
) -> dict[str, Any]:
    """Run the scenario once; returns its figures (see bench.figures)."""
    with tempfile.TemporaryDirectory(prefix="transcribot-bench-") as tmp:
        async with running_fakes(setup.rest) as fakes, contextlib.AsyncExitStack() as stack:
            await fakes.set_delay(api=scenario.api_delay)
            prepared = await fakes.notes(**_note_spec(scenario, media))
            updates: list[dict[str, Any]] = prepared["updates"]
            bodies = [json.dumps(u, separators=(",", ":")).encode() for u in updates]
            chats = [int(u["message"]["chat"]["id"]) for u in updates]
            download = await _download_seconds(
                fakes.telegram_url + prepared["file_url_path"], 5 if scenario.big else 20
            )
            redis = None
            if scenario.store == "redis":
                # On the bots' CPUs: what the replicas need, measured with them.
                redis = await stack.enter_async_context(running_redis(Path(tmp), setup.bot))
            bots = [
                await stack.enter_async_context(
                    running_bot(
                        fakes,
                        Path(tmp),
                        max_jobs=scenario.max_jobs,
                        cpus=setup.bot,
                        source=setup.source,
                        database_url=redis.url if redis else None,
                        name=f"bot-{index + 1}",
                    )
                )
                for index in range(scenario.replicas)
            ]
            measured = await _load(scenario, fakes, bots, redis, bodies, chats, profile_to)
        measured["log_problems"] = sum(_problems(bot.log_path) for bot in bots)
        measured["bot_ready_s"] = max(bot.ready_after for bot in bots)
    return figures(scenario, measured, chats, download)


def _note_spec(scenario: Scenario, media: Media) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "count": scenario.notes,
        "first_index": 0,
        "first_chat_id": _FIRST_CHAT,
        "first_message_id": _FIRST_MESSAGE,
        "first_update_id": _FIRST_UPDATE,
    }
    if scenario.big:
        return spec | {
            "path": str(media.big),
            "kind": "audio",
            "duration": BIG_SECONDS,
            "mime_type": "audio/mpeg",
            "file_name": "podcast.mp3",
        }
    return spec | {"path": str(media.note), "kind": "voice", "duration": NOTE_SECONDS}


async def _download_seconds(url: str, samples: int) -> float:
    """The floor of one download: the median of a few GETs with a warm keep-alive client."""
    timings = []
    async with httpx.AsyncClient(timeout=60) as client:
        for index in range(samples + 2):
            started = time.monotonic()
            response = await client.get(url)
            response.raise_for_status()
            if index >= 2:  # the first two open the connection and warm up
                timings.append(time.monotonic() - started)
    return statistics.median(timings)


async def _load(
    scenario: Scenario,
    fakes: Fakes,
    bots: list[Bot],
    redis: RedisProcess | None,
    bodies: list[bytes],
    chats: list[int],
    profile_to: Path | None,
) -> dict[str, Any]:
    # CPU: every replica's under "bot", Redis's apart; memory: the biggest replica.
    pids = {"fakes": [fakes.pid], "bench": [os.getpid()], "bot": [bot.pid for bot in bots]}
    if redis is not None:
        pids["redis"] = [redis.pid]
    idle_rss = max(memory_kib(bot.pid, "VmRSS") for bot in bots)
    profiler = Profiler(bots[0].pid, profile_to) if profile_to else None
    if profiler:
        await profiler.start()
    try:
        cpu_before = _cpu(pids)
        started = time.monotonic()
        work = _drive(scenario, fakes, bots, bodies, chats, started + scenario.limit)
        acks, lateness = await _supervised(work, bots, started + scenario.limit + 5)
        wall = time.monotonic() - started
        cpu = {role: seconds - cpu_before[role] for role, seconds in _cpu(pids).items()}
        peak_rss = max(memory_kib(bot.pid, "VmHWM") for bot in bots)
    finally:
        if profiler:
            await profiler.stop()
    return {
        "acks": acks,
        "lateness": lateness,
        "report": await fakes.report(),
        "wall": wall,
        "cpu": cpu,
        "idle_rss_kib": idle_rss,
        "peak_rss_kib": peak_rss,
    }


def _cpu(pids: dict[str, list[int]]) -> dict[str, float]:
    return {role: sum(cpu_seconds(pid) for pid in group) for role, group in pids.items()}


async def _drive(
    scenario: Scenario,
    fakes: Fakes,
    bots: list[Bot],
    bodies: list[bytes],
    chats: list[int],
    deadline: float,
) -> tuple[list[load.Ack], list[float]]:
    """Post the updates as the scenario says, then wait for every outcome until the deadline."""
    lateness: list[float] = []
    async with load.Webhook([bot.webhook_url for bot in bots]) as webhook:
        if scenario.drive == "one_by_one":

            async def answered(index: int) -> bool:
                return await fakes.wait(_NOTE_WAIT, [chats[index]])

            acks = await load.one_by_one(webhook, bodies, answered, _GAP)
        elif scenario.drive == "as_fast_as_taken":
            acks = await load.as_fast_as_taken(webhook, bodies, load.TELEGRAM_CONNECTIONS)
        else:
            paced = await load.at_rate(webhook, bodies, scenario.rate)
            acks, lateness = paced.acks, paced.lateness
    await fakes.wait(max(1.0, deadline - time.monotonic()))
    return acks, lateness


async def _supervised(work: Coroutine[Any, Any, T], bots: list[Bot], deadline: float) -> T:
    """`work`'s result, unless a bot dies or runs away with memory or logs, or time is up."""
    task = asyncio.ensure_future(work)
    try:
        while not task.done():
            await asyncio.wait({task}, timeout=0.1)
            problem = next((p for p in map(_runaway, bots) if p is not None), None)
            if problem is None and not task.done() and time.monotonic() > deadline:
                problem = "the run did not finish in time"
            if problem is not None:
                raise BenchError(f"{problem}\n{bots[0].log_tail(5)}")
        return task.result()
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _runaway(bot: Bot) -> str | None:
    """Why the run must stop now (the bot is killed if it runs away), or None."""
    if bot.proc.returncode is not None:
        return f"the bot exited with {bot.proc.returncode}"
    try:
        rss_mib = memory_kib(bot.pid, "VmRSS") / 1024
        log_mib = bot.log_path.stat().st_size / 1024 / 1024
    except (OSError, KeyError):
        return "the bot is gone"
    if rss_mib > _RSS_CEILING_MIB or log_mib > _LOG_CEILING_MIB:
        bot.proc.kill()
        return f"the bot was killed: RSS {rss_mib:.0f} MiB, log {log_mib:.0f} MiB (runaway)"
    return None


def _problems(log_path: Path) -> int:
    """Lines the bot logged at WARNING or above (the benchmark expects none)."""
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return 0
    return sum(1 for line in text.splitlines() if " WARNING " in line or " ERROR " in line)
