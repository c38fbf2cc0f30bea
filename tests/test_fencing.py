"""A replica that lost its lease (frozen past it) writes nothing when it wakes up."""

from __future__ import annotations

import asyncio
import re
import signal
from pathlib import Path

import pytest

from tests.conftest import BotProcess, ProcessFactory, eventually, make_audio, voice_message
from tests.fakes import FakeTelegram, FakeTranscriptionAPI
from tests.test_replicas import FAST

CHAT = 95_000


@pytest.fixture
def database_url(redis_url: str) -> str:
    return redis_url


async def test_a_replica_frozen_past_its_lease_finishes_nothing_when_it_wakes(
    bot_process: ProcessFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    api.set_transcript(voice_bytes, "answered once")
    api.delay = 1.5
    frozen = bot_process(**FAST, JOB_LEASE_SECONDS="1")
    await frozen.start()
    assert await frozen.deliver(voice_message(tg, voice_bytes, chat_id=CHAT)) == 200
    await eventually(lambda: api.in_flight == 1, timeout=15, what="the job is upstream")
    frozen.signal(signal.SIGSTOP)  # as a stalled VM or a long GC pause would
    try:
        other = bot_process(**FAST, JOB_LEASE_SECONDS="1")
        await other.start()
        await eventually(lambda: re.search(r"job=\d+ done ", other.log()) is not None, 20)
    finally:
        frozen.signal(signal.SIGCONT)
    await eventually(lambda: "lease lost" in frozen.log(), timeout=15, what="the loser says so")
    await asyncio.sleep(0.5)
    assert re.search(r"job=\d+ done ", frozen.log()) is None  # it recorded nothing
    assert "taken over from" in other.log()
    assert [m.text for m in tg.bot_messages(CHAT)] == ["answered once"]
    for replica in (frozen, other):
        replica.signal(signal.SIGTERM)
        assert await replica.wait() == 0


async def frozen_between_two_api_attempts(
    bot_process: ProcessFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    voice_bytes: bytes,
    **frozen_settings: str,
) -> BotProcess:
    """A replica frozen past its lease while it waits to try the API again (its first attempt
    got a 503 with Retry-After); another replica takes the job over and answers it; then the
    frozen one wakes. Returns it, stopped after it had time to do what it would still do."""
    api.set_transcript(voice_bytes, "answered once")
    api.fail_next(503, retry_after=5)
    frozen = bot_process(**FAST, JOB_LEASE_SECONDS="1", **frozen_settings)
    await frozen.start()
    assert await frozen.deliver(voice_message(tg, voice_bytes, chat_id=CHAT)) == 200
    await eventually(lambda: len(api.requests) == 1, timeout=15, what="the first attempt failed")
    frozen.signal(signal.SIGSTOP)  # before its placeholder is due (PLACEHOLDER_AFTER_SECONDS)
    try:
        other = bot_process(**FAST, JOB_LEASE_SECONDS="1")
        await other.start()
        await eventually(lambda: re.search(r"job=\d+ done ", other.log()) is not None, 20)
    finally:
        frozen.signal(signal.SIGCONT)
    await eventually(lambda: "lease lost" in frozen.log(), timeout=15, what="the loser says so")
    await asyncio.sleep(1.0)  # time for anything it would still send or pay for
    for replica in (frozen, other):
        replica.signal(signal.SIGTERM)
        assert await replica.wait() == 0
    return frozen


async def test_a_replica_frozen_past_its_lease_pays_the_api_no_more_when_it_wakes(
    bot_process: ProcessFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    await frozen_between_two_api_attempts(bot_process, tg, api, voice_bytes)
    assert [call.ok for call in api.requests] == [False, True]  # the 503, then the other's


async def test_a_replica_frozen_past_its_lease_leaves_no_placeholder_when_it_wakes(
    bot_process: ProcessFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    # Its placeholder fell due while it was frozen: posting it now would leave a "Transcribing…"
    # nobody edits (the job is answered, and its store refuses the loser's writes).
    await frozen_between_two_api_attempts(bot_process, tg, api, voice_bytes)
    assert [m.text for m in tg.bot_messages(CHAT)] == ["answered once"]


async def test_a_replica_frozen_past_its_lease_edits_nothing_when_it_wakes(
    bot_process: ProcessFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, tmp_path: Path
) -> None:
    # Its placeholder went out (and was recorded) before it froze, saying how long is left:
    # the other replica delivers the transcript into it. A progress note from the one that
    # wakes would overwrite the transcript with "Transcribing…".
    def note(frequency: int) -> bytes:
        source = ("-f", "lavfi", "-i", f"sine=frequency={frequency}:duration=31")
        opus = ("-ac", "1", "-c:a", "libopus", "-b:a", "16k", "-f", "ogg")
        return make_audio(tmp_path / f"{frequency}.ogg", *source, *opus).read_bytes()

    first, second = note(440), note(550)
    api.set_transcript(second, "answered once")
    frozen = bot_process(**FAST, JOB_LEASE_SECONDS="1", PLACEHOLDER_AFTER_SECONDS="0")
    await frozen.start()
    # One note done first: the frozen replica knows the engine's speed (time left is shown).
    assert await frozen.deliver(voice_message(tg, first, chat_id=CHAT + 1, duration=31)) == 200
    await eventually(lambda: re.search(r"job=\d+ done ", frozen.log()) is not None, 20)
    api.fail_next(503, retry_after=5)
    assert await frozen.deliver(voice_message(tg, second, chat_id=CHAT, duration=31)) == 200
    await eventually(lambda: len(api.requests) == 2, timeout=15, what="the attempt failed")
    frozen.signal(signal.SIGSTOP)
    try:
        other = bot_process(**FAST, JOB_LEASE_SECONDS="1")
        await other.start()
        await eventually(lambda: re.search(r"job=\d+ done ", other.log()) is not None, 20)
    finally:
        frozen.signal(signal.SIGCONT)
    await eventually(lambda: "lease lost" in frozen.log(), timeout=15, what="the loser says so")
    await asyncio.sleep(1.0)
    assert [m.text for m in tg.bot_messages(CHAT)] == ["answered once"]
    for replica in (frozen, other):
        replica.signal(signal.SIGTERM)
        assert await replica.wait() == 0
