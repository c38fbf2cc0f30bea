"""Secrets never reach the logs, even at DEBUG and through failures."""

from __future__ import annotations

import json
import signal

import pytest

from tests.conftest import API_KEY, SECRET, TOKEN, ProcessFactory
from tests.fakes import FakeTelegram, FakeTranscriptionAPI
from tests.test_durability import final_texts, voice


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_a_run_with_failures_logs_no_secret(
    bot_process: ProcessFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    voice_bytes: bytes,
    log_format: str,
) -> None:
    bot = bot_process(
        LOG_LEVEL="DEBUG", LOG_FORMAT=log_format, UPSTREAM_MAX_ATTEMPTS="2", JOB_MAX_ATTEMPTS="2"
    )
    await bot.start()
    api.fail_next(500, times=2)  # upstream down: retried, then the user is told
    assert await bot.deliver(voice(tg, voice_bytes)) == 200
    await tg.wait_for(lambda: any("not answering" in t for t in final_texts(tg)), timeout=20)
    api.fail_next(401)  # a bad key
    assert await bot.deliver(voice(tg, voice_bytes)) == 200
    await tg.wait_for(lambda: any("credentials" in t for t in final_texts(tg)), timeout=20)
    tg.fail_next("sendMessage", error_code=502, description="Bad Gateway")  # Telegram hiccups
    assert await bot.deliver(voice(tg, voice_bytes)) == 200
    await tg.wait_for(
        lambda: sum(t.startswith("transcript") for t in final_texts(tg)) == 1, timeout=20
    )
    assert await bot.deliver({"update_id": 1, "message": "junk"}) == 400
    assert await bot.deliver({"update_id": 2}, secret="wrong-secret") == 403
    bot.signal(signal.SIGTERM)
    assert await bot.wait() == 0

    log = bot.log()
    assert "DEBUG" in log
    assert "transcription API refused" in log
    token_secret_part = TOKEN.split(":", 1)[1]
    for secret in (TOKEN, token_secret_part, API_KEY, SECRET):
        assert secret not in log
    if log_format == "json":  # and redacting kept every line JSON
        assert all(isinstance(json.loads(line), dict) for line in log.splitlines() if line)
    for message in tg.requests:
        assert API_KEY not in str(message.params)
