"""Long polling for local use: deleteWebhook, then getUpdates; the offset waits for the job."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import pytest

from bot.app import Fatal
from tests.conftest import (
    API_KEY,
    TOKEN,
    BotFactory,
    ProcessFactory,
    RunningBot,
    eventually,
    next_message_id,
    next_update_id,
)
from tests.fakes import FakeTelegram, FakeTranscriptionAPI, voice_update


async def test_polling_mode_transcribes_and_confirms_the_offset(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    async with bot_factory(webhook_url=None, webhook_secret=None) as bot:
        assert tg.calls("deleteWebhook")
        health = await bot.http.get(f"{bot.base_url}/healthz")
        assert health.status_code == 200
        file = tg.add_file(voice_bytes)
        message_id = next_message_id()
        tg.add_message(77, message_id)
        api.set_transcript(voice_bytes, "polled words")
        tg.push_update(
            voice_update(next_update_id(), chat_id=77, user_id=77, message_id=message_id, file=file)
        )
        await tg.wait_for(lambda: tg.text_of(77, tg.last_message_id(77)) == "polled words")
        # The next getUpdates carries the offset past it: Telegram forgets the update.
        await eventually(lambda: len(tg.pending_updates) == 0, timeout=10)
    assert not tg.calls("setWebhook")
    assert len(api.requests) == 1


async def test_polling_while_another_instance_polls_says_so_clearly(
    bot_factory: BotFactory, tg: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    tg.set_conflict(True)
    with caplog.at_level(logging.ERROR, logger="bot"):
        async with bot_factory(webhook_url=None, webhook_secret=None):
            await tg.wait_calls("getUpdates", 1)
            await eventually(lambda: "409 Conflict" in caplog.text, timeout=5)
    assert "another process is polling with this token" in caplog.text
    assert "webhook mode" in caplog.text


async def test_polling_while_a_replica_set_the_webhook_says_so_clearly(
    bot_factory: BotFactory, tg: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    import httpx

    with caplog.at_level(logging.ERROR, logger="bot"):
        async with bot_factory(webhook_url=None, webhook_secret=None):
            await tg.wait_calls("deleteWebhook", 1)
            # Another instance, in webhook mode, registers its webhook.
            async with httpx.AsyncClient() as http:
                hook = {"url": "https://bot.example.com/hook", "secret_token": "s3cret"}
                await http.post(f"{tg.url}/bot{TOKEN}/setWebhook", json=hook)
            tg.push_update({"update_id": next_update_id(), "poll": {"id": "1"}})  # wake the poll
            await eventually(lambda: "409 Conflict" in caplog.text, timeout=10)
    assert "a webhook is set for this bot" in caplog.text
    assert "several replicas need webhook mode" in caplog.text


async def test_privacy_mode_on_is_explained_in_the_log(
    tmp_path: Path, api: FakeTranscriptionAPI, caplog: pytest.LogCaptureFixture
) -> None:
    import asyncio

    from bot.app import BotService
    from tests.conftest import bot_settings

    async with FakeTelegram(TOKEN, can_read_all_group_messages=False) as tg:
        settings = bot_settings(tg, api, tmp_path / "db.sqlite3")
        assert settings.openai_api_key.get_secret_value() == API_KEY
        service = BotService(settings)
        stop = asyncio.Event()
        with caplog.at_level(logging.WARNING, logger="bot.app"):
            task = asyncio.create_task(service.run(stop))
            await eventually(lambda: service.web.ready, timeout=10)
            stop.set()
            await task
    assert "privacy mode is on" in caplog.text
    assert "/setprivacy" in caplog.text


async def test_refused_set_webhook_is_logged_and_the_bot_serves_anyway(
    bot_factory: BotFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    voice_bytes: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from tests.conftest import send_voice

    tg.fail_next("setWebhook", error_code=400, description="Bad Request: bad webhook: Failed")
    tg.fail_next("setMyCommands", error_code=500, description="Internal Server Error")
    with caplog.at_level(logging.WARNING, logger="bot.app"):
        async with bot_factory() as bot:
            await send_voice(bot, tg, voice_bytes, chat_id=78)
            await api.wait_calls(1)
    assert "setWebhook failed" in caplog.text
    assert "could not register the command menu" in caplog.text


async def _health(bot: RunningBot) -> int:
    return (await bot.http.get(f"{bot.base_url}/healthz")).status_code


async def test_a_proxy_page_instead_of_the_bot_api_is_retried_and_healthz_says_so(
    bot_factory: BotFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    voice_bytes: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A captive portal answers 200 with HTML, a proxy 502 with HTML: not the Bot API.
    tg.fail_next("getUpdates", error_code=200, description="Sign in", proxy_page=True)
    tg.fail_next("getUpdates", error_code=502, description="Bad Gateway", proxy_page=True)
    with caplog.at_level(logging.WARNING, logger="bot"):
        async with bot_factory(webhook_url=None, webhook_secret=None) as bot:
            await tg.wait_calls("getUpdates", 1)
            assert await _health(bot) == 503  # nothing comes in while getUpdates fails
            file = tg.add_file(voice_bytes)
            message_id = next_message_id()
            tg.add_message(77, message_id)
            api.set_transcript(voice_bytes, "after the outage")
            tg.push_update(
                voice_update(
                    next_update_id(), chat_id=77, user_id=77, message_id=message_id, file=file
                )
            )
            await tg.wait_for(lambda: tg.text_of(77, tg.last_message_id(77)) == "after the outage")
            assert await _health(bot) == 200
    assert [c.status for c in tg.calls("getUpdates")][:2] == [200, 502]
    assert caplog.text.count("getUpdates: failed: not the Bot API's answer: HTTP") == 2
    assert "<html>" not in caplog.text.lower()  # one short line each, not the page


async def test_a_bot_api_url_that_answers_404_stops_the_bot_with_a_clear_reason(
    bot_factory: BotFactory, tg: FakeTelegram
) -> None:
    tg.fail_next("getUpdates", error_code=404, times=100)
    stopped: Fatal | None = None
    try:
        async with bot_factory(webhook_url=None, webhook_secret=None) as bot:
            await eventually(bot.task.done, timeout=10)
    except Fatal as exc:
        stopped = exc
    assert stopped is not None
    assert "TELEGRAM_API_URL" in str(stopped)
    assert len(tg.calls("getUpdates")) == 1  # not retried


async def test_a_token_telegram_stops_accepting_ends_the_process_with_one_line(
    bot_process: ProcessFactory, tg: FakeTelegram
) -> None:
    tg.fail_next("getUpdates", error_code=401, times=100)  # revoked after getMe passed
    bot = bot_process()
    del bot.env["WEBHOOK_URL"], bot.env["WEBHOOK_SECRET"]
    bot.env["LISTEN_PORT"] = "0"  # not asked for /healthz: no port another test could take
    with contextlib.suppress(RuntimeError):  # it stops before it is healthy
        await bot.start()
    assert await bot.wait() == 1
    log = bot.log()
    assert log.count("stopped: TELEGRAM_BOT_TOKEN: Telegram does not accept this token") == 1
    assert "Traceback" not in log
    assert TOKEN.split(":")[1] not in log
    assert len(tg.calls("getUpdates")) == 1
