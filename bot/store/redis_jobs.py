"""RedisStore's jobs: a queue on a Redis Stream, with the job's state in a hash.

Why a Stream with a consumer group, by hand, rather than arq or taskiq-redis: the queue must
keep the SQLite queue's promises (a job is in Redis before the webhook answers 200; one job per
(chat, message, model); a placeholder and attempts that survive a retry; a retry delay; give
the running jobs back at shutdown), and the job's state must sit beside the user's settings,
limits and usage. arq keeps results and retries its own way and runs whole coroutines by name;
taskiq-redis acknowledges on receipt or after the task and has no lease renewal. Both would
leave the job table here anyway. A consumer group gives exactly the part we need, natively:

- accept: the job's fields in a hash `job:<id>` (id from INCR), a key per (chat, message,
  model) for uniqueness, and an entry in the stream `jobs:ready`, all in one Lua script;
- claim: XREADGROUP (new entries) under the replica's own consumer name; the entry then sits
  in the group's pending list, and its idle time is the lease: the running replica resets it
  (XCLAIM ... JUSTID) every lease/3; a replica that dies stops resetting it, and after one
  lease XAUTOCLAIM in another replica's claim takes the entry over. So no replica ever has to
  guess whether another is alive, and recover_jobs at start has nothing to do;
- retry with a delay: the entry is acknowledged and deleted, the id waits in the sorted set
  `jobs:delayed` and is added to the stream again when due (inside the claim script);
- done / failed: XACK + XDEL and the status in the hash, with the usage aggregates, in one
  script; shutdown: the consumer's pending entries go back to the stream, then the consumer
  is deleted from the group.

Every change of more than one key is one Lua script (redis_scripts*.py): a replica
that dies between two steps cannot lose a job or queue it twice. Each call is applied when it
returns. Durability is Redis's own: with `appendonly yes` (see
compose.yaml) an acknowledged write survives the Redis process being killed, like SQLite's
WAL with synchronous=NORMAL; `appendfsync everysec` may lose the last second on a power cut.
Not supported: Redis Cluster (the scripts touch keys they build themselves)."""

from __future__ import annotations

import json
import logging
import time
from typing import cast

from bot.store import codec
from bot.store.base import (
    CHARGE_MEMORY_SECONDS,
    UPDATE_MEMORY_SECONDS,
    Acceptance,
    AcceptOutcome,
    Job,
    LeaseLost,
    Limits,
    NewJob,
    short_reason,
)
from bot.store.redis_db import (
    COUNTS,
    DELAYED,
    FAILURES,
    FINISHED,
    GROUP,
    PREFIX,
    READY,
    UPDATE_BITS,
    RedisConnection,
    day_name,
    translated,
    update_keys,
    wait,
)
from bot.store.redis_usage import CHATS_KEPT, usage_keep

log = logging.getLogger(__name__)

FAILURES_KEPT = 20
_CONSUMER_IDLE_MS = 3600 * 1000  # a consumer silent this long with nothing pending is gone
_PRUNE_BATCH = 1000


# Alive replicas call Redis every second or so (claims) and every third of a lease (renewals):
# a longer silence means Redis itself stood still (paused, restarting), and leases are given
# a whole lease again after it (redis_scripts.ANSWERING).
_LONGEST_POLL_SECONDS = 2.5


def stood_still_after(lease_seconds: float) -> float:
    """Seconds without any replica's call after which Redis is taken to have stood still."""
    return max(lease_seconds / 2, _LONGEST_POLL_SECONDS)


