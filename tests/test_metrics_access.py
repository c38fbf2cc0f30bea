"""/metrics is private: its own listener on 127.0.0.1, or a bearer token on the public one."""

from __future__ import annotations

import logging
import socket

import pytest

from bot.config import Settings
from tests.conftest import API_KEY, TOKEN, BotFactory

METRICS_TOKEN = "scrape-token-0123456789"


async def test_metrics_are_on_their_own_listener_not_on_the_public_one(
    bot_factory: BotFactory,
) -> None:
    async with bot_factory() as bot:
        public = await bot.http.get(f"{bot.base_url}/metrics")
        private = await bot.http.get(bot.metrics_url)
        health = await bot.http.get(f"{bot.base_url}/healthz")
    assert public.status_code == 404
    assert private.status_code == 200
    assert "transcribot_jobs_total" in private.text
    assert health.status_code == 200  # where Docker's HEALTHCHECK asks


def test_the_metrics_listener_is_local_by_default() -> None:
    settings = Settings(_env_file=None, telegram_bot_token=TOKEN, openai_api_key=API_KEY)
    assert (settings.metrics_host, settings.metrics_port) == ("127.0.0.1", 9464)
    assert settings.metrics_token is None


@pytest.mark.parametrize("where", ["public", "private"])
async def test_with_a_token_metrics_answer_only_the_bearer(
    bot_factory: BotFactory, where: str
) -> None:
    async with bot_factory(metrics_token=METRICS_TOKEN) as bot:
        url = f"{bot.base_url}/metrics" if where == "public" else bot.metrics_url
        answers: dict[bytes | None, int] = {}
        for given in (
            None,
            b"Bearer wrong-token-123",
            f"Basic {METRICS_TOKEN}".encode(),
            b"Bearer \xff",
        ):
            headers = {} if given is None else {b"Authorization": given}
            answers[given] = (await bot.http.get(url, headers=headers)).status_code
        good = await bot.http.get(url, headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert set(answers.values()) == {401}, answers
    assert good.status_code == 200
    assert "transcribot_jobs_total" in good.text


async def test_a_busy_metrics_port_is_logged_and_the_bot_runs_on(
    bot_factory: BotFactory, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        async with bot_factory(metrics_port=port) as bot:
            health = await bot.http.get(f"{bot.base_url}/healthz")
    assert health.status_code == 200
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any(f"metrics: cannot listen on 127.0.0.1:{port}" in line for line in errors)
