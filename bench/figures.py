"""What one run's records say: latencies, ratios to the floor, throughput, CPU, memory."""

from __future__ import annotations

import math
from typing import Any

from bench.load import Ack
from bench.scenarios import Scenario
from bench.stats import spread


def figures(
    scenario: Scenario, measured: dict[str, Any], chats: list[int], download: float
) -> dict[str, Any]:
    """The run's figures: spreads (p50/p90/p99/max) in ms, counts, rates, CPU and memory.

    `chats[i]` is the chat of the note whose webhook delivery is `measured["acks"][i]`;
    `download` is the floor of one download (s).
    """
    acks: list[Ack] = measured["acks"]
    report: dict[str, Any] = measured["report"]
    final_at: dict[str, float] = report["final_at"]
    own: dict[str, float] = report["own"]
    e2e, overhead, ratio = [], [], []
    for ack, chat in zip(acks, chats, strict=True):
        at = final_at.get(str(chat))
        if at is None:
            continue
        seconds = at - ack.sent
        own_seconds = own.get(str(chat), math.nan)
        e2e.append(seconds * 1000)
        overhead.append((seconds - own_seconds) * 1000)
        ratio.append(seconds / (own_seconds + download))
    steps = _steps(acks, chats, report["phases"], final_at)
    first = min((ack.sent for ack in acks), default=math.nan)
    window = max(final_at.values(), default=math.nan) - first
    last_ack = max((ack.answered for ack in acks), default=math.nan)
    wall: float = measured["wall"]
    cpu: dict[str, float] = measured["cpu"]
    answered = len(final_at)
    return {
        "notes": scenario.notes,
        "answered": answered,
        "lost": scenario.notes - answered,
        "wrong_text": len(report["wrong"]),
        "acks_failed": sum(1 for ack in acks if ack.status != 200),
        "e2e_ms": spread(e2e),
        "overhead_ms": spread(overhead),
        "ratio": spread(ratio),
        "ack_ms": spread([ack.seconds * 1000 for ack in acks if ack.status == 200]),
        "steps_ms": steps,
        "generator_lag_ms": spread([s * 1000 for s in measured["lateness"]]),
        "window_s": window,
        "notes_per_s": answered / window if window > 0 else math.nan,
        "acks_per_s": len(acks) / (last_ack - first) if last_ack > first else math.nan,
        "floor_download_ms": download * 1000,
        "floor_api_ms": spread([s * 1000 for s in own.values()]),
        "wall_s": wall,
        "cpu_s": cpu,
        "cpu_core_share": {role: seconds / wall for role, seconds in cpu.items()},
        "bot_cpu_ms_per_note": cpu["bot"] / scenario.notes * 1000,
        # Redis's own CPU for the replica scenarios (SQLite's is inside the bot's).
        "store_cpu_ms_per_note": cpu.get("redis", 0.0) / scenario.notes * 1000,
        "idle_rss_mib": measured["idle_rss_kib"] / 1024,
        "peak_rss_mib": measured["peak_rss_kib"] / 1024,
        "bot_ready_s": measured["bot_ready_s"],
        "log_problems": measured["log_problems"],
        "api_calls": report["api_calls"],
        "api_errors": report["api_errors"],
        "telegram_calls": report["telegram_calls"],
        "telegram_errors": report["telegram_errors"],
    }


# A note's way, as the fakes saw it: (name, from, to); "sent"/"answered" are the webhook POST's.
_STEPS = (
    ("webhook POST → 200", "sent", "answered"),
    ("200 → placeholder sendMessage", "answered", "placeholder"),
    ("placeholder → getFile", "placeholder", "get_file"),
    ("getFile → download", "get_file", "download"),
    ("download → API request", "download", "api"),
    ("API request → transcript", "api", "final"),
)


def _steps(
    acks: list[Ack],
    chats: list[int],
    phases: dict[str, dict[str, float]],
    final_at: dict[str, float],
) -> dict[str, dict[str, float]]:
    """The spread of each step of the notes' way (ms): where the time between POST and
    transcript goes."""
    found: dict[str, list[float]] = {name: [] for name, _, _ in _STEPS}
    for ack, chat in zip(acks, chats, strict=True):
        marks = dict(phases.get(str(chat), {}))
        marks |= {"sent": ack.sent, "answered": ack.answered}
        if str(chat) in final_at:
            marks["final"] = final_at[str(chat)]
        for name, start, end in _STEPS:
            if start in marks and end in marks:
                found[name].append((marks[end] - marks[start]) * 1000)
    return {name: spread(values) for name, values in found.items()}