class RedisJobs(RedisConnection):
    """The JobStore part of RedisStore."""

    @translated
    async def accept_job(self, update_id: int | None, job: NewJob, limits: Limits) -> Acceptance:
        seen, pending = update_keys(update_id) if update_id is not None else ["", ""]
        outcome, *rest = await self._run(
            "ACCEPT",
            [READY, COUNTS, FINISHED, FAILURES, seen or READY, pending or READY],
            [
                PREFIX,
                f"{job.chat_id}:{job.message_id}:{job.model}",
                limits.subject,
                repr(limits.now),
                limits.jobs_per_minute,
                "" if (ceiling := limits.quota_ceiling) is None else repr(ceiling),
                repr(float(limits.reserve_seconds)),
                repr(limits.rate_since),
                day_name(limits.now),
                "" if update_id is None else update_id & UPDATE_BITS,
                self._token,
                UPDATE_MEMORY_SECONDS,
                CHARGE_MEMORY_SECONDS,
                *codec.new_job_pairs(job),
            ],
        )
        if outcome == "over_rate":
            return Acceptance("over_rate", retry_in=limits.rate_retry_in(float(rest[1])))
        if outcome == "over_quota":
            return Acceptance("over_quota", retry_in=limits.quota_retry_in)
        return Acceptance(cast(AcceptOutcome, str(outcome)), int(rest[0]) if rest else None)

    @translated
    async def get_job(self, job_id: int) -> Job | None:
        found: dict[str, str] = await wait(self.redis.hgetall(f"{PREFIX}job:{job_id}"))
        return codec.from_text(found) if found else None

    @translated
    async def claim_jobs(
        self, owner: str, limit: int, lease_seconds: float, max_attempts: int, gave_up: str
    ) -> list[Job]:
        if limit <= 0:
            return []
        now = time.time()
        cursor = self._takeover_from(now, lease_seconds)
        cursor_after, *rows = await self._run(
            "CLAIM",
            [READY, DELAYED, COUNTS, FINISHED, FAILURES],
            [
                PREFIX,
                GROUP,
                owner,
                limit,
                repr(now),
                max(1, round(lease_seconds * 1000)),
                cursor,
                max_attempts,
                short_reason(gave_up),
                FAILURES_KEPT,
                stood_still_after(lease_seconds),
            ],
        )
        if cursor:
            self._takeover_cursor = str(cursor_after)
        return sorted((_claimed(row) for row in rows), key=lambda job: job.id)

    def _takeover_from(self, now: float, lease_seconds: float) -> str:
        """Where this claim goes on looking for jobs whose lease ran out; "" for not now."""
        if self._next_takeover == 0.0:
            # Just started: others' jobs are left to replicas that have been up a lease. One
            # that dies as it starts (a crash loop) would take them over and die again, each
            # time one more attempt, until they fail though they harm nobody.
            self._next_takeover = now + lease_seconds
        # Looking for expired leases walks the pending list: often enough to notice a dead
        # replica within a fraction of the lease, not on every claim.
        if now < self._next_takeover:
            return ""
        self._next_takeover = now + min(1.0, lease_seconds / 4)
        return self._takeover_cursor

    @translated
    async def renew_leases(self, owner: str, job_ids: list[int], lease_seconds: float) -> set[int]:
        if not job_ids:
            return set()
        quiet = stood_still_after(lease_seconds)
        held = await self._run("RENEW", [READY], [PREFIX, GROUP, owner, quiet, *job_ids])
        return {int(job_id) for job_id in held}

    @translated
    async def set_placeholder(self, job: Job, message_id: int) -> None:
        await self._fenced_set(job, "placeholder_id", str(message_id))

    @translated
    async def record_sent(
        self, job: Job, digest: str, sent_ids: tuple[int, ...], file_sent: bool
    ) -> None:
        await self._fenced_set(
            job,
            "sent_digest",
            digest,
            "sent_ids",
            json.dumps(list(sent_ids)),
            "file_sent",
            "1" if file_sent else "0",
        )

    async def _fenced_set(self, job: Job, *pairs: str) -> None:
        written = await self._run(
            "FENCED_SET", [], [PREFIX, job.id, job.lease_owner or "", job.epoch, *pairs]
        )
        _check_fence(job, written)

    @translated
    async def finish_job(
        self, job: Job, audio_seconds: float | None, reply_ids: tuple[int, ...] = ()
    ) -> None:
        audio = "" if audio_seconds is None else repr(float(audio_seconds))
        await self._finish(job, "done", audio, json.dumps(list(reply_ids)), "")

    @translated
    async def fail_job(self, job: Job, reason: str) -> None:
        await self._finish(job, "failed", "", "[]", short_reason(reason))

    async def _finish(self, job: Job, status: str, audio: str, replies: str, error: str) -> None:
        now = time.time()
        written = await self._run(
            "FINISH",
            [READY, DELAYED, COUNTS, FINISHED, FAILURES],
            [
                PREFIX,
                GROUP,
                job.id,
                status,
                repr(now),
                audio,
                replies,
                error,
                day_name(now),
                usage_keep(now, now),
                CHATS_KEPT,
                FAILURES_KEPT,
                job.lease_owner or "",
                job.epoch,
            ],
        )
        _check_fence(job, written)

    @translated
    async def retry_job(self, job: Job, reason: str, delay: float) -> None:
        written = await self._run(
            "RETRY",
            [READY, DELAYED, COUNTS],
            [
                PREFIX,
                GROUP,
                job.id,
                short_reason(reason),
                repr(time.time()),
                repr(float(delay)),
                job.lease_owner or "",
                job.epoch,
            ],
        )
        _check_fence(job, written)

    @translated
    async def release_jobs(self, owner: str) -> int:
        return int(await self._run("RELEASE", [READY, COUNTS], [PREFIX, GROUP, owner]))

    @translated
    async def recover_jobs(self) -> int:
        # Other replicas may be running their jobs right now: nothing is taken back here. A job
        # whose worker died is taken over when its lease runs out (XAUTOCLAIM in claim_jobs).
        return 0

    @translated
    async def prune(self, older_than_seconds: float) -> int:
        cutoff = repr(time.time() - older_than_seconds)
        pruned = 0
        while True:
            seen, gone = await self._scripts["PRUNE"](
                keys=[FINISHED, COUNTS], args=[PREFIX, cutoff, _PRUNE_BATCH]
            )
            pruned += int(gone)
            if int(seen) < _PRUNE_BATCH:
                break
        await self._run("FORGET_CONSUMERS", [READY], [GROUP, _CONSUMER_IDLE_MS])
        # Seen updates, claims and cached transcripts expire by themselves (TTLs).
        return pruned

    @translated
    async def count_queued(self) -> int:
        return int(await wait(self.redis.hget(COUNTS, "queued")) or 0)


def _claimed(row: list[str]) -> Job:
    """A claimed job from CLAIM's row (HGETALL, plus "_from" when it was taken over)."""
    found = dict(zip(row[::2], row[1::2], strict=True))
    previous = found.pop("_from", None)
    job = codec.from_text(found)
    if previous is not None:
        log.info("job=%d taken over from %s: its lease ran out", job.id, previous)
    return job


def _check_fence(job: Job, written: object) -> None:
    if int(str(written)) == -1:
        raise LeaseLost(f"job={job.id}: its claim by {job.lease_owner} (epoch {job.epoch}) is over")
