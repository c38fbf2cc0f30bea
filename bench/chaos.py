"""python -m bench.chaos (make chaos): a fault soak that prints its figures.

Two runs against the fakes, each a few dozen voice notes delivered as Telegram does (again and
again until the webhook answers 200), the transcription API failing 30% of requests:

- sqlite: one `python -m bot`, killed with SIGKILL at random moments and started again; the
  hostile files (see bench.hostile) are sent too.
- redis: two replicas on one redis-server (append-only file), each killed at random moments;
  mid-run Redis is restarted, Redis is paused (SIGSTOP) longer than the job lease, and one
  replica is frozen longer than the lease.

Figures: notes answered exactly once (their transcript, once), lost (no answer), repeated (more
than one), wrong; API seconds paid per second of audio accepted; placeholders left
"Transcribing..."; the hostile files' answers and what was paid for them; peak RSS of the bot.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import hostile
from bench.chaos_procs import Redis, Replica
from bench.load import Webhook
from bench.media import NOTE_SECONDS, ensure_media
from bench.processes import Fakes, running_fakes

API_ERROR_RATE = 0.3
LEASE_SECONDS = 3.0
_FIRST_CHAT = 20_000
_FIRST_UPDATE = 5_000_000
_RETRY_EVERY = 1.0  # Telegram redelivers an unanswered update later; here a second later
_WAIT_OUTCOMES = 180.0
_SETTLE = 5.0  # after the last outcome: time for a repeat to show itself
_FAULT_WINDOW = 20.0  # seconds: notes arrive and faults happen in the first 20 s

TARGETS = (
    ("lost", "<=", 0),
    ("repeated", "<=", 0),
    ("wrong", "<=", 0),
    # ffprobe's seconds (the fake API's) and the decoder's differ by a packet or two: 0.5%.
    ("paid_per_accepted", "<=", 1.005),
    ("stale_placeholders", "<=", 0),
    ("peak_rss_mib", "<=", 250),
)


async def soak(
    store: str, notes: int, kills: int, seed: int, keep: Path | None = None
) -> dict[str, Any]:
    """One run: notes under faults; returns its figures. With `keep`, the run's directory
    (the bots' logs, Redis's) is made there and left for reading."""
    rng = random.Random(seed)
    media = ensure_media()
    with contextlib.ExitStack() as stack:
        if keep is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="chaos-")))
        else:
            workdir = keep / store
            workdir.mkdir(parents=True)
        async with running_fakes(None, measure=True) as fakes:
            await fakes.set_delay(api=0.3)
            await fakes.set_faults(api_error_rate=API_ERROR_RATE)
            prepared = await fakes.notes(
                count=notes,
                first_index=seed * 1000,
                first_chat_id=_FIRST_CHAT,
                first_message_id=1,
                first_update_id=_FIRST_UPDATE,
                path=str(media.note),
                kind="voice",
                duration=NOTE_SECONDS,
            )
            updates: list[dict[str, Any]] = prepared["updates"]
            accepted = {"note": hostile.decoded_seconds(media.note)}
            if store == "sqlite":
                updates += await _hostile_updates(fakes, workdir, _FIRST_CHAT + notes, accepted)
            rng.shuffle(updates)
            redis = Redis(workdir) if store == "redis" else None
            database = await redis.start() if redis else f"sqlite:///{workdir / 'bot.sqlite3'}"
            replicas = [
                Replica(f"bot-{i + 1}", workdir, fakes, database, LEASE_SECONDS)
                for i in range(2 if redis else 1)
            ]
            try:
                for replica in replicas:
                    await replica.start()
                struck: list[Fault] = []
                faults = _faults(rng, replicas, redis, kills, struck)
                started = time.monotonic()
                await asyncio.gather(_deliver_all(replicas, updates), faults)
                await _wait_answers(fakes, _WAIT_OUTCOMES)
                await asyncio.sleep(_SETTLE)
                wall = time.monotonic() - started
                chats = await fakes.chats()
            finally:
                for replica in replicas:
                    await replica.stop()
                if redis:
                    await redis.stop()
    figures = _figures(store, chats, replicas, wall, kills, accepted)
    figures["faults"] = [f"{f.kind} at {f.start - started:.1f} s" for f in struck]
    figures.update(_paid_again(chats["paid"], struck))
    return figures


async def _wait_answers(fakes: Fakes, timeout: float) -> None:
    """Until every chat (notes and hostile files) has an answer, or the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        chats = (await fakes.chats())["chats"]
        if all(chat["answers"] for chat in chats.values()):
            return
        await asyncio.sleep(1.0)


