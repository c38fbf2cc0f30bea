"""The Store contract, the same for every backend: settings, dedup, leases, retention."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.store import NewJob, Store, open_store


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


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.sqlite3'}"


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    opened = open_store(store_url)
    await opened.open()
    yield opened
    await opened.close()


async def test_settings_survive_a_reopen(store_url: str) -> None:
    first = open_store(store_url)
    await first.open()
    await first.set_user_model(5, "gpt-4o-transcribe")
    await first.set_chat_auto_transcribe(-7, False)
    await first.set_chat_model(-7, "gpt-4o-transcribe")
    await first.close()
    second = open_store(store_url)
    await second.open()
    assert await second.get_user_model(5) == "gpt-4o-transcribe"
    assert await second.get_user_model(6) is None
    chat = await second.get_chat_settings(-7)
    assert (chat.model, chat.auto_transcribe) == ("gpt-4o-transcribe", False)
    await second.close()


async def test_an_update_is_claimed_once_and_can_be_given_back(store: Store) -> None:
    assert await store.claim_update(1)
    assert not await store.claim_update(1)
    await store.forget_update(1)
    assert await store.claim_update(1)


async def test_one_job_per_chat_and_message(store: Store) -> None:
    assert await store.enqueue(job(1))
    assert not await store.enqueue(job(1))
    assert await store.enqueue(job(1, chat_id=2))


async def test_a_lease_keeps_others_off_until_it_expires(store: Store) -> None:
    await store.enqueue(job(1))
    [taken] = await store.claim_jobs("worker-a", 10, lease_seconds=0.3)
    assert taken.attempts == 1
    assert await store.claim_jobs("worker-b", 10, lease_seconds=0.3) == []
    await store.renew_leases("worker-a", [taken.id], 0.3)
    await asyncio.sleep(0.2)
    assert await store.claim_jobs("worker-b", 10, lease_seconds=0.3) == []  # renewed
    await asyncio.sleep(0.35)
    [again] = await store.claim_jobs("worker-b", 10, lease_seconds=30)  # worker-a is gone
    assert again.id == taken.id
    assert again.attempts == 2


async def test_placeholder_is_remembered_for_a_retry(store: Store) -> None:
    await store.enqueue(job(1))
    [taken] = await store.claim_jobs("a", 1, 30)
    await store.set_placeholder(taken.id, 555)
    await store.retry_job(taken.id, "Telegram: timed out", delay=0)
    [retried] = await store.claim_jobs("a", 1, 30)
    assert retried.placeholder_id == 555
    assert retried.error == "Telegram: timed out"


async def test_retry_waits_for_its_delay(store: Store) -> None:
    await store.enqueue(job(1))
    [taken] = await store.claim_jobs("a", 1, 30)
    await store.retry_job(taken.id, "later", delay=0.3)
    assert await store.claim_jobs("a", 1, 30) == []
    await asyncio.sleep(0.35)
    assert len(await store.claim_jobs("a", 1, 30)) == 1


async def test_shutdown_release_and_restart_recovery(store: Store) -> None:
    for message_id in (1, 2, 3):
        await store.enqueue(job(message_id))
    taken = await store.claim_jobs("old-process", 2, lease_seconds=600)
    assert len(taken) == 2
    assert await store.release_jobs("old-process") == 2
    taken = await store.claim_jobs("crashed-process", 3, lease_seconds=600)
    assert len(taken) == 3
    assert await store.recover_jobs() == 3  # the process that held them is gone
    assert len(await store.claim_jobs("new-process", 3, lease_seconds=600)) == 3


async def test_finished_jobs_are_pruned_after_retention(store: Store) -> None:
    for message_id in (1, 2, 3):
        await store.enqueue(job(message_id))
    first, second, _ = await store.claim_jobs("a", 3, 30)
    await store.finish_job(first.id, 30.0)
    await store.fail_job(second.id, "CorruptAudio: bad")
    assert await store.prune(older_than_seconds=3600) == 0
    await asyncio.sleep(0.05)
    assert await store.prune(older_than_seconds=0.01) == 2
    stats = await store.stats()
    assert stats.by_status == {"running": 1}


async def test_limits_and_statistics(store: Store) -> None:
    await store.enqueue(job(1, user_id=10))
    await store.enqueue(job(2, user_id=10))
    await store.enqueue(job(3, user_id=11))
    times = await store.user_job_times(10, since=0)
    assert len(times) == 2
    assert times == sorted(times)
    assert await store.user_audio_seconds_since(10, since=0) == 60.0
    first, second, third = await store.claim_jobs("a", 3, 30)
    await store.finish_job(first.id, 90.0)
    await store.fail_job(second.id, "UpstreamRejected: too long")
    assert await store.user_audio_seconds_since(10, since=0) == 90.0  # measured, not declared
    stats = await store.stats()
    assert stats.by_status == {"done": 1, "failed": 1, "running": 1}
    assert stats.minutes_by_model == {"gpt-4o-mini-transcribe": 1.5}
    assert stats.recent_failures == [(second.id, "UpstreamRejected: too long")]
    assert third.user_id == 11
