"""python -m bench.flood: issue 14's scenarios against a fake Telegram that enforces its limits.

The fake answers 429 past 30 sends or edits in any 1 s over all chats, 20 in any 60 s in one
group and about one a second per chat (bursts of 20); the bot runs with its default settings
(Telegram's limits on) unless a scenario says otherwise.

    python -m bench.flood                      every scenario, 3 runs each
    python -m bench.flood --scenario burst-84 --runs 1
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import load
from bench.media import NOTE_SECONDS, ensure_media
from bench.processes import Fakes, running_bot, running_fakes, running_redis

RESULTS = Path(__file__).resolve().parent / "results"
LOGS = RESULTS / "flood-logs"
OVERALL_PER_S = 30  # Telegram's limits, as the fake enforces them
GROUP_PER_MIN = 20
_PRIVATE = 20_000
_GROUP = -1_000_500_000

Note = dict[str, Any]  # chat_id, chat_type, user_id


def _private(count: int, first: int = _PRIVATE, per_user: int = 1) -> list[Note]:
    return [
        {"chat_id": first + i // per_user, "chat_type": "private", "user_id": first + i // per_user}
        for i in range(count)
    ]


def _group(chat: int, count: int) -> list[Note]:
    return [
        {"chat_id": chat, "chat_type": "supergroup", "user_id": 30_000 + abs(chat) % 997 * 50 + i}
        for i in range(count)
    ]


@dataclass(frozen=True)
class FloodScenario:
    name: str
    what: str
    notes: Callable[[], list[Note]]
    api_delay: float = 0.5
    spread_s: float = 0.0  # the deliveries spread evenly over this long (0: all at once)
    replicas: int = 1
    store: str = "sqlite"
    env: dict[str, str] = field(default_factory=dict)
    probe_after_s: float | None = None  # one private note this long after the others
    targets: tuple[tuple[str, str, float], ...] = ()


SCENARIOS = {
    s.name: s
    for s in (
        FloodScenario(
            "short-private",
            "60 short voice notes from 60 private chats, one every 0.1 s, 0.5 s upstream",
            lambda: _private(60),
            spread_s=6.0,
            targets=(("messages_per_note", "<=", 1.05), ("too_many_requests", "<=", 0)),
        ),
        FloodScenario(
            "group-12",
            "12 voice notes in one group within 2 s, 0.5 s upstream",
            lambda: _group(_GROUP, 12),
            spread_s=2.0,
            targets=(("last_after_last_delivery_s", "<=", 5.0), ("too_many_requests", "<=", 0)),
        ),
        FloodScenario(
            "burst-84",
            "84 notes at once: 60 private chats and 3 groups × 8, 0.5 s upstream, one process",
            lambda: _private(60) + [n for g in range(3) for n in _group(_GROUP - g, 8)],
            targets=(("too_many_requests", "<=", 0), ("ratio_to_allowed", "<=", 1.3)),
        ),
        FloodScenario(
            "burst-84-redis-x2",
            "burst-84 on two replicas sharing Redis (deliveries alternate)",
            lambda: _private(60) + [n for g in range(3) for n in _group(_GROUP - g, 8)],
            replicas=2,
            store="redis",
            targets=(("too_many_requests", "<=", 0), ("ratio_to_allowed", "<=", 1.3)),
        ),
        FloodScenario(
            "users-200",
            "200 notes from 50 users (4 each) at once, 0.5 s upstream, default settings",
            lambda: _private(200, per_user=4),
            targets=(("too_many_requests", "<=", 0), ("ratio_to_allowed", "<=", 1.3)),
        ),
        FloodScenario(
            "private-behind-group",
            "40 notes in one busy group (20 wait for its next minute), then 2 s later one "
            "private note; MAX_CONCURRENT_JOBS=8",
            lambda: _group(_GROUP, 40),
            env={"MAX_CONCURRENT_JOBS": "8"},
            probe_after_s=2.0,
            targets=(("probe_over_floor_s", "<=", 1.0), ("too_many_requests", "<=", 0)),
        ),
    )
}


def allowed_seconds(notes: list[Note], floor: float, spread: float = 0.0) -> float:
    """The least time from the first delivery to the last transcript that Telegram's limits
    allow, at one message a note: the floor of one note, then 30 a second overall and 20 a
    minute in each group."""
    overall = (math.ceil(len(notes) / OVERALL_PER_S) - 1) * 1.0
    groups: dict[int, int] = {}
    for note in notes:
        if note["chat_id"] < 0:
            groups[note["chat_id"]] = groups.get(note["chat_id"], 0) + 1
    group = max(((count - 1) // GROUP_PER_MIN * 60.0 for count in groups.values()), default=0.0)
    return floor + max(overall, group, spread)


async def run_once(scenario: FloodScenario, media_note: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="transcribot-flood-") as tmp:
        async with running_fakes(None) as fakes, contextlib.AsyncExitStack() as stack:
            await fakes.set_delay(api=scenario.api_delay)
            await fakes._call("/flood/limits", {}, 10)
            notes = scenario.notes()
            probe = _private(1, first=_PRIVATE + 9_000) if scenario.probe_after_s else []
            spec = {"path": str(media_note), "duration": NOTE_SECONDS, "first_index": 0}
            spec |= {"first_update_id": 5_000_000, "notes": notes + probe}
            updates = (await fakes._call("/flood/notes", spec, 300))["updates"]
            bodies = [json.dumps(u, separators=(",", ":")).encode() for u in updates]
            redis = None
            if scenario.store == "redis":
                redis = await stack.enter_async_context(running_redis(Path(tmp), None))
            env: dict[str, str | None] = {"TELEGRAM_RATE_PER_SECOND": None}
            env |= {"TELEGRAM_GROUP_RATE_PER_MINUTE": None, "TELEGRAM_CHAT_RATE_PER_SECOND": None}
            env |= {"MAX_CONCURRENT_JOBS": None, "LOG_LEVEL": "INFO", **scenario.env}
            bots = [
                await stack.enter_async_context(
                    running_bot(
                        fakes,
                        Path(tmp),
                        max_jobs=0,
                        cpus=None,
                        database_url=redis.url if redis else None,
                        name=f"bot-{i + 1}",
                        env=env,
                    )
                )
                for i in range(scenario.replicas)
            ]
            acks = await _drive(scenario, fakes, [b.webhook_url for b in bots], bodies, probe)
            report = await fakes._call("/flood/report", None, 60)
            for bot in bots:  # kept for a look at where the time went
                LOGS.mkdir(parents=True, exist_ok=True)
                shutil.copy(bot.log_path, LOGS / f"{scenario.name}-{bot.log_path.name}")
    return _figures(scenario, notes, updates, acks, report)


async def _drive(
    scenario: FloodScenario, fakes: Fakes, urls: list[str], bodies: list[bytes], probe: list[Note]
) -> list[load.Ack]:
    main = bodies[: len(bodies) - len(probe)]
    async with load.Webhook(urls) as webhook:
        start = time.monotonic()
        gap = scenario.spread_s / max(1, len(main) - 1)

        async def post(index: int, body: bytes, at: float) -> load.Ack:
            await asyncio.sleep(max(0.0, start + at - time.monotonic()))
            return await webhook.post(body)

        tasks = [post(i, body, i * gap) for i, body in enumerate(main)]
        if probe:
            tasks.append(post(len(main), bodies[-1], scenario.probe_after_s or 0.0))
        acks = list(await asyncio.gather(*tasks))
        await _wait_answered(fakes, len(probe) if probe else len(bodies), bool(probe))
    return acks


async def _wait_answered(fakes: Fakes, count: int, probe_only: bool, timeout: float = 180) -> None:
    """Until every note (or, with a probe, the probe) has its transcript."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        report = await fakes._call("/flood/report", None, 60)
        finals = report["final_at"]
        if probe_only and any(chat == _PRIVATE + 9_000 for chat, _, _ in finals):
            return
        if not probe_only and len(finals) >= count:
            return
        await asyncio.sleep(0.2)


