"""The shared store for several replicas: Redis, with a job queue on a Redis Stream.

Why a Stream with a consumer group, by hand, rather than arq or taskiq-redis: the queue must
keep the SQLite queue's promises (a job is in Redis before the webhook answers 200; one job per
(chat, message, model); a placeholder and attempts that survive a retry; a retry delay; give
the running jobs back at shutdown), and the job's state must sit beside the user's settings,
limits and usage. arq keeps results and retries its own way and runs whole coroutines by name;
taskiq-redis acknowledges on receipt or after the task and has no lease renewal. Both would
leave the job table here anyway. A consumer group gives exactly the part we need, natively:

- enqueue: the job's fields in a hash `job:<id>` (id from INCR), a key per (chat, message,
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
that dies between two steps cannot lose a job or queue it twice. `commit()` has nothing to do:
each call is applied when it returns. Durability is Redis's own: with `appendonly yes` (see
compose.yaml) an acknowledged write survives the Redis process being killed, like SQLite's
WAL with synchronous=NORMAL; `appendfsync everysec` may lose the last second on a power cut.
Not supported: Redis Cluster (the scripts touch keys they build themselves).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Awaitable
from dataclasses import fields
from typing import Any, cast

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError, ResponseError

from bot.config import RedisLocation
from bot.store import redis_scripts as lua
from bot.store.base import (
    PREF_NAMES,
    Job,
    NewJob,
    Prefs,
    PrefValue,
    Scope,
    Stats,
    StoreUnavailable,
    UpdateBeingHandled,
    Usage,
    UsageTotal,
)

log = logging.getLogger(__name__)

PREFIX = "transcribot:"
GROUP = "workers"
# Telegram gives up redelivering an update after about a day.
_UPDATE_MEMORY_SECONDS = 2 * 24 * 3600
_UPDATE_BITS = 0xFFFF  # 65,536 update ids per seen-bitmap key (8 KB)
# A user's job times: the per-minute limit looks back a minute, the daily quota one UTC day.
_USER_JOBS_SECONDS = 2 * 24 * 3600
# Usage by user and by day: /usage asks for this month, /stats for the last week.
_USAGE_DAYS = 40
_CHATS_KEPT = 10_000  # all-time audio per chat, for /stats's top chats
_FAILURES_KEPT = 20
_RECENT_FAILURES = 5
_CONSUMER_IDLE_MS = 3600 * 1000  # a consumer silent this long with nothing pending is gone
_PRUNE_BATCH = 1000
_DAY = 24 * 3600

_READY = PREFIX + "jobs:ready"
_DELAYED = PREFIX + "jobs:delayed"
_COUNTS = PREFIX + "jobs:count"
_FINISHED = PREFIX + "jobs:finished"
_FAILURES = PREFIX + "jobs:failures"

_NEW_JOB_FIELDS = tuple(f.name for f in fields(NewJob))
_JOB_TYPES = {f.name: str(f.type) for f in fields(Job)}


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
            raise RuntimeError("store is not open")
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
                "ENQUEUE",
                "CLAIM",
                "RENEW",
                "FINISH",
                "ADD_USAGE",
                "RETRY",
                "RELEASE",
                "PRUNE",
                "FORGET_CONSUMERS",
                "USER_AUDIO",
                "SET_PLACEHOLDER",
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

    async def commit(self) -> None:
        """Nothing to do: every write is applied (and in Redis's AOF) when its call returns.

        No WAIT for Redis replicas either: the promise is "in Redis before the 200", as it is
        "in the SQLite file"; a replica's copy is for failover, with its own small window."""

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

    async def get_prefs(self, scope: Scope, owner_id: int) -> Prefs:
        return _prefs(await _wait(self.redis.hgetall(_prefs_key(scope, owner_id))))

    async def get_chat_and_user_prefs(self, chat_id: int, user_id: int) -> tuple[Prefs, Prefs]:
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(_prefs_key("chat", chat_id))
        pipe.hgetall(_prefs_key("user", user_id))
        chat, user = await _wait(pipe.execute())
        return _prefs(chat), _prefs(user)

    async def set_pref(self, scope: Scope, owner_id: int, name: str, value: PrefValue) -> None:
        if name not in PREF_NAMES:
            raise ValueError(f"unknown preference {name!r}")
        key = _prefs_key(scope, owner_id)
        if value is None:
            await _wait(self.redis.hdel(key, name))
        else:
            await _wait(self.redis.hset(key, name, json.dumps(value)))

    # updates and one-off claims

    # An update is held by the replica handling it (a pending key with a short TTL) and marked
    # seen only once accepted: a replica that dies in between does not leave it marked seen
    # (it would be lost), and its redelivery waits out the hold with 503s.

    async def claim_update(self, update_id: int) -> bool:
        claimed = await self._scripts["CLAIM_UPDATE"](
            keys=_update_keys(update_id),
            args=[update_id & _UPDATE_BITS, self._token, round(self._update_hold * 1000)],
        )
        if claimed == -1:
            raise UpdateBeingHandled(f"update {update_id} is being handled by another replica")
        return bool(claimed)

    async def confirm_update(self, update_id: int) -> None:
        await self._scripts["CONFIRM_UPDATE"](
            keys=_update_keys(update_id),
            args=[update_id & _UPDATE_BITS, self._token, _UPDATE_MEMORY_SECONDS],
        )

    async def forget_update(self, update_id: int) -> None:
        await self._scripts["FORGET_UPDATE"](keys=_update_keys(update_id)[1:], args=[self._token])

    async def claim_once(self, key: str, ttl_seconds: float) -> bool:
        ms = max(1, round(ttl_seconds * 1000))
        return bool(await self.redis.set(f"{PREFIX}claim:{key}", 1, nx=True, px=ms))

    async def release_claim(self, key: str) -> None:
        await self.redis.delete(f"{PREFIX}claim:{key}")

    # jobs

    async def enqueue(self, job: NewJob) -> bool:
        pairs: list[str] = []
        for name in _NEW_JOB_FIELDS:
            value = _encode(getattr(job, name))
            if value is not None:
                pairs += [name, value]
        created = await self._run(
            "ENQUEUE",
            [_READY, _COUNTS, _FINISHED, _FAILURES],
            [
                PREFIX,
                f"{job.chat_id}:{job.message_id}:{job.model}",
                job.user_id,
                repr(time.time()),
                _USER_JOBS_SECONDS,
                *pairs,
            ],
        )
        return bool(created)

    async def get_job(self, job_id: int) -> Job | None:
        found: dict[str, str] = await _wait(self.redis.hgetall(f"{PREFIX}job:{job_id}"))
        return _decode_job(found) if found else None

    async def claim_jobs(self, owner: str, limit: int, lease_seconds: float) -> list[Job]:
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
            [_READY, _DELAYED, _COUNTS],
            [
                PREFIX,
                GROUP,
                owner,
                limit,
                repr(now),
                max(1, round(lease_seconds * 1000)),
                cursor,
            ],
        )
        if cursor:
            self._takeover_cursor = str(cursor_after)
        jobs = []
        for row in rows:
            found = dict(zip(row[::2], row[1::2], strict=True))
            previous = found.pop("_from", None)
            job = _decode_job(found)
            if previous is not None:
                log.info("job=%d taken over from %s: its lease ran out", job.id, previous)
            jobs.append(job)
        return sorted(jobs, key=lambda job: job.id)

    async def renew_leases(self, owner: str, job_ids: list[int], lease_seconds: float) -> None:
        if job_ids:
            await self._run("RENEW", [_READY], [PREFIX, GROUP, owner, *job_ids])

    async def set_placeholder(self, job_id: int, message_id: int) -> None:
        await self._scripts["SET_PLACEHOLDER"](args=[PREFIX, job_id, message_id])

    async def finish_job(
        self, job_id: int, audio_seconds: float | None, reply_ids: tuple[int, ...] = ()
    ) -> None:
        audio = "" if audio_seconds is None else repr(float(audio_seconds))
        await self._finish(job_id, "done", audio, json.dumps(list(reply_ids)), "")

    async def fail_job(self, job_id: int, reason: str) -> None:
        await self._finish(job_id, "failed", "", "[]", reason[:1000])

    async def _finish(self, job_id: int, status: str, audio: str, replies: str, error: str) -> None:
        now = time.time()
        await self._run(
            "FINISH",
            [_READY, _DELAYED, _COUNTS, _FINISHED, _FAILURES],
            [
                PREFIX,
                GROUP,
                job_id,
                status,
                repr(now),
                audio,
                replies,
                error,
                _day(now),
                _usage_keep(now, now),
                _CHATS_KEPT,
                _FAILURES_KEPT,
            ],
        )

    async def retry_job(self, job_id: int, reason: str, delay: float) -> None:
        await self._run(
            "RETRY",
            [_READY, _DELAYED, _COUNTS],
            [PREFIX, GROUP, job_id, reason[:1000], repr(time.time()), repr(float(delay))],
        )

    async def release_jobs(self, owner: str) -> int:
        return int(await self._run("RELEASE", [_READY, _COUNTS], [PREFIX, GROUP, owner]))

    async def recover_jobs(self) -> int:
        # Other replicas may be running their jobs right now: nothing is taken back here. A job
        # whose worker died is taken over when its lease runs out (XAUTOCLAIM in claim_jobs).
        return 0

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

    async def get_transcript(self, key: str) -> str | None:
        found = await self.redis.get(f"{PREFIX}transcript:{key}")
        return None if found is None else str(found)

    async def put_transcript(self, key: str, text: str, ttl_seconds: float) -> None:
        if ttl_seconds > 0:
            ms = max(1, round(ttl_seconds * 1000))
            await self.redis.set(f"{PREFIX}transcript:{key}", text, px=ms)

    # usage, limits and statistics

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

    async def usage_since(self, user_id: int, since: float) -> list[UsageTotal]:
        """By UTC day: `since` counts from the start of its day; at most 40 days back."""
        now = time.time()
        first = max(since - since % _DAY, now - now % _DAY - (_USAGE_DAYS - 1) * _DAY)
        pipe = self.redis.pipeline(transaction=False)
        day = first
        while day <= now:
            pipe.hgetall(f"{PREFIX}usage:user:{user_id}:{_day(day)}")
            day += _DAY
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

    async def user_job_times(self, user_id: int, since: float) -> list[float]:
        found: list[tuple[str, float]] = await _wait(
            self.redis.zrangebyscore(f"{PREFIX}user:{user_id}:jobs", since, "+inf", withscores=True)
        )
        return [score for _, score in found]

    async def user_audio_seconds_since(self, user_id: int, since: float) -> float:
        return float(await self._scripts["USER_AUDIO"](args=[PREFIX, user_id, repr(since)]))

    async def stats(self, days: int = 7) -> Stats:
        now = time.time()
        today = now - now % _DAY
        day_names = [_day(today - back * _DAY) for back in range(min(days, _USAGE_DAYS))]
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


def _prefs(found: dict[str, str]) -> Prefs:
    return Prefs(**{name: json.loads(v) for name, v in found.items() if name in PREF_NAMES})


def _prefs_key(scope: Scope, owner_id: int) -> str:
    return f"{PREFIX}prefs:{scope}:{owner_id}"


def _day(at: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(at))


def _usage_keep(at: float, now: float) -> int:
    """Seconds the by-day aggregates of `at`'s day are kept from now (0: too old to keep)."""
    return max(0, round(at - at % _DAY + _USAGE_DAYS * _DAY - now))


def _encode(value: object) -> str | None:
    """A job field as the hash keeps it; None is an absent field."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, tuple):
        return json.dumps(list(value))
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _decode_job(found: dict[str, str]) -> Job:
    values: dict[str, Any] = {}
    for name, kind in _JOB_TYPES.items():
        raw = found.get(name)
        if raw is None:
            continue
        base = kind.split("|")[0].strip()
        if base == "bool":
            values[name] = raw == "1"
        elif base == "int":
            values[name] = int(raw)
        elif base == "float":
            values[name] = float(raw)
        elif base.startswith("tuple"):
            values[name] = tuple(json.loads(raw))
        else:
            values[name] = raw
    return Job(**values)
