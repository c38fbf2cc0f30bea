"""Several replicas on one Redis behind one webhook URL: every note answered exactly once."""

from __future__ import annotations

import asyncio
import os
import re
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from bot import i18n
from tests.conftest import (
    SECRET,
    BotFactory,
    BotProcess,
    ProcessFactory,
    eventually,
    next_message_id,
    next_update_id,
    voice_message,
)
from tests.fakes import FakeTelegram, FakeTranscriptionAPI, text_update
from tests.fakes.file_server import FakeFileServer
from tests.redis_server import RedisServer

FIRST_CHAT = 90_000
# Telegram's outgoing limits would make 200 notes take a minute; they are not what is tested.
FAST = {"TELEGRAM_RATE_PER_SECOND": "0", "TELEGRAM_GROUP_RATE_PER_MINUTE": "0"}


@pytest.fixture
def database_url(redis_url: str) -> str:
    """Every bot here shares one Redis database."""
    return redis_url


@pytest.fixture
def restartable_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, with an append-only file, as a deployment runs it:
    what it acknowledged survives a kill."""
    server = RedisServer(tmp_path / "redis", appendonly=True, databases=1)
    server.start()
    yield server
    server.kill()


async def start_replicas(
    bot_process: ProcessFactory, count: int, **settings: str
) -> list[BotProcess]:
    replicas = [bot_process(**FAST, **settings) for _ in range(count)]
    await asyncio.gather(*(replica.start() for replica in replicas))
    return replicas


def notes(tg: FakeTelegram, data: bytes, count: int, first_chat: int) -> list[dict[str, Any]]:
    """`count` voice notes, each in a private chat of its own."""
    return [voice_message(tg, data, chat_id=first_chat + i) for i in range(count)]


async def deliver_spread(replicas: list[BotProcess], updates: list[dict[str, Any]]) -> list[int]:
    """Deliver update i to replica i mod n, 20 at a time, as a load balancer would."""
    gate = asyncio.Semaphore(20)
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    async with httpx.AsyncClient(timeout=10) as http:

        async def one(index: int, update: dict[str, Any]) -> int:
            url = replicas[index % len(replicas)].webhook_url
            async with gate:
                return (await http.post(url, json=update, headers=headers)).status_code

        return list(await asyncio.gather(*(one(i, u) for i, u in enumerate(updates))))


def answered_once(
    tg: FakeTelegram, api: FakeTranscriptionAPI, data: bytes
) -> Callable[[list[dict[str, Any]]], bool]:
    """A predicate: every one of these updates has exactly one bot message, the transcript."""
    expected = api.transcript_for(data)

    def check(updates: list[dict[str, Any]]) -> bool:
        return not not_answered_once(tg, expected, updates)

    return check


def not_answered_once(
    tg: FakeTelegram, expected: str, updates: list[dict[str, Any]]
) -> dict[int, list[str]]:
    """The chats of these updates whose bot messages are not exactly the transcript, with them."""
    by_chat: dict[int, list[str]] = {}
    for (chat_id, _), message in sorted(tg.messages.items()):
        if message.from_bot:
            by_chat.setdefault(chat_id, []).append(message.text or "")
    chats = [u["message"]["chat"]["id"] for u in updates]
    return {c: by_chat.get(c, []) for c in chats if by_chat.get(c) != [expected]}


def jobs_done(replica: BotProcess) -> int:
    return len(re.findall(r"job=\d+ done ", replica.log()))


async def test_two_replicas_answer_200_notes_spread_across_both_exactly_once(
    bot_process: ProcessFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    replicas = await start_replicas(bot_process, 2)
    updates = notes(tg, voice_bytes, 200, FIRST_CHAT)
    assert await deliver_spread(replicas, updates) == [200] * 200
    check = answered_once(tg, api, voice_bytes)
    await tg.wait_for(lambda: check(updates), timeout=60)
    await asyncio.sleep(0.5)  # nothing more comes
    assert check(updates)
    assert len(tg.calls("sendMessage")) == 200  # one placeholder each, edited into the text
    assert len(api.requests) == 200
    done = [jobs_done(replica) for replica in replicas]
    assert sum(done) == 200
    assert min(done) > 0, done  # both took jobs from the shared queue
    # Only one of them registered the webhook.
    assert len(tg.calls("setWebhook")) == 1
    assert len(tg.calls("setMyCommands")) == len(i18n.LANGUAGES)  # one menu a language, once


async def test_a_replica_killed_mid_job_leaves_its_jobs_to_the_other(
    bot_process: ProcessFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    doomed, survivor = await start_replicas(
        bot_process, 2, JOB_LEASE_SECONDS="2", MAX_CONCURRENT_JOBS="4"
    )
    api.delay = 2.0
    updates = notes(tg, voice_bytes, 8, FIRST_CHAT)
    assert await deliver_spread([doomed, survivor], updates) == [200] * 8
    await eventually(lambda: api.in_flight == 8, timeout=15, what="both replicas busy")
    doomed.signal(signal.SIGKILL)
    assert await doomed.wait() == -signal.SIGKILL

    check = answered_once(tg, api, voice_bytes)
    await tg.wait_for(lambda: check(updates), timeout=30)
    await asyncio.sleep(0.5)
    assert check(updates)
    assert len(tg.calls("sendMessage")) == 8  # the taken-over jobs edited their placeholders
    assert jobs_done(survivor) == 8
    assert survivor.log().count("its lease ran out") == 4


async def test_the_same_update_delivered_to_both_replicas_is_answered_once(
    bot_process: ProcessFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    replicas = await start_replicas(bot_process, 2)
    updates = notes(tg, voice_bytes, 5, FIRST_CHAT)
    for update in updates:
        codes = await asyncio.gather(*(replica.deliver(update) for replica in replicas))
        # The one that came second answers 200 if the first had accepted it already, or 503
        # while the first still handles it: then Telegram delivers it again, and it is seen.
        assert 200 in codes
        assert set(codes) <= {200, 503}
        for replica, code in zip(replicas, codes, strict=True):
            if code == 503:
                await eventually_accepted(replica, update, timeout=5)
    check = answered_once(tg, api, voice_bytes)
    await tg.wait_for(lambda: check(updates), timeout=15)
    await asyncio.sleep(1.0)
    assert check(updates)
    assert len(api.requests) == 5
    assert len(tg.calls("sendMessage")) == 5


async def test_redis_restarted_mid_run_loses_nothing(
    bot_process: ProcessFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    voice_bytes: bytes,
    restartable_redis: RedisServer,
) -> None:
    replicas = await start_replicas(
        bot_process,
        2,
        DATABASE_URL=restartable_redis.url(),
        JOB_LEASE_SECONDS="2",
        MAX_CONCURRENT_JOBS="4",
    )
    api.delay = 1.5
    before = notes(tg, voice_bytes, 12, FIRST_CHAT)
    assert await deliver_spread(replicas, before) == [200] * 12
    await eventually(lambda: api.in_flight == 8, timeout=15, what="both replicas busy")
    restartable_redis.kill()  # 8 jobs running, 4 queued

    during = notes(tg, voice_bytes, 6, FIRST_CHAT + 100)
    assert await deliver_spread(replicas, during) == [503] * 6  # Telegram will deliver again
    await asyncio.sleep(1.0)
    restartable_redis.start()

    # Telegram retries what got 503; the bots answer 200 as soon as Redis is back.
    for index, update in enumerate(during):
        replica = replicas[(index + 1) % 2]
        await eventually_accepted(replica, update, timeout=10)
    updates = before + during
    check = answered_once(tg, api, voice_bytes)
    try:
        await tg.wait_for(lambda: check(updates), timeout=40)
    except TimeoutError:  # say which notes went wrong, and how (it failed once under load)
        wrong = not_answered_once(tg, api.transcript_for(voice_bytes), updates)
        raise AssertionError(f"not answered exactly once: {wrong}") from None
    await asyncio.sleep(0.5)
    assert check(updates)
    for replica in replicas:
        log = replica.log()
        assert log.count("the store is unavailable") == 1, log[-3000:]
        assert "the store is back" in log


async def test_a_redis_restart_as_the_api_answers_costs_no_second_request(
    bot_process: ProcessFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    voice_bytes: bytes,
    restartable_redis: RedisServer,
) -> None:
    # The transcript is paid for when Redis is gone: the bot keeps it until Redis is back
    # rather than giving the attempt up (and paying the API for the same note again).
    [bot] = await start_replicas(bot_process, 1, DATABASE_URL=restartable_redis.url())
    api.delay = 1.0
    [note] = notes(tg, voice_bytes, 1, FIRST_CHAT + 300)
    assert await bot.deliver(note) == 200
    await eventually(lambda: api.in_flight == 1, timeout=15, what="the job is upstream")
    restartable_redis.stop()
    await eventually(lambda: api.in_flight == 0, timeout=5, what="the API answered")
    await asyncio.sleep(1.5)
    restartable_redis.start()
    check = answered_once(tg, api, voice_bytes)
    await tg.wait_for(lambda: check([note]), timeout=30)
    await asyncio.sleep(1.0)
    assert [call.ok for call in api.requests] == [True]


async def test_a_redis_pause_longer_than_the_lease_takes_no_job_from_a_live_replica(
    bot_process: ProcessFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    voice_bytes: bytes,
    restartable_redis: RedisServer,
) -> None:
    # While Redis is paused nobody can renew a lease: when it answers again, a job whose
    # worker is alive must not look abandoned (the other replica would pay for it again).
    replicas = await start_replicas(
        bot_process, 2, DATABASE_URL=restartable_redis.url(), JOB_LEASE_SECONDS="2"
    )
    api.delay = 6.0  # upstream all through the pause
    [note] = notes(tg, voice_bytes, 1, FIRST_CHAT + 400)
    assert await replicas[0].deliver(note) == 200
    await eventually(lambda: api.in_flight == 1, timeout=15, what="the job is upstream")
    assert restartable_redis.pid is not None
    os.kill(restartable_redis.pid, signal.SIGSTOP)
    await asyncio.sleep(4.0)
    os.kill(restartable_redis.pid, signal.SIGCONT)
    check = answered_once(tg, api, voice_bytes)
    await tg.wait_for(lambda: check([note]), timeout=30)
    await asyncio.sleep(1.0)
    assert [call.ok for call in api.requests] == [True]
    assert not any("taken over" in replica.log() for replica in replicas)


async def test_a_replica_that_dies_as_it_starts_spends_no_attempts_of_others_jobs(
    bot_process: ProcessFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    voice_bytes: bytes,
    restartable_redis: RedisServer,
) -> None:
    # A replica that crash-loops at start must not take over a dead replica's job each time
    # (every claim is an attempt: the job would be failed, though it harms nobody).
    fast = {"DATABASE_URL": restartable_redis.url(), "JOB_LEASE_SECONDS": "1"}
    async with FakeFileServer() as files:
        # A replica that stays up, its one job slot held by a download that never ends.
        [busy] = await start_replicas(
            bot_process, 1, MAX_CONCURRENT_JOBS="1", LINK_ALLOW_PRIVATE_NETWORKS="true", **fast
        )
        link = files.stall("/never.mp3", seconds=60)
        message_id = next_message_id()
        tg.add_message(FIRST_CHAT + 600, message_id, text=link)
        update = text_update(
            next_update_id(),
            chat_id=FIRST_CHAT + 600,
            user_id=FIRST_CHAT + 600,
            message_id=message_id,
            text=link,
        )
        assert await busy.deliver(update) == 200
        await eventually(lambda: len(files.requests) == 1, timeout=15, what="the slot is held")
        api.delay = 30.0  # the note's first worker never sees its answer
        [first] = await start_replicas(bot_process, 1, **fast)
        [note] = notes(tg, voice_bytes, 1, FIRST_CHAT + 500)
        assert await first.deliver(note) == 200
        await eventually(lambda: api.in_flight == 1, timeout=15, what="the job is upstream")
        first.signal(signal.SIGKILL)
        await first.wait()
        await asyncio.sleep(1.5)  # its lease has run out
        for _ in range(3):  # started, and killed a moment later (before any answer came)
            [dying] = await start_replicas(bot_process, 1, **fast)
            await asyncio.sleep(0.5)
            dying.signal(signal.SIGKILL)
            await dying.wait()
        api.delay = 0.0
        await start_replicas(bot_process, 1, **fast)
        check = answered_once(tg, api, voice_bytes)
        await tg.wait_for(lambda: check([note]), timeout=20)


async def test_a_redis_restart_as_the_transcript_is_sent_does_not_send_it_twice(
    bot_process: ProcessFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    voice_bytes: bytes,
    restartable_redis: RedisServer,
) -> None:
    # The transcript went out but Redis was gone when the bot recorded it: forgetting that
    # would send it again on the next attempt.
    [bot] = await start_replicas(
        bot_process,
        1,
        DATABASE_URL=restartable_redis.url(),
        JOB_LEASE_SECONDS="2",
        PLACEHOLDER_AFTER_SECONDS="60",  # the transcript is a message of its own
    )
    api.delay = 1.0
    [note] = notes(tg, voice_bytes, 1, FIRST_CHAT + 700)
    assert await bot.deliver(note) == 200
    await eventually(lambda: api.in_flight == 1, timeout=15, what="the job is upstream")
    tg.delay = 1.5  # the transcript's sendMessage takes a while
    await eventually(lambda: api.in_flight == 0, timeout=5, what="the API answered")
    await asyncio.sleep(0.5)
    restartable_redis.stop()
    await asyncio.sleep(2.0)
    restartable_redis.start()
    tg.delay = 0.0
    check = answered_once(tg, api, voice_bytes)
    await tg.wait_for(lambda: check([note]), timeout=20)
    await asyncio.sleep(6.0)  # a lease and more: time for a second attempt to show itself
    assert check([note])


async def eventually_accepted(replica: BotProcess, update: dict[str, Any], timeout: float) -> None:
    """Redeliver as Telegram does after a non-2xx answer, until the bot takes it."""
    async with asyncio.timeout(timeout):
        while await replica.deliver(update) != 200:
            await asyncio.sleep(0.2)


async def test_the_per_user_limit_holds_across_replicas(
    bot_process: ProcessFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    replicas = await start_replicas(bot_process, 2, USER_JOBS_PER_MINUTE="2")
    user = FIRST_CHAT
    for index in range(3):  # first, second, first
        update = voice_message(tg, voice_bytes, chat_id=user)
        assert await replicas[index % 2].deliver(update) == 200
    await tg.wait_for(lambda: len(tg.bot_messages(user)) == 3, timeout=15)
    await asyncio.sleep(0.5)
    texts = [m.text or "" for m in tg.bot_messages(user)]
    refused = [t for t in texts if t.startswith("⏳ You're sending a lot at once")]
    assert len(refused) == 1
    assert texts.count(api.transcript_for(voice_bytes)) == 2
    assert len(api.requests) == 2


async def test_a_full_redis_makes_deliveries_wait_not_vanish(
    bot_factory: BotFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    voice_bytes: bytes,
    redis_server: RedisServer,
) -> None:
    admin = redis.Redis(port=redis_server.port)
    async with bot_factory() as bot:
        update = voice_message(tg, voice_bytes, chat_id=FIRST_CHAT)
        admin.config_set("maxmemory", 1)  # full: maxmemory-policy noeviction refuses writes
        try:
            assert (await bot.deliver(update)).status_code == 503
        finally:
            admin.config_set("maxmemory", 0)
            admin.close()
        assert (await bot.deliver(update)).status_code == 200  # Telegram's next try
        check = answered_once(tg, api, voice_bytes)
        await tg.wait_for(lambda: check([update]), timeout=15)