def _figures(
    scenario: FloodScenario,
    notes: list[Note],
    updates: list[dict[str, Any]],
    acks: list[load.Ack],
    report: dict[str, Any],
) -> dict[str, Any]:
    final = {(c, m): at for c, m, at in report["final_at"]}
    keys = [(u["message"]["chat"]["id"], u["message"]["message_id"]) for u in updates]
    e2e = {key: final[key] - ack.sent for key, ack in zip(keys, acks, strict=True) if key in final}
    main_keys, main_acks = keys[: len(notes)], acks[: len(notes)]
    first = min(a.sent for a in main_acks)
    last_final = max((final[k] for k in main_keys if k in final), default=math.nan)
    first_final = min((final[k] for k in main_keys if k in final), default=math.nan)
    # A note's floor: the fake API's own time for it (its delay, and its process's load), as
    # bench's other scenarios count it, and a round trip to Telegram.
    floor = statistics.median(report["api_seconds"] or [scenario.api_delay]) + 0.05
    allowed = allowed_seconds(notes, floor, scenario.spread_s)
    calls = report["telegram_calls"]
    startup = {"getMe", "setMyCommands", "setWebhook", "deleteWebhook", "getFile", "download"}
    api_calls = sum(n for method, n in calls.items() if method not in startup)
    answered = sum(1 for k in main_keys if k in final)
    figures: dict[str, Any] = {
        "notes": len(notes),
        "answered": answered,
        "wrong_text": report["wrong"],
        "too_many_requests": report["too_many_requests"],
        "messages_per_note": report["counted_calls"] / max(1, len(final)),
        "bot_api_calls_per_note": api_calls / max(1, len(final)),
        "telegram_calls": calls,
        "window_s": last_final - first,
        "allowed_s": allowed,
        "ratio_to_allowed": (last_final - first) / allowed,
        "last_after_last_delivery_s": last_final - max(a.sent for a in main_acks),
        # Where the time went: until the first transcript (download, API, the machine's load),
        # then the sends, against what the windows allow for them.
        "first_final_s": first_final - first,
        "sends_s": last_final - first_final,
        "sends_allowed_s": allowed - floor,
        "e2e_p50_s": statistics.median(e2e.values()) if e2e else math.nan,
        "floor_s": floor,
    }
    if scenario.probe_after_s is not None:
        figures["probe_e2e_s"] = e2e.get(keys[-1], math.nan)
        figures["probe_over_floor_s"] = figures["probe_e2e_s"] - floor
        figures["window_s"] = figures["ratio_to_allowed"] = math.nan  # the backlog is not waited
        figures["first_final_s"] = figures["sends_s"] = figures["sends_allowed_s"] = math.nan
    return figures


