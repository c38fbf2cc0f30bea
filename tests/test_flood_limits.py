"""Telegram's flood limits, kept by one limiter: sliding windows, shared by replicas in Redis."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from bot.flood import FloodLimiter, FloodLimits
from bot.flood.fallback import FallbackWindows
from bot.flood.redis import RedisWindows
from bot.flood.windows import FloodWindows, LocalWindows, Window
from tests.conftest import BotFactory, eventually, send_voice
from tests.fakes import FakeTelegram, FakeTranscriptionAPI
from tests.fakes.telegram_limits import Limits
from tests.fakes.telegram_limits import Window as FakeWindow
from tests.redis_server import RedisServer

TELEGRAM = FloodLimits(
    overall=Window.per(30, 1.0), group=Window.per(20, 60.0), chat=Window.per(1, 1.0, 20)
)
GROUP = -100777
NONE = Window(0, 0.0)

Windows = Callable[[], FloodWindows]


@pytest.fixture(params=["local", "redis"])
async def windows(request: pytest.FixtureRequest) -> AsyncIterator[Windows]:
    """Makes windows on one backend: each call another replica's view of the same windows
    (Redis), or the one process's (local)."""
    made: list[FloodWindows] = []
    local = LocalWindows(TELEGRAM)

    def make() -> FloodWindows:
        if request.param == "local":
            return local
        made.append(RedisWindows(request.getfixturevalue("redis_url"), TELEGRAM))
        return made[-1]

    yield make
    for each in made:
        await each.close()


async def test_at_most_30_in_any_second_not_a_burst_on_top_of_a_rate(windows: Windows) -> None:
    replicas = [windows(), windows()]
    granted = [await replicas[i % 2].reserve(1000 + i) for i in range(30)]
    assert all(t.wait == 0 for t in granted)
    refused = await replicas[0].reserve(2000)
    assert 0 < refused.wait <= 1.0
    await asyncio.sleep(0.3)  # a token bucket would have 9 tokens again by now
    assert (await replicas[1].reserve(2001)).wait > 0


async def test_the_21st_message_in_a_group_waits_for_its_minute(windows: Windows) -> None:
    replicas = [windows(), windows()]
    for i in range(20):
        ticket = await replicas[i % 2].reserve(GROUP)
        assert ticket.wait == 0
        await replicas[i % 2].release(GROUP, ticket)  # answered at once
    refused = await replicas[0].reserve(GROUP)
    assert 58 < refused.wait <= 60
    assert (await replicas[1].reserve(GROUP - 1)).wait == 0  # another group: its own minute
    assert (await replicas[1].reserve(5)).wait == 0


async def test_a_live_edit_keeps_the_last_place_for_the_final_text(windows: Windows) -> None:
    limits = windows()
    for _ in range(19):
        assert (await limits.reserve(GROUP)).wait == 0
    assert (await limits.reserve(GROUP, spare=1)).wait > 0
    assert (await limits.reserve(GROUP)).wait == 0


async def test_a_courtesy_message_leaves_a_third_of_the_bots_second_to_final_texts(
    windows: Windows,
) -> None:
    """Placeholders and live edits go only while the overall window has room to spare: under
    load they would make a note cost two messages and delay another note's transcript."""
    limits = windows()
    for chat in range(5100, 5120):  # 20 of the 30 a second
        ticket = await limits.reserve(chat)
        await limits.release(chat, ticket)
    assert (await limits.reserve(5200, spare=1)).wait > 0
    assert (await limits.reserve(5200)).wait == 0
    assert (await limits.reserve(5201)).wait == 0  # 22: the final texts have 8 more


async def test_a_429_pauses_its_chat_for_every_replica(windows: Windows) -> None:
    first, second = windows(), windows()
    await first.pause(GROUP, 3)
    assert 2 < (await second.reserve(GROUP)).wait <= 3
    assert (await second.reserve(GROUP - 1)).wait == 0


async def test_429s_in_two_chats_at_once_pause_every_chat(windows: Windows) -> None:
    first, second = windows(), windows()
    await first.pause(11, 2)
    await second.pause(12, 2)
    assert 1 < (await first.reserve(13)).wait <= 2


async def test_a_message_counts_from_its_answer_not_its_request(windows: Windows) -> None:
    limits = windows()
    tickets = [await limits.reserve(3000 + i) for i in range(30)]
    await asyncio.sleep(1.1)  # the requests are out of their second now
    first_answer = time.monotonic()
    for i, ticket in enumerate(tickets):
        await limits.release(3000 + i, ticket)  # their answers came only now
    last_answer = asked = time.monotonic()
    wait = (await limits.reserve(4000)).wait
    replied = time.monotonic()
    # The next message waits until the first answer is a second old (counted from the
    # requests, it would not wait at all). Bounds from the clock: a loaded machine is slow.
    assert wait > 0
    assert first_answer + 1 - replied - 0.05 <= wait <= last_answer + 1 - asked + 0.05


