"""The Store contract, the same for every backend: settings, dedup, leases, retention.

Every test runs on SQLite and on Redis (a real redis-server), except where it says otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from bot.config import RedisLocation, database_location
from bot.store import (
    LeaseLost,
    Limits,
    NewJob,
    Prefs,
    RedisStore,
    Store,
    UpdateBeingHandled,
    Usage,
    UsageKind,
    open_store,
)
from bot.store.redis_db import PREFIX, day_name
from bot.store.sqlite_schema import MIGRATIONS
from tests.conftest import BACKENDS, backend_url


def job(message_id: int, *, chat_id: int = 1, user_id: int = 10) -> NewJob:
    return NewJob(
        chat_id=chat_id,
        message_id=message_id,
        user_id=user_id,
        chat_type="private",
        kind="voice",
        file_id=f"file-{message_id}",
        file_unique_id=f"unique-{message_id}",
        model="gpt-4o-mini-transcribe",
        duration=30,
    )


async def enqueue(store: Store, new: NewJob) -> bool:
    """Queue a job with no limits (reserving its declared duration): True when it is new."""
    limits = Limits(new.user_id, time.time(), reserve_seconds=new.duration or 0)
    return (await store.accept_job(None, new, limits)).outcome == "queued"


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return backend_url(request, request.param, tmp_path)


@contextlib.asynccontextmanager
async def opened(url: str) -> AsyncIterator[Store]:
    store = open_store(url)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    async with opened(store_url) as store:
        yield store


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[Store]:
    async with opened(f"sqlite:///{tmp_path / 'store.sqlite3'}") as store:
        yield store


async def test_settings_survive_a_reopen(store_url: str) -> None:
    first = open_store(store_url)
    await first.open()
    await first.set_pref("user", 5, "model", "gpt-4o-transcribe")
    await first.set_pref("user", 5, "prompt", "Kubernetes, Nguyễn")
    await first.set_pref("chat", -7, "auto_transcribe", False)
    await first.set_pref("chat", -7, "model", "gpt-4o-transcribe")
    await first.close()
    second = open_store(store_url)
    await second.open()
    user = await second.get_prefs("user", 5)
    assert (user.model, user.prompt) == ("gpt-4o-transcribe", "Kubernetes, Nguyễn")
    assert await second.get_prefs("user", 6) == Prefs()
    chat = await second.get_prefs("chat", -7)
    assert (chat.model, chat.auto_transcribe) == ("gpt-4o-transcribe", False)
    await second.close()


async def test_an_update_is_claimed_once_and_can_be_given_back(store: Store) -> None:
    assert await store.claim_update(1)
    await store.forget_update(1)  # could not be accepted: it will be delivered again
    assert await store.claim_update(1)
    await store.confirm_update(1)
    assert not await store.claim_update(1)
    assert await store.claim_update(70_000)  # another range of ids


async def test_redis_update_held_by_a_replica_waits_for_it_or_its_hold_to_end(
    redis_url: str,
) -> None:
    location = database_location(redis_url)
    assert isinstance(location, RedisLocation)
    first, second = RedisStore(location, update_hold_seconds=0.3), RedisStore(location)
    await first.open()
    await second.open()
    try:
        assert await first.claim_update(5)
        with pytest.raises(UpdateBeingHandled):
            await second.claim_update(5)  # answered 503: Telegram delivers it again later
        await second.forget_update(5)  # not its claim: changes nothing
        with pytest.raises(UpdateBeingHandled):
            await second.claim_update(5)
        await first.confirm_update(5)
        assert not await second.claim_update(5)  # accepted once, by the first

        assert await first.claim_update(6)  # and then the first dies before accepting it
        await asyncio.sleep(0.35)
        assert await second.claim_update(6)
    finally:
        await first.close()
        await second.close()


async def test_one_job_per_chat_and_message(store: Store) -> None:
    assert await enqueue(store, job(1))
    assert not await enqueue(store, job(1))
    assert await enqueue(store, job(1, chat_id=2))


async def test_a_lease_keeps_others_off_until_it_expires(store: Store) -> None:
    await enqueue(store, job(1))
    [taken] = await store.claim_jobs(
        "worker-a", 10, lease_seconds=0.3, max_attempts=5, gave_up="crashed 0a1b2c"
    )
    assert taken.attempts == 1
    assert (
        await store.claim_jobs(
            "worker-b", 10, lease_seconds=0.3, max_attempts=5, gave_up="crashed 0a1b2c"
        )
        == []
    )
    await store.renew_leases("worker-a", [taken.id], 0.3)
    await asyncio.sleep(0.2)
    assert (
        await store.claim_jobs(
            "worker-b", 10, lease_seconds=0.3, max_attempts=5, gave_up="crashed 0a1b2c"
        )
        == []
    )  # renewed
    await asyncio.sleep(0.35)
    # worker-a is gone. (Every worker has the same lease: on Redis a job is taken over once
    # its entry has been idle for the claimer's lease.)
    [again] = await store.claim_jobs(
        "worker-b", 10, lease_seconds=0.3, max_attempts=5, gave_up="crashed 0a1b2c"
    )
    assert again.id == taken.id
    assert again.attempts == 2


async def test_renewing_says_which_leases_are_still_held(store: Store) -> None:
    """A worker that stalled past its lease learns from its renewal that the job is gone."""
    await enqueue(store, job(1))
    await enqueue(store, job(2))
    taken = await store.claim_jobs("worker-a", 2, 0.3, max_attempts=5, gave_up="crashed 0a1b2c")
    assert len(taken) == 2
    await asyncio.sleep(0.35)
    [lost] = await store.claim_jobs("worker-b", 1, 0.3, max_attempts=5, gave_up="crashed 0a1b2c")
    kept = next(j.id for j in taken if j.id != lost.id)
    assert await store.renew_leases("worker-a", [j.id for j in taken], 0.3) == {kept}
    assert await store.renew_leases("worker-b", [lost.id], 0.3) == {lost.id}
    await store.finish_job(lost, 30.0)
    assert await store.renew_leases("worker-b", [lost.id], 0.3) == set()


async def test_a_request_takes_a_place_in_the_per_minute_window_as_a_job_does(
    store: Store,
) -> None:
    now = time.time()
    limits = Limits(10, now, jobs_per_minute=3, daily_seconds=600, reserve_seconds=30)
    assert (await store.accept_job(None, job(1), limits)).outcome == "queued"
    assert (await store.accept_request(limits)).outcome == "queued"
    assert (await store.accept_request(limits)).outcome == "queued"
    refused = await store.accept_request(limits)
    assert refused.outcome == "over_rate"
    assert 0 < refused.retry_in <= 60
    assert (await store.accept_job(None, job(2), limits)).outcome == "over_rate"
    assert await store.quota_used(10, now - 60) == 30  # the job's reservation, nothing more
    later = Limits(10, now + 61, jobs_per_minute=3, daily_seconds=600, reserve_seconds=30)
    assert (await store.accept_job(None, job(2), later)).outcome == "queued"


async def test_a_request_is_refused_once_the_days_quota_is_used(store: Store) -> None:
    now = time.time()
    limits = Limits(10, now, jobs_per_minute=0, daily_seconds=30, reserve_seconds=30)
    assert (await store.accept_request(limits)).outcome == "queued"  # nothing used yet
    assert (await store.accept_job(None, job(1), limits)).outcome == "queued"  # all 30 s
    refused = await store.accept_request(limits)
    assert refused.outcome == "over_quota"
    assert 0 < refused.retry_in <= 24 * 3600


async def test_placeholder_is_remembered_for_a_retry(store: Store) -> None:
    await enqueue(store, job(1))
    [taken] = await store.claim_jobs("a", 1, 30, max_attempts=5, gave_up="crashed 0a1b2c")
    await store.set_placeholder(taken, 555)
    await store.retry_job(taken, "Telegram: timed out", delay=0)
    [retried] = await store.claim_jobs("a", 1, 30, max_attempts=5, gave_up="crashed 0a1b2c")
    assert retried.placeholder_id == 555
    assert retried.error == "Telegram: timed out"


async def test_retry_waits_for_its_delay(store: Store) -> None:
    await enqueue(store, job(1))
    [taken] = await store.claim_jobs("a", 1, 30, max_attempts=5, gave_up="crashed 0a1b2c")
    await store.retry_job(taken, "later", delay=0.3)
    assert await store.claim_jobs("a", 1, 30, max_attempts=5, gave_up="crashed 0a1b2c") == []
    await asyncio.sleep(0.35)
    assert len(await store.claim_jobs("a", 1, 30, max_attempts=5, gave_up="crashed 0a1b2c")) == 1


async def test_shutdown_gives_running_jobs_back(store: Store) -> None:
    for message_id in (1, 2, 3):
        await enqueue(store, job(message_id))
    taken = await store.claim_jobs(
        "old-process", 2, lease_seconds=600, max_attempts=5, gave_up="crashed 0a1b2c"
    )
    assert len(taken) == 2
    assert await store.release_jobs("old-process") == 2
    again = await store.claim_jobs(
        "new-process", 3, lease_seconds=600, max_attempts=5, gave_up="crashed 0a1b2c"
    )
    assert len(again) == 3
    assert [j.attempts for j in again] == [1, 1, 1]  # being stopped is not the job's fault
    assert (await store.stats()).by_status == {"running": 3}


async def test_sqlite_restart_takes_back_what_the_dead_process_ran(sqlite_store: Store) -> None:
    # One process owns a SQLite file: at start, whatever is running belonged to a dead one.
    store = sqlite_store
    for message_id in (1, 2, 3):
        await enqueue(store, job(message_id))
    assert (
        len(
            await store.claim_jobs(
                "crashed-process", 3, lease_seconds=600, max_attempts=5, gave_up="crashed 0a1b2c"
            )
        )
        == 3
    )
    assert await store.recover_jobs() == 3
    assert (
        len(
            await store.claim_jobs(
                "new-process", 3, lease_seconds=600, max_attempts=5, gave_up="crashed 0a1b2c"
            )
        )
        == 3
    )


async def test_redis_start_leaves_other_replicas_jobs_and_takes_over_after_the_lease(
    redis_url: str,
) -> None:
    async with opened(redis_url) as alive, opened(redis_url) as dead, opened(redis_url) as new:
        for message_id in (1, 2, 3):
            await enqueue(alive, job(message_id))
        [running] = await alive.claim_jobs(
            "replica-a", 1, lease_seconds=0.6, max_attempts=5, gave_up="crashed 0a1b2c"
        )
        crashed = await dead.claim_jobs(
            "replica-b", 2, lease_seconds=0.6, max_attempts=5, gave_up="crashed 0a1b2c"
        )
        assert len(crashed) == 2
        assert await new.recover_jobs() == 0  # another replica may be running them
        assert (
            await new.claim_jobs(
                "replica-c", 3, lease_seconds=0.6, max_attempts=5, gave_up="crashed 0a1b2c"
            )
            == []
        )
        for _ in range(4):
            await asyncio.sleep(0.2)
            await alive.renew_leases("replica-a", [running.id], 0.6)
        taken = await new.claim_jobs(
            "replica-c", 3, lease_seconds=0.6, max_attempts=5, gave_up="crashed 0a1b2c"
        )
        assert sorted(j.id for j in taken) == sorted(j.id for j in crashed)
        assert all(j.attempts == 2 for j in taken)
        await new.finish_job(taken[0], 30.0)
        await alive.finish_job(running, 30.0)
        stats = await new.stats()
        assert stats.by_status == {"done": 2, "running": 1}


async def test_finished_jobs_are_pruned_after_retention(store: Store) -> None:
    for message_id in (1, 2, 3):
        await enqueue(store, job(message_id))
    first, second, _ = await store.claim_jobs("a", 3, 30, max_attempts=5, gave_up="crashed 0a1b2c")
    await store.finish_job(first, 30.0)
    await store.fail_job(second, "CorruptAudio: bad")
    assert await store.prune(older_than_seconds=3600) == 0
    await asyncio.sleep(0.05)
    assert await store.prune(older_than_seconds=0.01) == 2
    stats = await store.stats()
    assert stats.by_status == {"running": 1}


async def test_limits_and_statistics(store: Store) -> None:
    await enqueue(store, job(1, user_id=10))
    await enqueue(store, job(2, user_id=10))
    await enqueue(store, job(3, user_id=11))
    now = time.time()
    today = now - now % 86400
    assert await store.quota_used(10, since=today) == 60.0  # reserved: the declared seconds
    first, second, third = await store.claim_jobs(
        "a", 3, 30, max_attempts=5, gave_up="crashed 0a1b2c"
    )
    await store.finish_job(first, 90.0)
    await store.fail_job(second, "UpstreamRejected: too long")
    assert await store.quota_used(10, since=today) == 90.0  # measured; the failure released
    stats = await store.stats()
    assert stats.by_status == {"done": 1, "failed": 1, "running": 1}
    assert stats.minutes_by_model == {"gpt-4o-mini-transcribe": 1.5}  # from finish_job
    assert stats.recent_failures == [(second.id, "UpstreamRejected: too long")]
    assert third.user_id == 11


async def test_preferences_are_set_and_cleared_per_scope(store: Store) -> None:
    await store.set_pref("chat", -7, "quiet", True)
    await store.set_pref("chat", -7, "language", "vi")
    await store.set_pref("user", -7, "language", "ru")  # same number, other scope
    assert await store.get_prefs("chat", -7) == Prefs(quiet=True, language="vi")
    await store.set_pref("chat", -7, "language", None)
    assert await store.get_prefs("chat", -7) == Prefs(quiet=True)
    assert (await store.get_prefs("user", -7)).language == "ru"
    with pytest.raises(ValueError, match="unknown"):
        await store.set_pref("user", 1, "colour", "red")


async def test_a_chats_and_a_persons_preferences_come_together(store: Store) -> None:
    await store.set_pref("chat", -7, "language", "vi")
    await store.set_pref("user", 5, "prompt", "Nguyễn")
    await store.set_pref("user", -7, "model", "gpt-4o-transcribe")  # not the chat's
    chat, user = await store.get_chat_and_user_prefs(-7, 5)
    assert (chat, user) == (Prefs(language="vi"), Prefs(prompt="Nguyễn"))
    assert await store.get_chat_and_user_prefs(3, 3) == (Prefs(), Prefs())


async def test_a_claim_is_given_once_until_released_or_expired(store: Store) -> None:
    assert await store.claim_once("summary:1", 60)
    assert not await store.claim_once("summary:1", 60)
    await store.release_claim("summary:1")
    assert await store.claim_once("summary:1", 0.2)
    await asyncio.sleep(0.3)
    assert await store.claim_once("summary:1", 60)


async def test_a_job_keeps_its_hints_and_replies(store: Store) -> None:
    new = replace(
        job(1, chat_id=-5),
        language="vi",
        prompt="Nguyễn, PostgreSQL",
        quiet=True,
        sender_name="Ann <3",
        replaces=(40, 41),
    )
    assert await enqueue(store, new)
    (taken,) = await store.claim_jobs("a", 1, 30, max_attempts=5, gave_up="crashed 0a1b2c")
    assert (taken.language, taken.prompt, taken.quiet) == ("vi", "Nguyễn, PostgreSQL", True)
    assert (taken.sender_name, taken.replaces) == ("Ann <3", (40, 41))
    await store.finish_job(taken, 30.0, reply_ids=(50, 51, 52))
    done = await store.get_job(taken.id)
    assert done is not None
    assert (done.status, done.reply_ids, done.audio_seconds) == ("done", (50, 51, 52), 30.0)
    assert await store.get_job(taken.id + 100) is None


async def test_the_same_message_is_queued_once_per_model(store: Store) -> None:
    assert await enqueue(store, job(1))
    assert not await enqueue(store, job(1))
    assert await enqueue(store, replace(job(1), model="gpt-4o-transcribe"))


async def test_a_failed_job_asked_for_again_is_queued_afresh(store: Store) -> None:
    assert await enqueue(store, job(1))
    (taken,) = await store.claim_jobs("a", 1, 30, max_attempts=5, gave_up="crashed 0a1b2c")
    await store.finish_job(taken, 30.0)
    assert not await enqueue(store, job(1))  # done: stays done
    assert await enqueue(store, job(2))
    (taken,) = await store.claim_jobs("a", 1, 30, max_attempts=5, gave_up="crashed 0a1b2c")
    await store.fail_job(taken, "UpstreamRejected: bad")
    assert await enqueue(store, replace(job(2), explicit=True))
    (again,) = await store.claim_jobs("a", 1, 30, max_attempts=5, gave_up="crashed 0a1b2c")
    assert (again.message_id, again.explicit, again.attempts, again.error) == (2, True, 1, None)


async def test_cached_transcripts_expire(store: Store) -> None:
    assert await store.get_transcript("k") is None
    await store.put_transcript("k", "hello", ttl_seconds=0.2)
    await store.put_transcript("never", "kept", ttl_seconds=0)
    assert await store.get_transcript("k") == "hello"
    assert await store.get_transcript("never") is None
    await asyncio.sleep(0.3)
    assert await store.get_transcript("k") is None


async def test_usage_adds_up_per_model_and_feeds_the_statistics(store: Store) -> None:
    await enqueue(store, job(1, chat_id=-5, user_id=10))
    await enqueue(store, job(2, chat_id=-5, user_id=10))
    first, second = await store.claim_jobs("a", 2, 30, max_attempts=5, gave_up="crashed 0a1b2c")
    await store.finish_job(first, 120.0)
    await store.finish_job(second, 0)  # answered from the cache: free
    await store.add_usage(
        Usage(10, -5, "gpt-4o-mini", input_tokens=900, output_tokens=80, kind=UsageKind.SUMMARY)
    )
    await store.add_usage(Usage(user_id=10, chat_id=3, model="gpt-4o-transcribe", audio_seconds=60))
    await store.add_usage(Usage(user_id=11, chat_id=3, model="gpt-4o-transcribe", audio_seconds=6))
    await store.add_usage(
        Usage(user_id=10, chat_id=3, model="gpt-4o-transcribe", audio_seconds=600, at=1000.0)
    )
    totals = {t.model: t for t in await store.usage_since(10, since=2000.0)}
    assert set(totals) == {"gpt-4o-mini", "gpt-4o-mini-transcribe", "gpt-4o-transcribe"}
    assert (
        totals["gpt-4o-mini-transcribe"].count,
        totals["gpt-4o-mini-transcribe"].audio_seconds,
    ) == (1, 120.0)
    assert totals["gpt-4o-transcribe"].audio_seconds == 60.0
    assert (totals["gpt-4o-mini"].input_tokens, totals["gpt-4o-mini"].output_tokens) == (900, 80)
    stats = await store.stats(days=7)
    assert stats.minutes_by_model == {"gpt-4o-mini-transcribe": 2.0, "gpt-4o-transcribe": 11.1}
    (today,) = stats.minutes_by_day.values()
    assert today == {"gpt-4o-mini-transcribe": 2.0, "gpt-4o-transcribe": 1.1}
    assert stats.top_chats[0] == (3, 3, 11.1)
    assert stats.top_chats[1] == (-5, 1, 2.0)


async def test_summaries_and_translations_are_counted_apart(store: Store) -> None:
    chat = "gpt-4o-mini"
    summary, translation = UsageKind.SUMMARY, UsageKind.TRANSLATION
    await store.add_usage(Usage(10, -5, chat, input_tokens=900, output_tokens=80, kind=summary))
    await store.add_usage(Usage(10, -5, chat, input_tokens=100, output_tokens=20, kind=summary))
    await store.add_usage(Usage(10, 3, chat, input_tokens=300, output_tokens=290, kind=translation))
    await store.add_usage(Usage(11, 3, chat, input_tokens=5, output_tokens=5, kind=translation))
    await store.add_usage(Usage(10, 3, "gpt-4o-transcribe", audio_seconds=60))

    totals = await store.usage_since(10, since=0)
    assert [
        (t.model, t.kind, t.count, t.audio_seconds, t.input_tokens, t.output_tokens) for t in totals
    ] == [
        (chat, summary, 2, 0.0, 1000, 100),
        (chat, translation, 1, 0.0, 300, 290),
        ("gpt-4o-transcribe", UsageKind.TRANSCRIPTION, 1, 60.0, 0, 0),
    ]
    stats = await store.stats()
    assert [
        (t.model, t.kind, t.count, t.input_tokens, t.output_tokens) for t in stats.chat_usage
    ] == [
        (chat, summary, 2, 1000, 100),
        (chat, translation, 2, 305, 295),
    ]
    assert stats.minutes_by_model == {"gpt-4o-transcribe": 1.0}


async def test_sqlite_tokens_from_before_usage_had_kinds_count_as_chat(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:
        for script in MIGRATIONS[:3]:
            db.executescript(script)
        db.execute("PRAGMA user_version=3")
        db.execute(
            "INSERT INTO usage (user_id, chat_id, model, audio_seconds, input_tokens, "
            "output_tokens, at) VALUES (5, 5, 'gpt-4o-mini', 0, 700, 70, 1), "
            "(5, 5, 'gpt-4o-transcribe', 90, 0, 0, 1)"
        )
    async with opened(f"sqlite:///{path}") as store:
        totals = await store.usage_since(5, since=0)
        stats = await store.stats()
    assert [(t.model, t.kind, t.input_tokens, t.audio_seconds) for t in totals] == [
        ("gpt-4o-mini", UsageKind.CHAT, 700, 0.0),
        ("gpt-4o-transcribe", UsageKind.TRANSCRIPTION, 0, 90.0),
    ]
    assert [(t.model, t.kind) for t in stats.chat_usage] == [("gpt-4o-mini", UsageKind.CHAT)]


async def test_redis_tokens_from_before_usage_had_kinds_count_as_chat(redis_url: str) -> None:
    import redis

    admin = redis.Redis.from_url(redis_url)
    mine = f"{PREFIX}usage:user:5:{day_name(time.time())}"
    admin.hset(mine, mapping={"gpt-4o-mini|n": 1, "gpt-4o-mini|i": 700, "gpt-4o-mini|o": 70})
    admin.close()
    async with opened(redis_url) as store:
        await store.add_usage(Usage(5, 5, "gpt-4o-mini", input_tokens=9, kind=UsageKind.SUMMARY))
        totals = await store.usage_since(5, since=0)
    assert [(t.model, t.kind, t.input_tokens, t.output_tokens) for t in totals] == [
        ("gpt-4o-mini", UsageKind.CHAT, 700, 70),
        ("gpt-4o-mini", UsageKind.SUMMARY, 9, 0),
    ]


async def test_sqlite_version_1_database_keeps_its_settings_and_usage(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(MIGRATIONS[0] + "PRAGMA user_version=1;")
        db.execute("INSERT INTO users VALUES (5, 'gpt-4o-transcribe', 0)")
        db.execute("INSERT INTO chats VALUES (-7, NULL, 0, 0)")
        db.execute(
            "INSERT INTO jobs (chat_id, message_id, user_id, chat_type, kind, file_id, "
            "file_unique_id, model, status, audio_seconds, created_at, finished_at) "
            "VALUES (5, 1, 5, 'private', 'voice', 'f', 'u', 'gpt-4o-transcribe', 'done', 90, 1, 2)"
        )
    store = open_store(f"sqlite:///{path}")
    await store.open()
    assert (await store.get_prefs("user", 5)).model == "gpt-4o-transcribe"
    assert (await store.get_prefs("chat", -7)).auto_transcribe is False
    (total,) = await store.usage_since(5, since=0)
    assert (total.model, total.audio_seconds) == ("gpt-4o-transcribe", 90.0)
    old = await store.get_job(1)
    assert old is not None
    assert (old.status, old.replaces, old.quiet) == ("done", (), False)
    await store.close()


async def test_redis_that_may_evict_keys_is_warned_about(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    import redis

    admin = redis.Redis.from_url(redis_url)
    admin.config_set("maxmemory-policy", "allkeys-lru")
    try:
        with caplog.at_level(logging.WARNING, logger="bot.store"):
            async with opened(redis_url):
                pass
    finally:
        admin.config_set("maxmemory-policy", "noeviction")
        admin.close()
    assert "maxmemory-policy allkeys-lru" in caplog.text
    assert "set maxmemory-policy noeviction" in caplog.text


async def test_redis_takeover_reaches_past_a_long_pending_list(redis_url: str) -> None:
    # A claim looks at a bounded part of the pending list at a time and goes on from there the
    # next time: a dead replica's job behind a thousand live ones is still taken over.
    async with opened(redis_url) as alive, opened(redis_url) as dead, opened(redis_url) as new:
        for message_id in range(1101):
            await enqueue(alive, job(message_id))
        running = await alive.claim_jobs(
            "replica-a", 1100, lease_seconds=0.5, max_attempts=5, gave_up="crashed 0a1b2c"
        )
        [lost] = await dead.claim_jobs(
            "replica-b", 1, lease_seconds=0.5, max_attempts=5, gave_up="crashed 0a1b2c"
        )
        running_ids = [j.id for j in running]
        taken: list[int] = []
        for _ in range(20):
            await asyncio.sleep(0.15)
            await alive.renew_leases("replica-a", running_ids, 0.5)
            taken += [
                j.id
                for j in await new.claim_jobs(
                    "replica-c", 1, lease_seconds=0.5, max_attempts=5, gave_up="crashed 0a1b2c"
                )
            ]
            if taken:
                break
        assert taken == [lost.id]


async def test_job_ids_are_never_reused_after_pruning(store: Store) -> None:
    # Old buttons carry job ids: a pruned job's id must never name a new job.
    await enqueue(store, job(1))
    await enqueue(store, job(2))
    taken = await store.claim_jobs("a", 2, 30, max_attempts=5, gave_up="crashed 0a1b2c")
    for one in taken:
        await store.finish_job(one, 30.0)
    await asyncio.sleep(0.05)
    assert await store.prune(older_than_seconds=0.01) == 2
    await enqueue(store, job(3))
    (newer,) = await store.claim_jobs("a", 1, 30, max_attempts=5, gave_up="crashed 0a1b2c")
    assert newer.id > max(one.id for one in taken)


async def test_the_quota_survives_pruning_and_is_settled_with_what_was_measured(
    store: Store,
) -> None:
    now = time.time()
    today = now - now % 86400
    await enqueue(store, job(1, user_id=10))  # declares 30 s
    undeclared = replace(job(2, user_id=10), duration=None)  # a document: reserve an estimate
    await store.accept_job(None, undeclared, Limits(10, now, reserve_seconds=30))
    assert await store.quota_used(10, since=today) == 60.0
    first, second = await store.claim_jobs("a", 2, 30, max_attempts=5, gave_up="crashed 0a1b2c")
    await store.finish_job(first, 42.0)  # measured longer than declared
    await store.fail_job(second, "CorruptAudio: bad")  # released
    await asyncio.sleep(0.05)
    assert await store.prune(older_than_seconds=0.01) == 2  # JOB_RETENTION_DAYS near 0
    assert await store.quota_used(10, since=today) == 42.0


async def test_accepting_checks_the_limits_in_the_same_step(store: Store) -> None:
    now = time.time()
    limits = Limits(10, now, jobs_per_minute=5, daily_seconds=60, reserve_seconds=25)
    outcomes = await asyncio.gather(*(store.accept_job(100 + i, job(i), limits) for i in range(4)))
    assert sorted(a.outcome for a in outcomes) == ["over_quota", "over_quota", "queued", "queued"]
    refused = next(a for a in outcomes if a.outcome == "over_quota")
    assert 0 < refused.retry_in <= 86400
    # Each update is marked seen by the same step, accepted or refused.
    for i in range(4):
        assert (await store.accept_job(100 + i, job(i), limits)).outcome == "seen"
        assert not await store.claim_update(100 + i)
    rate = Limits(11, now, jobs_per_minute=2, reserve_seconds=1)
    found = [await store.accept_job(None, job(10 + i, user_id=11), rate) for i in range(3)]
    assert [a.outcome for a in found] == ["queued", "queued", "over_rate"]
    assert 59 <= found[2].retry_in <= 60
    assert (await store.accept_job(None, job(10, user_id=11), rate)).outcome == "exists"


async def test_the_quota_takes_what_fits_exactly_then_nothing_more(store: Store) -> None:
    now = time.time()
    assert (
        await store.accept_job(None, job(1), Limits(12, now, daily_seconds=60, reserve_seconds=60))
    ).outcome == "queued"
    # Used up: not even a recording that reserves nothing.
    empty = Limits(12, now, daily_seconds=60, reserve_seconds=0)
    assert (await store.accept_job(None, job(2), empty)).outcome == "over_quota"
    half = Limits(13, now, daily_seconds=60, reserve_seconds=30)
    assert (await store.accept_job(None, job(3), half)).outcome == "queued"
    over = Limits(13, now, daily_seconds=60, reserve_seconds=30.5)
    refused = await store.accept_job(None, job(4), over)
    assert refused.outcome == "over_quota"
    assert 0 < refused.retry_in <= 86400
    assert (await store.accept_job(None, job(5), half)).outcome == "queued"  # 60 of 60


async def test_only_a_failed_job_is_replaced_when_asked_for_again(store: Store) -> None:
    assert await enqueue(store, job(1))
    assert not await enqueue(store, job(1))  # queued
    (taken,) = await store.claim_jobs("a", 1, 30, max_attempts=5, gave_up="crashed 0a1b2c")
    assert not await enqueue(store, job(1))  # running
    await store.fail_job(taken, "UpstreamUnavailable: down")
    assert await enqueue(store, job(1))  # failed: queued afresh, under the same id
    again = await store.get_job(taken.id)
    assert again is not None
    assert again.status == "queued"


async def test_every_claim_counts_and_a_job_claimed_too_often_fails_at_the_claim(
    store: Store,
) -> None:
    await enqueue(store, job(1))
    for attempt in (1, 2):
        (taken,) = await store.claim_jobs(
            f"crashed-{attempt}", 1, 0.2, max_attempts=2, gave_up="crashed 0a1b2c"
        )
        assert (taken.attempts, taken.status) == (attempt, "running")
        await asyncio.sleep(0.25)  # its worker died: the lease runs out
    (last,) = await store.claim_jobs("third", 1, 0.2, max_attempts=2, gave_up="crashed 0a1b2c")
    assert last.status == "failed"
    assert last.error == "crashed 0a1b2c"
    assert await store.claim_jobs("fourth", 1, 0.2, max_attempts=2, gave_up="crashed 0a1b2c") == []
    stats = await store.stats()
    assert stats.by_status == {"failed": 1}
    assert stats.recent_failures[0][0] == last.id
    assert await store.count_queued() == 0


async def test_a_worker_whose_lease_was_taken_over_writes_nothing(store: Store) -> None:
    await enqueue(store, job(1))
    (stale,) = await store.claim_jobs("frozen", 1, 0.2, max_attempts=5, gave_up="crashed 0a1b2c")
    await asyncio.sleep(0.25)
    (fresh,) = await store.claim_jobs("alive", 1, 0.2, max_attempts=5, gave_up="crashed 0a1b2c")
    assert fresh.epoch > stale.epoch
    for write in (
        store.finish_job(stale, 30.0),
        store.fail_job(stale, "late"),
        store.retry_job(stale, "late", delay=0),
        store.set_placeholder(stale, 99),
        store.record_sent(stale, "digest", (99,), True),
    ):
        with pytest.raises(LeaseLost):
            await write
    await store.set_placeholder(fresh, 7)
    await store.finish_job(fresh, 30.0, reply_ids=(7,))
    done = await store.get_job(fresh.id)
    assert done is not None
    assert (done.status, done.placeholder_id, done.sent_ids) == ("done", 7, ())
    assert (await store.stats()).minutes_by_model == {"gpt-4o-mini-transcribe": 0.5}  # once


async def test_a_worker_reclaiming_the_job_it_still_runs_keeps_its_run(store: Store) -> None:
    # Its renewals failed for a while (the store was restarting): the lease ran out, and the
    # same worker took the job back. That is not a new attempt, and its claim stays valid.
    await enqueue(store, job(1))
    (first,) = await store.claim_jobs("worker", 1, 0.2, max_attempts=1, gave_up="crashed 0a1b2c")
    await asyncio.sleep(0.25)
    (again,) = await store.claim_jobs("worker", 1, 0.2, max_attempts=1, gave_up="crashed 0a1b2c")
    assert (again.status, again.attempts, again.epoch) == ("running", 1, first.epoch)
    await store.finish_job(first, 30.0)
    done = await store.get_job(first.id)
    assert done is not None
    assert done.status == "done"
