"""The API key's limits: requests a minute, requests at once, and a 429 held for every job,
on every replica (through Redis) or in this one process (SQLite)."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest

from bot.upstream_gate import GateLimits, LocalGate, RedisGate, UpstreamGate, build_gate, key_id
from tests.conftest import (
    API_KEY,
    BACKENDS,
    BotFactory,
    backend_url,
    eventually,
    free_port,
    send_voice,
)
from tests.fakes import FakeTelegram, FakeTranscriptionAPI
from tests.test_metrics import scrape, value
from tests.test_private_chat import USER
from tests.test_summary_button import long_transcript, summary_data
from tests.test_upgrade_button import press

FIRST = 7300  # private chats FIRST, FIRST + 1, ...


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """SQLite (this process's gate) and Redis (the gate replicas share)."""
    return backend_url(request, request.param, tmp_path)


def answered(tg: FakeTelegram, api: FakeTranscriptionAPI, data: bytes, chat: int) -> bool:
    """Whether the chat has the note's transcript."""
    return any(m.text == api.transcript_for(data) for m in tg.bot_messages(chat))


async def test_no_more_requests_at_once_than_the_key_allows(
    bot_factory: BotFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    voice_bytes: bytes,
    store_url: str,
) -> None:
    api.delay = 0.4
    async with bot_factory(database_url=store_url, upstream_concurrent_requests=2) as bot:
        for i in range(6):
            await send_voice(bot, tg, voice_bytes, chat_id=FIRST + i)
        await tg.wait_for(
            lambda: all(answered(tg, api, voice_bytes, FIRST + i) for i in range(6)), timeout=20
        )
    assert api.most_in_flight == 2
    assert [c.status for c in api.requests] == [200] * 6


async def test_no_more_requests_a_minute_than_the_key_allows(
    bot_factory: BotFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    voice_bytes: bytes,
    store_url: str,
) -> None:
    settings = {"upstream_requests_per_minute": 2, "shutdown_grace_seconds": 0.5}
    async with bot_factory(database_url=store_url, **settings) as bot:
        for i in range(3):
            await send_voice(bot, tg, voice_bytes, chat_id=FIRST + i)
        await tg.wait_for(
            lambda: sum(answered(tg, api, voice_bytes, FIRST + i) for i in range(3)) == 2
        )
        await asyncio.sleep(1.5)
        assert len(api.requests) == 2  # the third waits for the minute, not for a 429
        waiting = next(FIRST + i for i in range(3) if not answered(tg, api, voice_bytes, FIRST + i))
        # It waits quietly: no apology, nothing failed.
        assert all("sorry" not in (m.text or "").lower() for m in tg.bot_messages(waiting))


@pytest.mark.parametrize("retry_after", [2.0, None])
async def test_a_429_from_the_api_is_waited_out_by_every_job(
    bot_factory: BotFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    voice_bytes: bytes,
    retry_after: float | None,
    store_url: str,
) -> None:
    """Retry-After is honoured by every job; a 429 without it holds everyone 1 s."""
    api.fail_next(429, retry_after=retry_after)
    async with bot_factory(database_url=store_url) as bot:
        await send_voice(bot, tg, voice_bytes, chat_id=FIRST)
        refused = (await api.wait_calls(1))[0]
        for i in range(1, 4):
            await send_voice(bot, tg, voice_bytes, chat_id=FIRST + i)
        await tg.wait_for(
            lambda: all(answered(tg, api, voice_bytes, FIRST + i) for i in range(4)), timeout=20
        )
    assert refused.status == 429
    later = api.requests[1:]
    assert len(later) == 4
    assert all(c.ok for c in later)
    pause = retry_after or 1.0
    assert min(c.at for c in later) - refused.at >= pause - 0.1  # no one asked before it ended


async def test_metrics_show_the_waits_for_the_keys_limits_and_its_pauses(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    api.fail_next(429, retry_after=1.5)
    async with bot_factory() as bot:
        await send_voice(bot, tg, voice_bytes, chat_id=FIRST)
        await api.wait_calls(1)
        await send_voice(bot, tg, voice_bytes, chat_id=FIRST + 1)
        await tg.wait_for(
            lambda: all(answered(tg, api, voice_bytes, FIRST + i) for i in range(2)), timeout=20
        )
        samples = await scrape(bot)
    assert value(samples, "transcribot_upstream_pauses_total") == 1
    # Three requests went through the gate; the second note's waited out the pause.
    assert value(samples, "transcribot_upstream_gate_wait_seconds_count") == 3
    assert value(samples, "transcribot_upstream_gate_wait_seconds_sum") >= 1.0
    assert value(samples, "transcribot_upstream_gate_wait_seconds_bucket", le="0.1") >= 1


async def test_a_429_to_a_summary_holds_back_transcriptions_with_the_same_key(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    async with bot_factory(summary_min_words=30, streaming=False) as bot:
        transcript_id = await long_transcript(bot, tg, api, voice_bytes)
        api.fail_next(429, retry_after=2, route="chat")
        await press(bot, tg, USER, transcript_id, summary_data(tg, transcript_id), USER)
        refused = (await api.wait_chat_calls(1))[0]
        await send_voice(bot, tg, voice_bytes, chat_id=FIRST)
        asked = (await api.wait_calls(2))[1]
        await api.wait_chat_calls(2)  # the summary, asked again after the pause
    assert refused.status == 429
    assert asked.at - refused.at >= 2 - 0.1


async def test_a_429_seen_by_one_replica_holds_back_the_others(
    bot_factory: BotFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    voice_bytes: bytes,
    redis_url: str,
) -> None:
    api.fail_next(429, retry_after=2)
    async with bot_factory(database_url=redis_url) as bot:
        other = build_gate(bot.settings)  # another replica with the same key
        try:
            await send_voice(bot, tg, voice_bytes, chat_id=FIRST)
            refused = (await api.wait_calls(1))[0]
            async with other.slot():
                allowed = time.monotonic()
        finally:
            await other.close()
    assert allowed - refused.at >= 2 - 0.1


async def test_requests_at_once_are_counted_over_every_replica(
    bot_factory: BotFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    voice_bytes: bytes,
    redis_url: str,
) -> None:
    api.delay = 1.0
    async with bot_factory(database_url=redis_url, upstream_concurrent_requests=1) as bot:
        other = build_gate(bot.settings)
        try:
            await send_voice(bot, tg, voice_bytes, chat_id=FIRST)
            await eventually(lambda: api.in_flight == 1)
            async with other.slot():
                allowed = time.monotonic()
        finally:
            await other.close()
        call = (await api.wait_calls(1))[0]
    assert allowed >= call.at + call.handler_seconds  # only once the bot's request was done


def shared(limits: GateLimits, url: str, key: str = "k1", hold: float = 30.0) -> RedisGate:
    return RedisGate(url, key, limits, hold=hold)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_the_minute_slides_and_the_next_request_goes_when_it_has_room(
    backend: str, request: pytest.FixtureRequest
) -> None:
    limits = GateLimits(per_minute=2, window=1.0)  # two a second, to keep the test short
    gate: UpstreamGate = (
        shared(limits, request.getfixturevalue("redis_url"))
        if backend == "redis"
        else LocalGate(limits)
    )
    starts = []
    try:
        for _ in range(5):
            async with gate.slot():
                starts.append(time.monotonic())
    finally:
        await gate.close()
    assert starts[1] - starts[0] < 0.5
    for earlier, later in zip(starts, starts[2:], strict=False):
        assert later - earlier >= 1.0 - 0.02  # never 3 in any second
    assert starts[4] - starts[0] < 3.0  # and each went as soon as it had room (about 2 s)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_requests_waiting_for_the_minute_go_in_the_order_they_came(
    backend: str, request: pytest.FixtureRequest
) -> None:
    """First come, first served: no note is passed over again and again by luck."""
    limits = GateLimits(per_minute=1, window=0.2)
    gate: UpstreamGate = (
        shared(limits, request.getfixturevalue("redis_url"))
        if backend == "redis"
        else LocalGate(limits)
    )
    order: list[int] = []

    async def request_(number: int) -> None:
        async with gate.slot():
            order.append(number)

    try:
        waiting = []
        for number in range(6):
            waiting.append(asyncio.create_task(request_(number)))
            await asyncio.sleep(0.01)  # they come in this order
        await asyncio.wait_for(asyncio.gather(*waiting), 10)
    finally:
        await gate.close()
    assert order == list(range(6))


async def test_another_key_has_limits_of_its_own(redis_url: str) -> None:
    ours, theirs = shared(GateLimits(), redis_url, "k1"), shared(GateLimits(), redis_url, "k2")
    again = shared(GateLimits(), redis_url, "k1")
    try:
        await ours.pause(1.5)
        started = time.monotonic()
        async with theirs.slot():
            assert time.monotonic() - started < 0.5
        async with again.slot():
            assert time.monotonic() - started >= 1.5 - 0.1
    finally:
        for gate in (ours, theirs, again):
            await gate.close()


def test_a_key_is_named_in_redis_by_a_digest_never_by_itself() -> None:
    from pydantic import SecretStr

    name = key_id("https://api.openai.com/v1", SecretStr(API_KEY))
    assert API_KEY not in name
    assert name != key_id("https://api.openai.com/v1", SecretStr(API_KEY + "x"))
    assert name != key_id("https://other.example/v1", SecretStr(API_KEY))


async def test_a_long_request_keeps_its_place_past_its_hold(redis_url: str) -> None:
    limits = GateLimits(at_once=1)
    first, second = shared(limits, redis_url, hold=1.0), shared(limits, redis_url, hold=1.0)
    try:
        async with first.slot():
            entered = asyncio.create_task(_enter(second))
            await asyncio.sleep(3.5)  # over three holds: renewed meanwhile
            assert not entered.done()
        await asyncio.wait_for(entered, 2)
    finally:
        await first.close()
        await second.close()


async def test_a_place_of_a_replica_that_died_is_free_after_its_hold(redis_url: str) -> None:
    limits = GateLimits(at_once=1)
    dead = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _HOLD_A_PLACE,
        redis_url,
        stdout=asyncio.subprocess.PIPE,
    )
    assert dead.stdout is not None
    assert await asyncio.wait_for(dead.stdout.readline(), 20) == b"holding\n"
    alive = shared(limits, redis_url, hold=0.5)
    started = time.monotonic()
    dead.kill()  # it never gives its place back, nor renews it
    await dead.wait()
    try:
        async with alive.slot():
            waited = time.monotonic() - started
    finally:
        await alive.close()
    assert 0.1 < waited < 3.0  # held until its hold ran out (its last renewal: before the kill)


# A replica holding a place (with a hold of 0.5 s) until it is killed.
_HOLD_A_PLACE = """
import asyncio, sys
from bot.upstream_gate import GateLimits, RedisGate

async def main():
    gate = RedisGate(sys.argv[1], "k1", GateLimits(at_once=1), hold=0.5)
    async with gate.slot():
        print("holding", flush=True)
        await asyncio.sleep(60)

asyncio.run(main())
"""


async def test_without_redis_a_replica_keeps_to_the_limits_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gate = shared(GateLimits(at_once=1), f"redis://127.0.0.1:{free_port()}/0")
    inside = 0
    most = 0

    async def request() -> None:
        nonlocal inside, most
        async with gate.slot():
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.05)
            inside -= 1

    try:
        await asyncio.wait_for(asyncio.gather(*(request() for _ in range(4))), 10)
    finally:
        await gate.close()
    assert most == 1
    assert sum("unreachable" in r.getMessage() for r in caplog.records) == 1


async def _enter(gate: UpstreamGate) -> None:
    async with gate.slot():
        pass


async def test_a_gate_without_a_per_minute_limit_keeps_nothing_per_request() -> None:
    """Without a per-minute limit nothing reads the start times: a bot that runs for months
    must not keep one for every request it ever made."""
    gate = LocalGate(GateLimits(at_once=2))
    for _ in range(1000):
        async with gate.slot():
            pass
    assert gate._started == []