async def _hostile_updates(
    fakes: Fakes, workdir: Path, first_chat: int, accepted: dict[str, float]
) -> list[dict[str, Any]]:
    """The hostile corpus' updates; `accepted` gets what each that may be taken holds."""
    found = []
    for index, sample in enumerate(hostile.corpus(hostile.CACHE)):
        accepted[sample.name] = sample.seconds
        chat = first_chat + index
        update = await fakes.add_file(
            {
                "path": str(sample.path),
                "name": sample.name,
                "kind": sample.kind,
                "mime_type": sample.mime_type,
                "chat_id": chat,
                "update_id": _FIRST_UPDATE + chat,
                "message_id": 1,
            }
        )
        found.append(update)
    return found


async def _deliver_all(replicas: list[Replica], updates: list[dict[str, Any]]) -> None:
    """Each update posted until a replica answers 2xx, to the live ones in turn, ~10/s."""
    async with Webhook("http://unused", connections=20) as webhook:
        gate = asyncio.Semaphore(20)

        async def deliver(update: dict[str, Any]) -> None:
            body = json.dumps(update).encode()
            async with gate:
                while True:
                    live = [r for r in replicas if r.url is not None]
                    if live:
                        ack = await webhook.post_to(random.choice(live).url or "", body)
                        if 200 <= ack.status < 300:
                            return
                    await asyncio.sleep(_RETRY_EVERY)

        tasks = []
        for update in updates:  # spread over the faults' window
            tasks.append(asyncio.create_task(deliver(update)))
            await asyncio.sleep(_FAULT_WINDOW / len(updates))
        await asyncio.gather(*tasks)


@dataclass(frozen=True)
class Fault:
    kind: str  # "kill bot-1", "freeze bot-2", "redis_restart", "redis_pause"
    start: float  # time.monotonic()
    end: float


def _paid_again(paid: list[dict[str, Any]], struck: list[Fault]) -> dict[str, int]:
    """Requests paid beyond one a note, and how many of the notes paid again had a paid request
    in flight when a bot was killed or frozen: the API answered (and billed) a worker that
    could not take the answer. No bot can take that back."""
    by_chat: dict[int, list[dict[str, Any]]] = {}
    for request in paid:
        if request["chat"] is not None:
            by_chat.setdefault(request["chat"], []).append(request)
    stops = [f for f in struck if f.kind.startswith(("kill", "freeze"))]

    def in_flight(request: dict[str, Any]) -> bool:
        start, end = request["at"], request["at"] + request["took"]
        return any(f.start <= end and start <= f.end for f in stops)

    again = {chat: found for chat, found in by_chat.items() if len(found) > 1}
    return {
        "requests_paid_again": sum(len(found) - 1 for found in again.values()),
        "of_them_notes_in_flight_at_a_kill_or_freeze": sum(
            any(in_flight(r) for r in found) for found in again.values()
        ),
    }


async def _faults(
    rng: random.Random,
    replicas: list[Replica],
    redis: Redis | None,
    kills: int,
    struck: list[Fault],
) -> None:
    """The faults at random moments while the notes arrive."""
    events: list[tuple[float, str, Any]] = [
        (rng.uniform(1, _FAULT_WINDOW), "kill", rng.choice(replicas)) for _ in range(kills)
    ]
    if redis is not None:
        events += [
            (rng.uniform(3, 8), "redis_restart", None),
            (rng.uniform(10, 14), "redis_pause", None),
            (rng.uniform(15, 20), "freeze", rng.choice(replicas)),
        ]
    started = time.monotonic()
    for at, kind, target in sorted(events, key=lambda event: event[0]):
        await asyncio.sleep(max(0.0, started + at - time.monotonic()))
        began = time.monotonic()
        if kind == "kill":
            await target.kill_and_restart()
            struck.append(Fault(f"kill {target.name}", began, began))
            continue
        if kind == "freeze":
            await target.freeze(LEASE_SECONDS + 3)
        elif kind == "redis_restart" and redis is not None:
            await redis.restart()
        elif redis is not None:
            await redis.pause(LEASE_SECONDS + 2)
        name = f"{kind} {target.name}" if target is not None else kind
        struck.append(Fault(name, began, time.monotonic()))


