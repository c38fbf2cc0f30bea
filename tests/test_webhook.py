"""The webhook: secret checked in constant time, bad bodies refused, answers fast."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.conftest import BACKENDS, RunningBot, backend_url, next_update_id, voice_message
from tests.fakes import FakeTelegram, FakeTranscriptionAPI
from tests.test_private_chat import USER


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every test here runs on SQLite and on Redis."""
    return backend_url(request, request.param, tmp_path)


async def test_missing_or_wrong_secret_is_refused_and_nothing_transcribed(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    update = voice_message(tg, voice_bytes, chat_id=USER)
    missing = await bot.deliver(update, secret=None)
    wrong = await bot.deliver(update, secret="not-the-secret")
    assert missing.status_code == 401
    assert wrong.status_code == 403
    await asyncio.sleep(0.5)
    assert api.requests == []
    assert tg.calls("sendMessage") == []


async def test_bodies_that_are_not_updates_get_400(bot: RunningBot) -> None:
    headers = {"X-Telegram-Bot-Api-Secret-Token": bot.settings.webhook_secret.get_secret_value()}  # type: ignore[union-attr]
    for body in (
        b"not json",
        b"[1, 2]",
        b'{"no_update_id": 1}',
        b'{"update_id": "x"}',
        b'{"update_id": 5, "message": {"text": "no chat"}}',
    ):
        response = await bot.http.post(bot.webhook_url, content=body, headers=headers)
        assert response.status_code == 400, body
    health = await bot.http.get(f"{bot.base_url}/healthz")
    assert health.status_code == 200


async def test_redelivered_update_is_done_once(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    update = voice_message(tg, voice_bytes, chat_id=USER)
    for _ in range(3):
        assert (await bot.deliver(update)).status_code == 200
    await tg.wait_calls("editMessageText", 1)
    await asyncio.sleep(0.5)
    assert len(api.requests) == 1
    assert len(tg.calls("sendMessage")) == 1


async def test_unknown_update_types_are_acknowledged(bot: RunningBot) -> None:
    for update in (
        {"update_id": next_update_id(), "poll": {"id": "1"}},
        {"update_id": next_update_id(), "some_future_update": {"x": 1}},
    ):
        assert (await bot.deliver(update)).status_code in (200, 400)
    health = await bot.http.get(f"{bot.base_url}/healthz")
    assert health.status_code == 200
