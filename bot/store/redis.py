"""The shared store for several replicas: Redis, with a job queue on a Redis Stream.

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

Every change of more than one key is one Lua script (bot/store/redis_scripts.py): a replica
that dies between two steps cannot lose a job or queue it twice. Each call is applied when it
returns. Durability is Redis's own: with `appendonly yes` (see
compose.yaml) an acknowledged write survives the Redis process being killed, like SQLite's
WAL with synchronous=NORMAL; `appendfsync everysec` may lose the last second on a power cut.
Not supported: Redis Cluster (the scripts touch keys they build themselves).
"""

from __future__ import annotations

import functools
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import (
    BusyLoadingError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.config import RedisLocation
from bot.store import codec
from bot.store import redis_scripts as lua
from bot.store.base import (
    CHARGE_MEMORY_SECONDS,
    DAY,
    UPDATE_MEMORY_SECONDS,
    Acceptance,
    AcceptOutcome,
    Job,
    LeaseLost,
    Limits,
    NewJob,
    Prefs,
    PrefValue,
    Scope,
    Stats,
    StoreUnavailable,
    UpdateBeingHandled,
    Usage,
    UsageTotal,
    check_pref_name,
    not_open,
    prefs_from,
    short_reason,
)

log = logging.getLogger(__name__)

PREFIX = "transcribot:"
GROUP = "workers"
_UPDATE_BITS = 0xFFFF  # 65,536 update ids per seen-bitmap key (8 KB)
# Usage by user and by day: /usage asks for this month, /stats for the last week.
_USAGEDAYS = 40
_CHATS_KEPT = 10_000  # all-time audio per chat, for /stats's top chats
_FAILURES_KEPT = 20
_RECENT_FAILURES = 5
_CONSUMER_IDLE_MS = 3600 * 1000  # a consumer silent this long with nothing pending is gone
_PRUNE_BATCH = 1000

_READY = PREFIX + "jobs:ready"
_DELAYED = PREFIX + "jobs:delayed"
_COUNTS = PREFIX + "jobs:count"
_FINISHED = PREFIX + "jobs:finished"
_FAILURES = PREFIX + "jobs:failures"


# What Redis raises when it cannot serve now: the connection is lost or timed out, it is still
# loading its AOF after a restart (BusyLoadingError), it is a replica a failover has not
# promoted yet (ReadOnlyError), or it is full under noeviction (OutOfMemoryError).
_UNAVAILABLE = (
    RedisConnectionError,
    RedisTimeoutError,
    BusyLoadingError,
    ReadOnlyError,
    OutOfMemoryError,
)
_P = ParamSpec("_P")
_T = TypeVar("_T")


def _translated(
    method: Callable[Concatenate[RedisStore, _P], Coroutine[Any, Any, _T]],
) -> Callable[Concatenate[RedisStore, _P], Coroutine[Any, Any, _T]]:
    """Redis's own "cannot serve now" errors become StoreUnavailable (no password in it)."""

    async def translating(self: RedisStore, /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return await method(self, *args, **kwargs)
        except _UNAVAILABLE as exc:
            raise StoreUnavailable(
                f"Redis at {self._location.redacted}: {self._redact(str(exc))}"
            ) from exc

    functools.update_wrapper(translating, method)
    return translating


class RedisStore:
    """Store on one Redis database, shared by every replica; safe to use from several."""

    def __init__(self, location: RedisLocation, *, update_hold_seconds: float = 60.0) -> None:
        self._location = location
        self._update_hold = update_hold_seconds
        self._token = uuid.uuid4().hex  # this store's claims on updates
        self._redis: Redis | None = None
        self._scripts: dict[str, AsyncScript] = {}
        self._next_takeover = 0.0
        self._takeover_cursor = "0-0"  # where the look for expired leases goes on

    @property
    def redis(self) -> Redis:
        if self._redis is None:
            raise not_open()
        return self._redis

    async def open(self) -> None:
        pool = BlockingConnectionPool.from_url(
            self._location.url,
            decode_responses=True,
            max_connections=64,
            timeout=10,  # waiting for a free connection
            socket_connect_timeout=2,
            socket_timeout=5,
            # One immediate retry on a dropped connection: after Redis restarts, each pooled
            # connection fails once before it reconnects. A command whose answer was lost may
            # so run twice: the job scripts tolerate that (uniqueness keys, status checks); a
            # usage record could count twice. More retries would only delay the 503 that makes
            # Telegram try again later.
            retry=Retry(NoBackoff(), 1),
        )
        client = Redis(connection_pool=pool)
        self._redis = client
        self._scripts = {
            name: client.register_script(getattr(lua, name))
            for name in (
                "CLAIM_UPDATE",
                "CONFIRM_UPDATE",
                "FORGET_UPDATE",
                "ACCEPT",
                "CLAIM",
                "RENEW",
                "FINISH",
                "ADD_USAGE",
                "RETRY",
                "RELEASE",
                "PRUNE",
                "FORGET_CONSUMERS",
                "FENCED_SET",
            )
        }
        try:
            await client.ping()
            version = str((await client.info("server")).get("redis_version", "0"))
            await self._ensure_group()
        except RedisError as exc:
            await self.close()
            raise StoreUnavailable(
                f"cannot reach Redis at {self._location.redacted}: {self._redact(str(exc))}"
            ) from exc
        if _version(version) < (6, 2):
            await self.close()
            raise StoreUnavailable(
                f"Redis {version} at {self._location.redacted} is too old: the job queue "
                "needs 6.2 or newer (XAUTOCLAIM)"
            )
        await self._warn_if_evicting()

    async def _warn_if_evicting(self) -> None:
        try:
            found = await _wait(self.redis.config_get("maxmemory-policy"))
        except RedisError:
            return  # CONFIG is often disabled on managed Redis: nothing to tell then
        policy = str(found.get("maxmemory-policy", "noeviction"))
        if policy != "noeviction":
            log.warning(
                "Redis evicts keys when full (maxmemory-policy %s): queued jobs and settings "
                "could be lost; set maxmemory-policy noeviction",
                policy,
            )

    async def _ensure_group(self) -> None:
        # From id 0: entries already in the stream (a group lost with a Redis without
        # persistence, say) are delivered too.
        try:
            await self.redis.xgroup_create(_READY, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _redact(self, text: str) -> str:
        password = self._location.password
        return text.replace(password, "***") if password else text

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    # Every write is applied (and in Redis's AOF) when its call returns. No WAIT for Redis
    # replicas: the promise is "in Redis before the 200", as it is "in the SQLite file"; a
    # replica's copy is for failover, with its own small window.

    @_translated
    async def ping(self) -> None:
        await _wait(self.redis.ping())

    async def _run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        try:
            return await self._scripts[name](keys=keys, args=args)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # Redis lost its data (restarted without persistence): start the queue again.
            log.warning("the job stream's consumer group was missing: created it again")
            await self._ensure_group()
            return await self._scripts[name](keys=keys, args=args)

    # preferences

    @_translated
    async def get_prefs(self, scope: Scope, owner_id: int) -> Prefs:
        return prefs_from((await _wait(self.redis.hgetall(_prefs_key(scope, owner_id)))).items())

    @_translated
    async def get_chat_and_user_prefs(self, chat_id: int, user_id: int) -> tuple[Prefs, Prefs]:
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(_prefs_key("chat", chat_id))
        pipe.hgetall(_prefs_key("user", user_id))
        chat, user = await _wait(pipe.execute())
        return prefs_from(chat.items()), prefs_from(user.items())

    @_translated
    async def set_pref(self, scope: Scope, owner_id: int, name: str, value: PrefValue) -> None:
        check_pref_name(name)
        key = _prefs_key(scope, owner_id)
        if value is None:
            await _wait(self.redis.hdel(key, name))
        else:
            await _wait(self.redis.hset(key, name, json.dumps(value)))

    # updates and one-off claims

    # An update is held by the replica handling it (a pending key with a short TTL) and marked
    # seen only once accepted: a replica that dies in between does not leave it marked seen
    # (it would be lost), and its redelivery waits out the hold with 503s.

    @_translated
    async def claim_update(self, update_id: int) -> bool:
        claimed = await self._scripts["CLAIM_UPDATE"](
            keys=_update_keys(update_id),
            args=[update_id & _UPDATE_BITS, self._token, round(self._update_hold * 1000)],
        )
        if claimed == -1:
            raise UpdateBeingHandled(f"update {update_id} is being handled by another replica")
        return bool(claimed)

    @_translated
    async def confirm_update(self, update_id: int) -> None:
        await self._scripts["CONFIRM_UPDATE"](
            keys=_update_keys(update_id),
            args=[update_id & _UPDATE_BITS, self._token, UPDATE_MEMORY_SECONDS],
        )

    @_translated
    async def forget_update(self, update_id: int) -> None:
        await self._scripts["FORGET_UPDATE"](keys=_update_keys(update_id)[1:], args=[self._token])

    @_translated
    async def claim_once(self, key: str, ttl_seconds: float) -> bool:
        ms = max(1, round(ttl_seconds * 1000))
        return bool(await self.redis.set(f"{PREFIX}claim:{key}", 1, nx=True, px=ms))

    @_translated
    async def release_claim(self, key: str) -> None:
        await self.redis.delete(f"{PREFIX}claim:{key}")

    # jobs

    @_translated
    async def accept_job(self, update_id: int | None, job: NewJob, limits: Limits) -> Acceptance:
        seen, pending = _update_keys(update_id) if update_id is not None else ["", ""]
        outcome, *rest = await self._run(
            "ACCEPT",
            [_READY, _COUNTS, _FINISHED, _FAILURES, seen or _READY, pending or _READY],
            [
                PREFIX,
                f"{job.chat_id}:{job.message_id}:{job.model}",
                limits.subject,
                repr(limits.now),
                limits.jobs_per_minute,
                repr(float(limits.daily_seconds)),
                repr(float(limits.reserve_seconds)),
                repr(limits.day_start),
                _day(limits.now),
                "" if update_id is None else update_id & _UPDATE_BITS,
                self._token,
                UPDATE_MEMORY_SECONDS,
                CHARGE_MEMORY_SECONDS,
                *codec.new_job_pairs(job),
            ],
        )
        job_id = int(rest[0]) if rest and rest[0] else None
        retry_in = float(rest[1]) if len(rest) > 1 else 0.0
        return Acceptance(cast(AcceptOutcome, str(outcome)), job_id, retry_in)

    @_translated
    async def get_job(self, job_id: int) -> Job | None:
        found: dict[str, str] = await _wait(self.redis.hgetall(f"{PREFIX}job:{job_id}"))
        return codec.from_text(found) if found else None

    @_translated
    async def claim_jobs(
        self, owner: str, limit: int, lease_seconds: float, max_attempts: int, gave_up: str
    ) -> list[Job]:
        if limit <= 0:
            return []
        now = time.time()
        # Looking for expired leases walks the pending list: often enough to notice a dead
        # replica within a fraction of the lease, not on every claim.
        cursor = ""
        if now >= self._next_takeover:
            self._next_takeover = now + min(1.0, lease_seconds / 4)
            cursor = self._takeover_cursor
        cursor_after, *rows = await self._run(
            "CLAIM",
            [_READY, _DELAYED, _COUNTS, _FINISHED, _FAILURES],
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
                _FAILURES_KEPT,
            ],
        )
        if cursor:
            self._takeover_cursor = str(cursor_after)
        jobs = []
        for row in rows:
            found = dict(zip(row[::2], row[1::2], strict=True))
            previous = found.pop("_from", None)
            job = codec.from_text(found)
            if previous is not None:
                log.info("job=%d taken over from %s: its lease ran out", job.id, previous)
            jobs.append(job)
        return sorted(jobs, key=lambda job: job.id)

    @_translated
    async def renew_leases(self, owner: str, job_ids: list[int], lease_seconds: float) -> None:
        if job_ids:
            await self._run("RENEW", [_READY], [PREFIX, GROUP, owner, *job_ids])

    @_translated
    async def set_placeholder(self, job: Job, message_id: int) -> None:
        await self._fenced_set(job, "placeholder_id", str(message_id))

    @_translated
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

    @_translated
    async def finish_job(
        self, job: Job, audio_seconds: float | None, reply_ids: tuple[int, ...] = ()
    ) -> None:
        audio = "" if audio_seconds is None else repr(float(audio_seconds))
        await self._finish(job, "done", audio, json.dumps(list(reply_ids)), "")

    @_translated
    async def fail_job(self, job: Job, reason: str) -> None:
        await self._finish(job, "failed", "", "[]", short_reason(reason))

    async def _finish(self, job: Job, status: str, audio: str, replies: str, error: str) -> None:
        now = time.time()
        written = await self._run(
            "FINISH",
            [_READY, _DELAYED, _COUNTS, _FINISHED, _FAILURES],
            [
                PREFIX,
                GROUP,
                job.id,
                status,
                repr(now),
                audio,
                replies,
                error,
                _day(now),
                _usage_keep(now, now),
                _CHATS_KEPT,
                _FAILURES_KEPT,
                job.lease_owner or "",
                job.epoch,
            ],
        )
        _check_fence(job, written)

    @_translated
    async def retry_job(self, job: Job, reason: str, delay: float) -> None:
        written = await self._run(
            "RETRY",
            [_READY, _DELAYED, _COUNTS],
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

    @_translated
    async def release_jobs(self, owner: str) -> int:
        return int(await self._run("RELEASE", [_READY, _COUNTS], [PREFIX, GROUP, owner]))

    @_translated
    async def recover_jobs(self) -> int:
        # Other replicas may be running their jobs right now: nothing is taken back here. A job
        # whose worker died is taken over when its lease runs out (XAUTOCLAIM in claim_jobs).
        return 0

    @_translated
    async def prune(self, older_than_seconds: float) -> int:
        cutoff = repr(time.time() - older_than_seconds)
        pruned = 0
        while True:
            seen, gone = await self._scripts["PRUNE"](
                keys=[_FINISHED, _COUNTS], args=[PREFIX, cutoff, _PRUNE_BATCH]
            )
            pruned += int(gone)
            if int(seen) < _PRUNE_BATCH:
                break
        await self._run("FORGET_CONSUMERS", [_READY], [GROUP, _CONSUMER_IDLE_MS])
        # Seen updates, claims and cached transcripts expire by themselves (TTLs).
        return pruned

    # transcript cache

    @_translated
    async def get_transcript(self, key: str) -> str | None:
        found = await self.redis.get(f"{PREFIX}transcript:{key}")
        return None if found is None else str(found)

    @_translated
    async def put_transcript(self, key: str, text: str, ttl_seconds: float) -> None:
        if ttl_seconds > 0:
            ms = max(1, round(ttl_seconds * 1000))
            await self.redis.set(f"{PREFIX}transcript:{key}", text, px=ms)

    # usage, limits and statistics

    @_translated
    async def add_usage(self, usage: Usage) -> None:
        now = time.time()
        at = usage.at or now
        await self._scripts["ADD_USAGE"](
            args=[
                PREFIX,
                usage.user_id,
                usage.chat_id,
                usage.model,
                repr(float(usage.audio_seconds)),
                usage.input_tokens,
                usage.output_tokens,
                _day(at),
                _usage_keep(at, now),
                _CHATS_KEPT,
            ]
        )

    @_translated
    async def usage_since(self, user_id: int, since: float) -> list[UsageTotal]:
        """By UTC day: `since` counts from the start of its day; at most 40 days back."""
        now = time.time()
        first = max(since - since % DAY, now - now % DAY - (_USAGEDAYS - 1) * DAY)
        pipe = self.redis.pipeline(transaction=False)
        day = first
        while day <= now:
            pipe.hgetall(f"{PREFIX}usage:user:{user_id}:{_day(day)}")
            day += DAY
        totals: dict[str, dict[str, float]] = {}
        for found in await pipe.execute():
            for name, value in found.items():
                model, _, what = name.rpartition("|")
                slot = totals.setdefault(model, {})
                slot[what] = slot.get(what, 0.0) + float(value)
        return [
            UsageTotal(
                model,
                int(t.get("n", 0)),
                t.get("s", 0.0),
                int(t.get("i", 0)),
                int(t.get("o", 0)),
            )
            for model, t in sorted(totals.items())
        ]

    @_translated
    async def quota_used(self, subject: int, since: float) -> float:
        """Charges of the UTC day `since` falls in (the quota's day)."""
        found = await _wait(self.redis.hget(f"{PREFIX}quota:{subject}:{_day(since)}", "total"))
        return float(found or 0)

    @_translated
    async def recent_job_times(self, subject: int, since: float) -> list[float]:
        key = f"{PREFIX}limit:{subject}:jobs"
        found = await _wait(self.redis.zrangebyscore(key, since, "+inf", withscores=True))
        return [float(score) for _, score in found]

    @_translated
    async def count_queued(self) -> int:
        return int(await _wait(self.redis.hget(_COUNTS, "queued")) or 0)

    @_translated
    async def stats(self, days: int = 7) -> Stats:
        now = time.time()
        today = now - now % DAY
        day_names = [_day(today - back * DAY) for back in range(min(days, _USAGEDAYS))]
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(_COUNTS)
        pipe.hgetall(f"{PREFIX}usage:models")
        pipe.zrevrange(f"{PREFIX}usage:chats", 0, 4, withscores=True)
        pipe.lrange(_FAILURES, 0, -1)
        for name in day_names:
            pipe.hgetall(f"{PREFIX}usage:day:{name}")
        counts, models, chats, failures, *by_day = await pipe.execute()
        return Stats(
            by_status={status: int(n) for status, n in sorted(counts.items()) if int(n) > 0},
            minutes_by_model={model: float(s) / 60 for model, s in sorted(models.items())},
            minutes_by_day={
                name: {model: float(s) / 60 for model, s in sorted(found.items())}
                for name, found in zip(day_names, by_day, strict=True)
                if found
            },
            top_chats=await self._top_chats(chats),
            recent_failures=await self._recent_failures(failures),
        )

    async def _top_chats(self, chats: list[tuple[str, float]]) -> list[tuple[int, int, float]]:
        if not chats:
            return []
        counts = await _wait(
            self.redis.hmget(f"{PREFIX}usage:chat_jobs", [chat for chat, _ in chats])
        )
        return [
            (int(chat), int(count or 0), seconds / 60)
            for (chat, seconds), count in zip(chats, counts, strict=True)
        ]

    async def _recent_failures(self, ids: list[str]) -> list[tuple[int, str]]:
        """The newest failed jobs that are still failed and not yet pruned."""
        pipe = self.redis.pipeline(transaction=False)
        for job_id in ids:
            pipe.hmget(f"{PREFIX}job:{job_id}", ["status", "error"])
        found = []
        for job_id, (status, error) in zip(ids, await pipe.execute(), strict=True):
            if status == "failed" and (int(job_id), error) not in found:
                found.append((int(job_id), str(error)))
        return found[:_RECENT_FAILURES]


async def _wait(result: Awaitable[Any] | Any) -> Any:
    """redis-py types some commands as `Awaitable[T] | T` (shared with the sync client)."""
    return await cast(Awaitable[Any], result)


def _update_keys(update_id: int) -> list[str]:
    """The seen-bitmap holding this update's bit, and its pending key."""
    return [f"{PREFIX}updates:{update_id >> 16}", f"{PREFIX}update:{update_id}"]


def _version(text: str) -> tuple[int, ...]:
    """ "7.0.15" -> (7, 0, 15)."""
    return tuple(int(part) for part in text.split(".") if part.isdigit())


def _prefs_key(scope: Scope, owner_id: int) -> str:
    return f"{PREFIX}prefs:{scope}:{owner_id}"


def _day(at: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(at))


def _usage_keep(at: float, now: float) -> int:
    """Seconds the by-day aggregates of `at`'s day are kept from now (0: too old to keep)."""
    return max(0, round(at - at % DAY + _USAGEDAYS * DAY - now))


def _check_fence(job: Job, written: object) -> None:
    if int(str(written)) == -1:
        raise LeaseLost(f"job={job.id}: its claim by {job.lease_owner} (epoch {job.epoch}) is over")