def _figures(
    store: str,
    report: dict[str, Any],
    replicas: list[Replica],
    wall: float,
    kills: int,
    seconds: dict[str, float],
) -> dict[str, Any]:
    chats: dict[str, dict[str, Any]] = report["chats"]
    notes = {c: v for c, v in chats.items() if v["file"] is None}
    files = {c: v for c, v in chats.items() if v["file"] is not None}
    answered_once = [c for c, v in notes.items() if v["answers"] == 1 and v["correct"]]
    paid_notes = sum(p["seconds"] or 0 for p in report["paid"] if p["chat"] is not None)
    paid_other = sum(p["seconds"] or 0 for p in report["paid"] if p["chat"] is None)
    paid_per_chat: dict[int, int] = {}
    for paid in report["paid"]:
        if paid["chat"] is not None:
            paid_per_chat[paid["chat"]] = paid_per_chat.get(paid["chat"], 0) + 1
    note_seconds = seconds["note"]
    accepted = sum(note_seconds for v in notes.values() if v["answers"] >= 1)
    accepted += sum(seconds.get(v["file"], 0.0) for v in files.values() if v["answers"])
    return {
        "store": store,
        "notes": len(notes),
        "kills": kills,
        "answered_exactly_once": len(answered_once),
        "lost": sum(v["answers"] == 0 for v in notes.values()),
        "repeated": sum(v["answers"] > 1 for v in notes.values()),
        "wrong": sum(v["answers"] == 1 and not v["correct"] for v in notes.values()),
        "paid_seconds": round(paid_notes + paid_other, 1),
        "accepted_seconds": round(accepted, 1),
        "paid_per_accepted": round((paid_notes + paid_other) / accepted, 3) if accepted else 0,
        "notes_paid_twice": sum(count > 1 for count in paid_per_chat.values()),
        "api_requests_failed": report["api_failed"],
        "stale_placeholders": sum(v["stale"] for v in chats.values()),
        "peak_rss_mib": round(max(r.peak_kib for r in replicas) / 1024, 1),
        "starts": sum(r.starts for r in replicas),
        "wall_s": round(wall, 1),
        "hostile": {v["file"]: f"{v['answers']}x {v['first_answer']!r}" for v in files.values()},
        "problems": {
            c: f"{v['answers']} answers, {v['first_answer']!r} first, {v['stale']} stale"
            for c, v in notes.items()
            if v["answers"] != 1 or not v["correct"] or v["stale"]
        },
    }


def _print(figures: dict[str, Any]) -> bool:
    print(f"\n== {figures['store']}: {figures['notes']} notes, {figures['kills']} kill -9 ==")
    for key, value in figures.items():
        if key not in ("hostile", "faults", "problems"):
            print(f"  {key:24} {value}")
    print(f"  faults                   {', '.join(figures['faults'])}")
    for chat, answers in figures["problems"].items():
        print(f"  note in chat {chat}: {answers}")
    for name, answer in figures["hostile"].items():
        print(f"  hostile {name:32} {answer}")
    ok = True
    for key, op, limit in TARGETS:
        value = float(figures[key])
        holds = value <= limit
        ok &= holds
        print(f"  target {key} {op} {limit}: {'ok' if holds else 'MISSED'} ({value:g})")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--notes", type=int, default=60)
    parser.add_argument("--kills", type=int, default=4)
    parser.add_argument("--seed", type=int, default=int(time.time()) % 1000)
    parser.add_argument("--store", choices=("sqlite", "redis", "both"), default="both")
    parser.add_argument("--keep", type=Path, help="leave each run's logs in this new directory")
    args = parser.parse_args()
    print(f"chaos soak, seed {args.seed}, API failing {API_ERROR_RATE:.0%} of requests")
    stores = ("sqlite", "redis") if args.store == "both" else (args.store,)
    ok = True
    for store in stores:
        figures = asyncio.run(soak(store, args.notes, args.kills, args.seed, args.keep))
        ok &= _print(figures)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
