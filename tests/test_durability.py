"""Nothing lost, nothing twice: crashes, restarts, shutdown and redeliveries."""

from __future__ import annotations

import asyncio
import functools
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    BACKENDS,
    ProcessFactory,
    backend_url,
    eventually,
    next_message_id,
    next_update_id,
    voice_message,
)
from tests.fakes import FakeTelegram, FakeTranscriptionAPI, text_update
from tests.fakes.file_server import FakeFileServer

USER = 4242


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every test here runs on SQLite and on Redis."""
    return backend_url(request, request.param, tmp_path)


def voice(tg: FakeTelegram, data: bytes, chat_id: int = USER) -> dict[str, Any]:
    return voice_message(tg, data, chat_id=chat_id, user_id=USER)


def started(api: FakeTranscriptionAPI, count: int) -> bool:
    return api.started == count


def final_texts(tg: FakeTelegram, chat_id: int = USER) -> list[str]:
    """The text of every bot message in the chat, as it stands now."""
    return [m.text or "" for m in tg.bot_messages(chat_id)]


async def test_sigkill_during_transcription_then_restart_gives_exactly_one_transcript(
    bot_process: ProcessFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    api.set_transcript(voice_bytes, "survived the crash")
    api.delay = 30  # the first attempt hangs upstream until the bot is killed
    # SQLite: the next start takes the job back at once. Redis: other replicas may be alive,
    # so the job is taken over when its lease has run out.
    first = bot_process(JOB_LEASE_SECONDS="2")
    await first.start()
    assert await first.deliver(voice(tg, voice_bytes)) == 200
    await eventually(lambda: api.in_flight > 0, timeout=15)
    # The placeholder goes out once the wait passes PLACEHOLDER_AFTER_SECONDS; the kill comes
    # after its id is stored (a kill between the two would leave it behind: see issue 13).
    await tg.wait_calls("sendMessage", 1)
    await asyncio.sleep(0.5)
    first.signal(signal.SIGKILL)
    assert await first.wait() == -signal.SIGKILL

    api.delay = 0
    second = bot_process(JOB_LEASE_SECONDS="2")
    await second.start()
    await tg.wait_for(lambda: "survived the crash" in final_texts(tg), timeout=20)
    await asyncio.sleep(0.5)
    assert len(tg.calls("sendMessage")) == 1  # the retried job edited the placeholder it had
    assert final_texts(tg) == ["survived the crash"]
    second.signal(signal.SIGTERM)
    assert await second.wait() == 0


async def test_sigterm_drains_running_jobs_and_keeps_the_rest_queued(
    bot_process: ProcessFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    api.delay = 1.5
    bot = bot_process(MAX_CONCURRENT_JOBS="2")
    await bot.start()
    for _ in range(4):
        assert await bot.deliver(voice(tg, voice_bytes)) == 200
    await eventually(lambda: api.in_flight >= 2, timeout=10)
    bot.signal(signal.SIGTERM)
    await asyncio.sleep(0.2)
    late = voice(tg, voice_bytes)
    assert await bot.deliver(late) == 503  # not accepted while stopping: Telegram redelivers
    assert await bot.health() == 503  # a load balancer sends the rest elsewhere
    assert await bot.wait(timeout=20) == 0
    assert "stopped" in bot.log()
    done_before_restart = sum(1 for text in final_texts(tg) if text.startswith("transcript "))
    assert done_before_restart == 2  # the two running jobs finished within the grace

    api.delay = 0
    again = bot_process()
    await again.start()
    assert await again.deliver(late) == 200
    await tg.wait_for(
        lambda: sum(1 for t in final_texts(tg) if t.startswith("transcript ")) == 5, timeout=20
    )
    again.signal(signal.SIGTERM)
    assert await again.wait() == 0


async def test_link_job_killed_while_downloading_is_fetched_again_after_restart(
    bot_process: ProcessFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    """A link is a job like a file: the URL is in the store, and the next start fetches it."""
    api.set_transcript(voice_bytes, "from the link, after the crash")
    async with FakeFileServer() as files:
        url = files.stall("/talk.ogg", first=b"OggS", seconds=30)
        settings = {"JOB_LEASE_SECONDS": "2", "LINK_ALLOW_PRIVATE_NETWORKS": "true"}
        first = bot_process(**settings)
        await first.start()
        message_id = next_message_id()
        tg.add_message(USER, message_id, text=url)
        update = text_update(
            next_update_id(), chat_id=USER, user_id=USER, message_id=message_id, text=url
        )
        assert await first.deliver(update) == 200
        await files.log.wait_for(lambda: len(files.requests) == 1, 15, "the download started")
        first.signal(signal.SIGKILL)
        assert await first.wait() == -signal.SIGKILL

        files.put("/talk.ogg", voice_bytes, "audio/ogg")
        second = bot_process(**settings)
        await second.start()
        await tg.wait_for(lambda: "from the link, after the crash" in final_texts(tg), timeout=20)
        second.signal(signal.SIGTERM)
        assert await second.wait() == 0
    assert len(files.requests) == 2
    assert len(api.requests) == 1


async def test_a_job_that_kills_the_bot_is_given_up_after_its_attempts_and_the_bot_goes_on(
    bot_process: ProcessFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    # Each run of the job "kills the process" (SIGKILL while it is upstream): a crash loop.
    settings = {"JOB_MAX_ATTEMPTS": "2", "JOB_LEASE_SECONDS": "1", "ADMIN_USER_IDS": str(USER)}
    api.delay = 8  # each run hangs upstream until the bot is killed (the fake waits it out)
    for run in (1, 2):
        bot = bot_process(**settings)
        await bot.start()
        if run == 1:
            assert await bot.deliver(voice(tg, voice_bytes)) == 200
        await eventually(functools.partial(started, api, run), timeout=15, what=f"run {run}")
        bot.signal(signal.SIGKILL)
        assert await bot.wait() == -signal.SIGKILL
    bot = bot_process(**settings)
    await bot.start()
    await tg.wait_for(lambda: any("something went wrong" in t for t in final_texts(tg)), 20)
    await asyncio.sleep(0.3)
    assert api.started == 2  # not run a third time
    assert "gave up after 2 attempts" in bot.log()
    # The bot goes on: the next note is transcribed, and /stats shows the failure.
    api.delay = 0
    api.set_transcript(voice_bytes, "next one")
    assert await bot.deliver(voice(tg, voice_bytes)) == 200
    await tg.wait_for(lambda: "next one" in final_texts(tg), timeout=20)
    message_id = next_message_id()
    tg.add_message(USER, message_id)
    stats = text_update(
        next_update_id(), chat_id=USER, user_id=USER, message_id=message_id, text="/stats"
    )
    assert await bot.deliver(stats) == 200
    await tg.wait_for(lambda: any("crash" in t.lower() for t in final_texts(tg)), timeout=10)
    bot.signal(signal.SIGTERM)
    assert await bot.wait() == 0