async def test_a_message_still_unanswered_after_a_whole_window_still_counts(
    windows: Windows,
) -> None:
    """Telegram counts it when it arrives, which may be any time until its answer: a slow
    answer must not free its place (this let a 429 through under load)."""
    limits = windows()
    tickets = [await limits.reserve(3100 + i) for i in range(30)]
    await asyncio.sleep(1.1)  # a whole window, and none of them answered yet
    waiting = await limits.reserve(4100)
    assert 0 < waiting.wait <= 0.1  # until an answer comes: asked again soon
    await limits.release(3100, tickets[0])
    assert 0.9 < (await limits.reserve(4100)).wait <= 1.0  # then a window after it


async def test_a_wait_says_whether_it_is_the_bots_overall_windows(windows: Windows) -> None:
    limits = windows()
    for chat in range(5300, 5330):  # the bot's 30 a second
        ticket = await limits.reserve(chat)
        await limits.release(chat, ticket)
    assert (await limits.reserve(5400)).overall
    await asyncio.sleep(1.05)
    for _ in range(20):  # another window: a group's minute, full well after this second
        ticket = await limits.reserve(GROUP - 5)
        await limits.release(GROUP - 5, ticket)
    await asyncio.sleep(1.05)
    waiting = await limits.reserve(GROUP - 5)
    assert waiting.wait > 50
    assert not waiting.overall


async def test_calls_waiting_for_the_bots_second_go_in_the_order_they_came() -> None:
    """One queue per process for the overall window: the first waiter asks again when a place
    frees, not every waiter at once (with replicas, each asking Redis)."""
    limiter = FloodLimiter(lambda: LocalWindows(FloodLimits(Window.per(1, 0.2), NONE, NONE)))
    await limiter.initialize()
    sent: list[int] = []

    async def send(chat: int) -> None:
        async def call() -> bool:
            sent.append(chat)
            return True

        await limiter.process_request(call, (), {}, "sendMessage", {"chat_id": chat}, None)

    try:
        calls = []
        for chat in range(6):
            calls.append(asyncio.create_task(send(5500 + chat)))
            await asyncio.sleep(0.01)  # they come in this order
        await asyncio.wait_for(asyncio.gather(*calls), 10)
    finally:
        await limiter.shutdown()
    assert sent == [5500 + chat for chat in range(6)]


async def test_the_bot_stays_under_the_fakes_overall_limit(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    tg.enforce_limits(Limits(overall=FakeWindow(4, 1.0)))
    async with bot_factory(telegram_rate_per_second=4) as bot:
        chats = list(range(5000, 5010))
        for chat in chats:
            await send_voice(bot, tg, voice_bytes, chat_id=chat)
        await eventually(
            lambda: all(
                any(m.text and "Transcribing" not in m.text for m in tg.bot_messages(c))
                for c in chats
            ),
            timeout=30,
            what="every note answered",
        )
    assert tg.too_many_requests == 0


@pytest.fixture
def restartable_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis", databases=1)
    server.start()
    yield server
    server.kill()


async def test_windows_whose_redis_is_gone_limit_this_replica_alone_until_it_is_back(
    restartable_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A Redis restart must not fail the Bot API calls (and so the jobs) that it counts."""
    caplog.set_level(logging.INFO, "bot.flood.fallback")
    windows = FallbackWindows(
        RedisWindows(restartable_redis.url(), TELEGRAM), LocalWindows(TELEGRAM)
    )
    try:
        assert (await windows.reserve(1)).wait == 0
        restartable_redis.kill()
        for chat in range(2, 32):  # the local windows hold Telegram's 30 a second too
            ticket = await windows.reserve(chat)
            assert ticket.wait == 0
            await windows.release(chat, ticket)
        assert (await windows.reserve(99)).wait > 0
        assert caplog.text.count("flood windows in Redis are unreachable") == 1
        restartable_redis.start()
        await asyncio.sleep(1.1)  # Redis is asked again after a second
        assert (await windows.reserve(GROUP)).wait == 0  # the new Redis's windows are empty
        assert "flood windows in Redis are back" in caplog.text
    finally:
        await windows.close()


async def test_windows_reconnect_at_once_after_a_redis_restart(
    restartable_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A pooled connection fails once after Redis restarts: it is retried on a new one at once,
    not taken for Redis being gone (no fallback, no error line)."""
    windows = FallbackWindows(
        RedisWindows(restartable_redis.url(), TELEGRAM), LocalWindows(TELEGRAM)
    )
    try:
        assert (await windows.reserve(1)).wait == 0  # a connection in the pool now
        restartable_redis.kill()
        restartable_redis.start()
        assert (await windows.reserve(2)).wait == 0
        assert "unreachable" not in caplog.text
    finally:
        await windows.close()
