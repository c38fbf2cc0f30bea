"""RedisStore's usage, limits and statistics: aggregates by user, day, model and chat, kept
as the scripts record them (a job's usage is recorded when it is finished)."""

from __future__ import annotations

import time

from bot.store.base import (
    CHARGE_MEMORY_SECONDS,
    DAY,
    Acceptance,
    Limits,
    Stats,
    Usage,
    UsageKind,
    UsageTotal,
)
from bot.store.redis_db import COUNTS, FAILURES, PREFIX, RedisConnection, day_name, translated, wait

# Usage by user and by day is kept this many days: /usage asks for this month, /stats for the
# last week.
USAGE_DAYS_KEPT = 40
CHATS_KEPT = 10_000  # all-time audio per chat, for /stats's top chats
_RECENT_FAILURES = 5


class RedisUsage(RedisConnection):
    """The UsageStore part of RedisStore."""

    @translated
    async def add_usage(self, usage: Usage) -> None:
        now = time.time()
        at = usage.at or now
        await self._scripts["ADD_USAGE"](
            args=[
                PREFIX,
                usage.user_id,
                usage.chat_id,
                _aggregated_as(usage),
                repr(float(usage.audio_seconds)),
                usage.input_tokens,
                usage.output_tokens,
                day_name(at),
                usage_keep(at, now),
                CHATS_KEPT,
            ]
        )

    @translated
    async def usage_since(self, user_id: int, since: float) -> list[UsageTotal]:
        """By UTC day: `since` counts from the start of its day; at most 40 days back."""
        now = time.time()
        first = max(since - since % DAY, now - now % DAY - (USAGE_DAYS_KEPT - 1) * DAY)
        pipe = self.redis.pipeline(transaction=False)
        day = first
        while day <= now:
            pipe.hgetall(f"{PREFIX}usage:user:{user_id}:{day_name(day)}")
            day += DAY
        totals: dict[str, dict[str, float]] = {}
        for found in await pipe.execute():
            _add_up(totals, found)
        return _totals(totals)

    @translated
    async def quota_used(self, subject: int, since: float) -> float:
        """Charges of the UTC day `since` falls in (the quota's day)."""
        found = await wait(self.redis.hget(f"{PREFIX}quota:{subject}:{day_name(since)}", "total"))
        return float(found or 0)

    @translated
    async def accept_request(self, limits: Limits) -> Acceptance:
        ceiling = limits.quota_ceiling
        outcome, *rest = await self._run(
            "ACCEPT_REQUEST",
            [],
            [
                PREFIX,
                limits.subject,
                repr(limits.now),
                limits.jobs_per_minute,
                "" if ceiling is None else repr(ceiling),
                repr(limits.rate_since),
                day_name(limits.now),
                CHARGE_MEMORY_SECONDS,
            ],
        )
        if outcome == "over_rate":
            return Acceptance("over_rate", retry_in=limits.rate_retry_in(float(rest[0])))
        if outcome == "over_quota":
            return Acceptance("over_quota", retry_in=limits.quota_retry_in)
        return Acceptance("queued")

    @translated
    async def recent_job_times(self, subject: int, since: float) -> list[float]:
        key = f"{PREFIX}limit:{subject}:jobs"
        found = await wait(self.redis.zrangebyscore(key, since, "+inf", withscores=True))
        return [float(score) for _, score in found]

    @translated
    async def stats(self, days: int = 7) -> Stats:
        now = time.time()
        today = now - now % DAY
        day_names = [day_name(today - back * DAY) for back in range(min(days, USAGE_DAYS_KEPT))]
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(COUNTS)
        pipe.hgetall(f"{PREFIX}usage:models")
        pipe.zrevrange(f"{PREFIX}usage:chats", 0, 4, withscores=True)
        pipe.lrange(FAILURES, 0, -1)
        pipe.hgetall(f"{PREFIX}usage:tokens")
        for name in day_names:
            pipe.hgetall(f"{PREFIX}usage:day:{name}")
        counts, models, chats, failures, tokens, *by_day = await pipe.execute()
        chat_usage: dict[str, dict[str, float]] = {}
        _add_up(chat_usage, tokens)
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
            chat_usage=_totals(chat_usage),
        )

    async def _top_chats(self, chats: list[tuple[str, float]]) -> list[tuple[int, int, float]]:
        if not chats:
            return []
        counts = await wait(
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


def usage_keep(at: float, now: float) -> int:
    """Seconds the by-day aggregates of `at`'s day are kept from now (0: too old to keep)."""
    return max(0, round(at - at % DAY + USAGE_DAYS_KEPT * DAY - now))


def _aggregated_as(usage: Usage) -> str:
    """The name usage is added up under: the model, and the kind unless a transcription
    ("gpt-4o-mini|translation"); the aggregates' fields are that name, "|", and n, s, i or o."""
    if usage.kind is UsageKind.TRANSCRIPTION:
        return usage.model
    return f"{usage.model}|{usage.kind.value}"


def _add_up(totals: dict[str, dict[str, float]], fields: dict[str, str]) -> None:
    for name, value in fields.items():
        aggregated, _, what = name.rpartition("|")
        slot = totals.setdefault(aggregated, {})
        slot[what] = slot.get(what, 0.0) + float(value)


def _totals(totals: dict[str, dict[str, float]]) -> list[UsageTotal]:
    found = []
    for aggregated, t in totals.items():
        model, _, kind = aggregated.partition("|")
        if not kind:  # a transcription, or tokens recorded before usage had kinds
            tokens = t.get("i", 0) or t.get("o", 0)
            kind = UsageKind.CHAT if tokens and not t.get("s") else UsageKind.TRANSCRIPTION
        found.append(
            UsageTotal(
                model,
                int(t.get("n", 0)),
                t.get("s", 0.0),
                int(t.get("i", 0)),
                int(t.get("o", 0)),
                UsageKind(kind),
            )
        )
    return sorted(found, key=lambda total: (total.model, total.kind))
