"""The fake Telegram's flood limits: sliding windows, 429 with retry_after, only messages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.conftest import TOKEN
from tests.fakes import FakeTelegram
from tests.fakes.telegram_limits import FloodControl, Limits, Window
from tests.fakes.telegram_rules import TelegramError

GROUP = -100123


def _send(flood: FloodControl, chat: int, at: float, method: str = "sendMessage") -> bool:
    refused: TelegramError | None = None
    try:
        flood.check(method, {"chat_id": chat}, at)
    except TelegramError as exc:
        refused = exc
    if refused is None:
        return True
    assert refused.error_code == 429
    assert refused.retry_after is not None
    assert refused.retry_after >= 1
    return False


def test_at_most_30_in_any_second_over_all_chats_even_after_a_quiet_second() -> None:
    flood = FloodControl(Limits())
    # A token bucket refilled at 30/s would let 30 more through at 1.5 s on top of these.
    assert all(_send(flood, chat, 0.99) for chat in range(1, 31))
    assert not _send(flood, 31, 1.5)
    assert _send(flood, 31, 2.0)
    assert flood.refused == 1
    assert flood.admitted == 31


def test_at_most_20_in_any_minute_in_one_group() -> None:
    flood = FloodControl(Limits())
    assert all(_send(flood, GROUP, i * 2.0) for i in range(20))
    assert not _send(flood, GROUP, 59.0)  # the first of the 20 was at 0.0
    assert _send(flood, GROUP - 1, 59.0)  # another group has its own minute
    assert _send(flood, GROUP, 60.0)
    assert not _send(flood, GROUP, 61.0)  # the second was at 2.0


def test_about_one_a_second_in_a_private_chat_with_short_bursts() -> None:
    flood = FloodControl(Limits())
    assert all(_send(flood, 7, 0.0) for _ in range(20))
    assert not _send(flood, 7, 10.0)
    assert _send(flood, 8, 10.0)
    assert _send(flood, 7, 20.0)


def test_edits_count_like_sends_and_chat_actions_do_not() -> None:
    flood = FloodControl(Limits())
    for i in range(30):
        method = "editMessageText" if i % 2 else "sendMessage"
        assert _send(flood, 100 + i, 0.0, method)
    assert not _send(flood, 200, 0.5, "editMessageText")
    assert _send(flood, 200, 0.5, "sendChatAction")
    assert _send(flood, 200, 0.5, "getChatMember")


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


async def _call(http: httpx.AsyncClient, tg: FakeTelegram, **params: Any) -> dict[str, Any]:
    response = await http.post(f"{tg.url}/bot{TOKEN}/sendMessage", json=params)
    answer: dict[str, Any] = response.json()
    assert response.status_code == answer.get("error_code", 200)
    return answer


async def test_the_fake_answers_429_with_retry_after_and_counts_them(
    http: httpx.AsyncClient, tg: FakeTelegram
) -> None:
    tg.enforce_limits(Limits(group=Window(2, 60.0)))
    for _ in range(2):
        assert (await _call(http, tg, chat_id=GROUP, text="hi"))["ok"]
    refused = await _call(http, tg, chat_id=GROUP, text="hi")
    assert refused["error_code"] == 429
    assert refused["description"].startswith("Too Many Requests: retry after")
    assert 1 <= refused["parameters"]["retry_after"] <= 60
    assert tg.too_many_requests == 1
    assert not tg.calls("sendMessage")[-1].ok


async def test_limits_are_off_unless_asked_for(http: httpx.AsyncClient, tg: FakeTelegram) -> None:
    for _ in range(25):
        assert (await _call(http, tg, chat_id=GROUP, text="hi"))["ok"]
    assert tg.too_many_requests == 0
