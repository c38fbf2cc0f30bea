"""python -m bench.store: what a job costs the store, on SQLite and on Redis; trees compared.

Each job is accepted (with a per-minute limit and a quota, so their rules run), claimed and
finished, one after another: the bot's CPU per job, Redis's own CPU per job (the Lua scripts),
and the wall time. Each measurement is a fresh process importing `bot` from the tree named,
and the trees take turns, so a busy machine weighs on them alike; medians over the runs.

    python -m bench.store                               this tree, 5 runs of 1,000 jobs
    python -m bench.store --bot-source /tmp/before --bot-source .    before and after
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import machine

# Run in a process of its own, from the tree measured: argv is the store's URL and the jobs.
_WORKER = """
import asyncio, json, sys, time
from bot.store import Limits, NewJob, open_store

async def main(url, n):
    store = open_store(url)
    await store.open()
    try:
        start, cpu = time.perf_counter(), time.process_time()
        for i in range(n):
            job = NewJob(chat_id=1 + i % 50, message_id=i, user_id=10 + i % 50,
                chat_type="private", kind="voice", file_id=f"f{i}", file_unique_id=f"u{i}",
                model="gpt-4o-mini-transcribe", duration=30)
            limits = Limits(10 + i % 50, time.time(), jobs_per_minute=10_000,
                daily_seconds=1e7, reserve_seconds=30)
            assert (await store.accept_job(1_000_000 + i, job, limits)).outcome == "queued"
        done = 0
        while done < n:
            for job in await store.claim_jobs("bench", 100, 60, 5, "gave up"):
                await store.finish_job(job, 30.0, (1,))
                done += 1
        print(json.dumps({"wall": time.perf_counter() - start, "cpu": time.process_time() - cpu}))
    finally:
        await store.close()

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _measure(source: Path, backend: str, jobs: int) -> dict[str, float]:
    """Microseconds per job: the bot's CPU, Redis's CPU (0 on SQLite), the wall time."""
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        redis: subprocess.Popen[bytes] | None = None
        url = f"sqlite:///{tmp}/store.sqlite3"
        if backend == "redis":
            port = _free_port()
            binary = shutil.which("redis-server") or "redis-server"
            args = ["--port", str(port), "--dir", tmp, "--save", "", "--appendonly", "yes"]
            redis = subprocess.Popen([binary, *args], stdout=subprocess.DEVNULL)
            _wait_for(port)
            url = f"redis://127.0.0.1:{port}/0"
        try:
            before = machine.cpu_seconds(redis.pid) if redis else 0.0
            out = subprocess.run(
                [sys.executable, "-c", _WORKER, url, str(jobs)],
                cwd=source,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            redis_cpu = machine.cpu_seconds(redis.pid) - before if redis else 0.0
        finally:
            if redis is not None:
                redis.terminate()
                redis.wait()
    found = json.loads(out)
    per_job = 1e6 / jobs
    return {
        "bot_cpu": found["cpu"] * per_job,
        "redis_cpu": redis_cpu * per_job,
        "wall": found["wall"] * per_job,
    }


def _wait_for(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"redis-server did not listen on {port}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.store", description=__doc__)
    parser.add_argument("--bot-source", type=Path, action="append", help="repeatable")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=1000)
    args = parser.parse_args()
    sources = [s.resolve() for s in args.bot_source or [machine.ROOT]]
    found: dict[tuple[str, Path], list[dict[str, float]]] = {}
    for run in range(1, args.runs + 1):
        for backend in ("sqlite", "redis"):
            for source in sources:  # in turns: a busy moment weighs on every tree alike
                found.setdefault((backend, source), []).append(_measure(source, backend, args.jobs))
        print(f"run {run}/{args.runs} done", file=sys.stderr)
    print(f"{args.jobs} jobs accepted, claimed and finished; medians of {args.runs} runs, µs/job")
    print(f"{'backend':8} {'bot CPU':>8} {'Redis CPU':>10} {'wall':>8}  tree")
    for (backend, source), runs in found.items():
        med = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        cpu, lua, wall = med["bot_cpu"], med["redis_cpu"], med["wall"]
        print(f"{backend:8} {cpu:8.0f} {lua:10.0f} {wall:8.0f}  {source}")


if __name__ == "__main__":
    main()
