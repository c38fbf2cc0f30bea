"""python -m bench: the scenarios of issue 6 against the fakes; a table, and
bench/results/latest.json.

    python -m bench                                   every scenario, 3 runs each
    python -m bench --scenario overhead --runs 5
    python -m bench --quick                           a tenth of the load, 1 run: does it work?
    python -m bench --scenario throughput --profile   plus one run under py-spy (not counted)
    python -m bench --scenario replicas --quick       two replicas on Redis against one on
                                                      SQLite (throughput and concurrency)
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import resource
import sys
from pathlib import Path
from typing import Any

from bench import machine, profile, report
from bench.media import NOTE_BITRATE, NOTE_SECONDS, Media, ensure_media
from bench.processes import BenchError
from bench.runner import Setup, run_once
from bench.scenarios import GROUPS, SCENARIOS, Scenario

RESULTS = Path(__file__).resolve().parent / "results"
NOTES = (
    "The bot runs as `python -m bot` in webhook mode with its SQLite store in a temporary "
    "directory; a fresh bot and fresh fakes for every run.",
    "Telegram's rate limiter is off (TELEGRAM_RATE_PER_SECOND=0, "
    "TELEGRAM_GROUP_RATE_PER_MINUTE=0): its real-world 30 messages/s would cap a loopback "
    "benchmark. USER_JOBS_PER_MINUTE=0.",
    "The fakes (tests/fakes: FakeTelegram, FakeTranscriptionAPI) run in one process of their "
    "own, on uvloop; the load generator (this process) posts as Telegram does, at most 100 "
    "deliveries in flight.",
    f"Voice notes: {NOTE_SECONDS} s ogg/opus mono {NOTE_BITRATE}bit/s (ffmpeg, espeak-ng "
    "speech), a distinct file, message and private chat per note.",
    "Floor of a note: the fake API's own handler time for it plus the median time of one "
    "download of the same file from the fake Telegram (keep-alive httpx).",
    "Latency and throughput targets are judged on the median over runs; memory and losses "
    "on the worst run.",
    "*-redis-x2: two replicas share a redis-server (append-only file, fsync every second); "
    "the deliveries alternate between them (-x1: one replica on Redis); the replicas and "
    "Redis are pinned to the bot's CPUs, so they are compared with one SQLite bot on the same "
    "CPUs; RSS is the bigger replica's.",
)


def _setup(pin: bool, source: Path) -> Setup:
    cpus = sorted(os.sched_getaffinity(0))
    if not pin or len(cpus) < 2:
        return Setup(None, None, source)
    half = len(cpus) // 2
    return Setup(set(cpus[:half]), set(cpus[half:]), source)


def _raise_open_files() -> None:
    """1,000 concurrent jobs hold several sockets each, in the bot and in the fakes."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65_536 if hard == resource.RLIM_INFINITY else min(hard, 65_536)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


async def _scenario(
    scenario: Scenario, media: Media, runs: int, setup: Setup, profiled: bool
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "what": scenario.what,
        "settings": {
            "notes": scenario.notes,
            "drive": scenario.drive,
            "rate_per_s": scenario.rate or None,
            "api_delay_s": scenario.api_delay,
            "max_concurrent_jobs": scenario.max_jobs,
        },
        "runs": [],
    }
    for number in range(1, runs + 1):
        print(f"{scenario.name}: run {number}/{runs} …", end=" ", flush=True)
        try:
            figures = await run_once(scenario, media, setup)
        except BenchError as exc:
            print(f"failed: {exc}")
            entry["error"] = str(exc)
            return entry
        entry["runs"].append(figures)
        print(
            f"{figures['answered']}/{figures['notes']} transcripts, "
            f"e2e p50 {figures['e2e_ms']['p50']:.1f} ms, "
            f"{figures['notes_per_s']:.0f} notes/s, "
            f"bot {figures['cpu_core_share']['bot'] * 100:.0f}% of a core, "
            f"peak RSS {figures['peak_rss_mib']:.0f} MiB",
            flush=True,
        )
    entry |= report.summarize(scenario, entry["runs"])
    if profiled:
        entry["profile"] = await _profile(scenario, media, setup)
    return entry


