"""The scenarios of issue 6 and the targets they must reach on the 2-core machine."""

from __future__ import annotations

import dataclasses
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

Drive = Literal["one_by_one", "as_fast_as_taken", "at_rate"]
Backend = Literal["sqlite", "redis"]


@dataclass(frozen=True)
class Target:
    """A limit on one figure: `key` (and `stat` of its spread), judged over the runs by `over`.

    over="median": the median of the runs' figures (latency, throughput);
    over="worst": the worst run (memory, lost updates).
    """

    key: str
    stat: str | None
    op: Literal["<=", ">="]
    limit: float
    over: Literal["median", "worst"] = "median"

    def label(self) -> str:
        stat = f"{self.stat} " if self.stat else ""
        worst = " (worst run)" if self.over == "worst" else ""
        return f"{stat}{self.op} {self.limit:g}{worst}"

    def holds(self, value: float) -> bool:
        compare: Callable[[float, float], bool] = operator.le if self.op == "<=" else operator.ge
        return not math.isnan(value) and compare(value, self.limit)

    def pick(self, runs: list[dict[str, Any]]) -> float:
        values = [_value(run, self.key, self.stat) for run in runs]
        if not values:
            return math.nan
        if self.over == "worst":
            return max(values) if self.op == "<=" else min(values)
        ordered = sorted(values)
        middle = len(ordered) // 2
        return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _value(run: dict[str, Any], key: str, stat: str | None) -> float:
    found = run.get(key, math.nan)
    if stat is not None:
        found = found.get(stat, math.nan) if isinstance(found, dict) else math.nan
    return float(found)


# Every scenario: every note gets its transcript, every delivery is answered 200.
_NOTHING_LOST = (
    Target("lost", None, "<=", 0, "worst"),
    Target("acks_failed", None, "<=", 0, "worst"),
)


@dataclass(frozen=True)
class Scenario:
    name: str
    what: str
    notes: int
    drive: Drive
    targets: tuple[Target, ...]
    big: bool = False  # the ~20 MB mp3 instead of the 30 s voice note
    api_delay: float = 0.0  # the fake transcription API's added latency (s)
    max_jobs: int = 8  # MAX_CONCURRENT_JOBS (8 is the default of .env.example)
    rate: float = 0.0  # updates per second, for drive="at_rate"
    limit: float = 240.0  # seconds for the load and the last transcript: then the run fails
    replicas: int = 1  # bots sharing the store, the deliveries spread over them in turn
    store: Backend = "sqlite"
    baseline: str | None = None  # the scenario this one is compared with, in the same run

    def quick(self) -> Scenario:
        """A tenth of the notes (at least a few): to check the benchmark works, not to judge."""
        return dataclasses.replace(self, notes=max(3, self.notes // 10))


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "overhead",
            "300 voice notes of 30 s, one after another, zero upstream latency",
            notes=300,
            drive="one_by_one",
            targets=(
                Target("overhead_ms", "p50", "<=", 5),
                Target("overhead_ms", "p99", "<=", 20),
                *_NOTHING_LOST,
            ),
        ),
        Scenario(
            "throughput",
            "3,000 voice notes delivered as fast as the webhook takes them, zero upstream latency",
            notes=3000,
            drive="as_fast_as_taken",
            targets=(Target("notes_per_s", None, ">=", 200), *_NOTHING_LOST),
        ),
        Scenario(
            "concurrency",
            "1,000 voice notes at once, 2 s upstream latency, MAX_CONCURRENT_JOBS=1000",
            notes=1000,
            drive="as_fast_as_taken",
            api_delay=2.0,
            max_jobs=1000,
            targets=(
                Target("window_s", None, "<=", 4),
                Target("peak_rss_mib", None, "<=", 250, "worst"),
                *_NOTHING_LOST,
            ),
        ),
        # Issue 8: the same two loads on two replicas sharing Redis, against one on SQLite;
        # and one replica on Redis, to tell the cost of Redis from that of a second process.
        Scenario(
            "throughput-redis-x1",
            "throughput's 3,000 notes on one replica with Redis as its store",
            notes=3000,
            drive="as_fast_as_taken",
            store="redis",
            baseline="throughput",
            targets=_NOTHING_LOST,
        ),
        Scenario(
            "throughput-redis-x2",
            "throughput's 3,000 notes spread over two replicas sharing Redis",
            notes=3000,
            drive="as_fast_as_taken",
            replicas=2,
            store="redis",
            baseline="throughput",
            targets=_NOTHING_LOST,
        ),
        Scenario(
            "concurrency-redis-x2",
            "concurrency's 1,000 notes at once spread over two replicas sharing Redis, "
            "MAX_CONCURRENT_JOBS=500 each",
            notes=1000,
            drive="as_fast_as_taken",
            api_delay=2.0,
            max_jobs=500,
            replicas=2,
            store="redis",
            baseline="concurrency",
            targets=(Target("peak_rss_mib", None, "<=", 250, "worst"), *_NOTHING_LOST),
        ),
        Scenario(
            "webhook-ack",
            "500 updates/s for 10 s (open loop), zero upstream latency",
            notes=5000,
            drive="at_rate",
            rate=500.0,
            targets=(Target("ack_ms", "p99", "<=", 10), *_NOTHING_LOST),
        ),
        Scenario(
            "big-files",
            "ten ~20 MB audio files (mp3, 21 min) at once, MAX_CONCURRENT_JOBS=10",
            notes=10,
            drive="as_fast_as_taken",
            big=True,
            max_jobs=10,
            limit=300.0,
            targets=(Target("peak_rss_mib", None, "<=", 350, "worst"), *_NOTHING_LOST),
        ),
    )
}

# Names that stand for several scenarios on the command line.
GROUPS: dict[str, tuple[str, ...]] = {
    "replicas": (
        "throughput",
        "throughput-redis-x1",
        "throughput-redis-x2",
        "concurrency",
        "concurrency-redis-x2",
    ),
}