def _median(runs: list[dict[str, Any]], key: str) -> float:
    values = [float(r[key]) for r in runs if not math.isnan(float(r[key]))]
    return statistics.median(values) if values else math.nan


def _holds(value: float, op: str, limit: float) -> bool:
    return not math.isnan(value) and (value <= limit if op == "<=" else value >= limit)


_SHOWN = (
    "answered",
    "too_many_requests",
    "messages_per_note",
    "bot_api_calls_per_note",
    "window_s",
    "allowed_s",
    "ratio_to_allowed",
    "last_after_last_delivery_s",
    "first_final_s",
    "sends_s",
    "sends_allowed_s",
    "e2e_p50_s",
    "floor_s",
    "probe_e2e_s",
    "probe_over_floor_s",
)


def summarize(scenario: FloodScenario, runs: list[dict[str, Any]]) -> dict[str, Any]:
    medians = {key: _median(runs, key) for key in _SHOWN if key in runs[0]}
    verdicts = {
        f"{key} {op} {limit:g}": _holds(medians.get(key, math.nan), op, limit)
        for key, op, limit in scenario.targets
    }
    return {"what": scenario.what, "medians": medians, "targets": verdicts, "runs": runs}


async def _main(names: list[str], runs: int, output: Path) -> int:
    note = ensure_media().note
    results: dict[str, Any] = {}
    failed = 0
    for name in names:
        scenario = SCENARIOS[name]
        done = []
        for number in range(1, runs + 1):
            print(f"{name}: run {number}/{runs} …", end=" ", flush=True)
            figures = await run_once(scenario, note)
            done.append(figures)
            shown = ", ".join(f"{k} {figures[k]:.2f}" for k in _SHOWN if k in figures)
            print(shown, flush=True)
        results[name] = summarize(scenario, done)
        for label, holds in results[name]["targets"].items():
            failed += not holds
            print(f"  {'ok  ' if holds else 'MISS'} {label}")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2, default=str))
    print(f"results: {output}")
    return 1 if failed else 0


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.flood",
        description=__doc__,
        formatter_class=argparse.RawTextHelpFormatter,
    )
    parser.add_argument("--scenario", action="append", choices=list(SCENARIOS))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--output", type=Path, default=RESULTS / "flood-latest.json")
    args = parser.parse_args()
    names = list(dict.fromkeys(args.scenario or SCENARIOS))
    raise SystemExit(asyncio.run(_main(names, args.runs, args.output)))


if __name__ == "__main__":
    main()