async def _profile(scenario: Scenario, media: Media, setup: Setup) -> dict[str, object]:
    out = RESULTS / f"profile-{scenario.name}"
    print(f"{scenario.name}: one more run under py-spy (not counted) …", flush=True)
    figures = await run_once(scenario, media, setup, profile_to=out)
    found = profile.analyse(out.with_suffix(".stacks.txt"))
    print(profile.render(found))
    print(f"flamegraph: {out.with_suffix('.svg')}\n")
    return {
        "flamegraph": str(out.with_suffix(".svg")),
        "stacks": str(out.with_suffix(".stacks.txt")),
        "figures_while_profiled": {
            key: figures[key]
            for key in ("e2e_ms", "notes_per_s", "bot_cpu_ms_per_note", "cpu_core_share")
        },
        "hotspots": found.as_dict(),
    }


async def _run_all(
    chosen: list[Scenario], runs: int, setup: Setup, profiled: bool
) -> dict[str, dict[str, Any]]:
    media = ensure_media()
    return {s.name: await _scenario(s, media, runs, setup, profiled) for s in chosen}


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--scenario",
        action="append",
        choices=[*SCENARIOS, *GROUPS],
        help="repeatable; default: all. replicas = " + ", ".join(GROUPS["replicas"]),
    )
    parser.add_argument("--runs", type=int, help="runs per scenario (default 3; --quick: 1)")
    parser.add_argument("--quick", action="store_true", help="a tenth of the notes, 1 run")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    parser.add_argument("--profile", action="store_true", help="one more run under py-spy")
    parser.add_argument(
        "--bot-source",
        type=Path,
        default=machine.ROOT,
        help="run `python -m bot` from this tree (default: this repository's working tree)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.json")
    args = parser.parse_args()
    runs = args.runs or (1 if args.quick else 3)
    if not 1 <= runs <= 50:
        parser.error("--runs must be between 1 and 50")
    names = [one for name in (args.scenario or SCENARIOS) for one in GROUPS.get(name, (name,))]
    chosen = [SCENARIOS[name] for name in dict.fromkeys(names)]
    if args.quick:
        chosen = [s.quick() for s in chosen]

    if not (args.bot_source / "bot" / "__main__.py").is_file():
        parser.error(f"--bot-source: no bot/__main__.py in {args.bot_source}")
    _raise_open_files()
    described = machine.describe()  # before this process is pinned: all the cores it may use
    setup = _setup(not args.no_pin, args.bot_source.resolve())
    if setup.rest is not None:
        os.sched_setaffinity(0, setup.rest)
    print(
        f"{described['cpu_model']}, {described['cores']} cores, {described['memory_gib']} GiB, "
        f"Python {described['python']}, commit {str(described['git_commit'])[:10]}"
        f"{' + uncommitted changes' if described['git_dirty'] else ''}"
    )
    print(setup.describe())
    if setup.source != machine.ROOT:
        print(f"bot source: {setup.source} (not this repository's working tree)")
    for note in NOTES:
        print(f"- {note}")
    print()

    # The standard loop here (the fakes and the bot use uvloop): it starts and reaps the
    # processes, and the load generator takes a few % of a core either way.
    results = asyncio.run(_run_all(chosen, runs, setup, args.profile))

    print()
    by_name = {s.name: s for s in chosen}
    print(report.table(results, by_name))
    compared = report.comparisons(results, by_name)
    if compared:
        print(report.comparison_table(compared))
        print()
    report.write_json(
        args.output,
        {
            "generated_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "command": "python -m bench " + " ".join(sys.argv[1:]),
            "machine": described,
            "pinning": setup.describe(),
            "bot_source": str(setup.source),
            "runs_per_scenario": runs,
            "quick": args.quick,
            "notes": list(NOTES),
            "scenarios": results,
            "comparisons": compared,
        },
    )
    print(f"written: {args.output}")
    if any("error" in entry for entry in results.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
