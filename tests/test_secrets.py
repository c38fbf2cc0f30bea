"""Secrets never reach the logs, even at DEBUG and through failures."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp import web

from bot.logs import Redactor
from tests.conftest import API_KEY, SECRET, TOKEN, ProcessFactory
from tests.fakes import FakeTelegram, FakeTranscriptionAPI
from tests.fakes._server import FakeServer
from tests.fakes.telegram_updates import bot_user_json
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
        LOG_LEVEL="DEBUG",
        DEBUG_LOGGERS="telegram, httpx,httpcore,aiohttp,aiosqlite",  # all of them, scrubbed
        LOG_FORMAT=log_format,
        UPSTREAM_MAX_ATTEMPTS="2",
        JOB_MAX_ATTEMPTS="2",
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
    assert "Calling Bot API endpoint" in log  # python-telegram-bot's request lines
    assert "transcription API refused" in log
    token_secret_part = TOKEN.split(":", 1)[1]
    for secret in (TOKEN, token_secret_part, API_KEY, SECRET):
        assert secret not in log
    if log_format == "json":  # and redacting kept every line JSON
        assert all(isinstance(json.loads(line), dict) for line in log.splitlines() if line)
    for message in tg.requests:
        assert API_KEY not in str(message.params)


class RedirectingBotAPI(FakeServer):
    """A Bot API that sends one method round in redirects until aiohttp gives up, with an error
    whose message names the URL, and with it the token."""

    def __init__(self, method: str) -> None:
        super().__init__()
        self.method = method

    def _make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if method == self.method:
            raise web.HTTPTemporaryRedirect(str(request.url))  # 307: the same POST again
        if method == "getMe":
            me = bot_user_json() | {"can_join_groups": True, "can_read_all_group_messages": True}
            return web.json_response({"ok": True, "result": me})
        return web.json_response({"ok": True, "result": True})


@pytest.mark.parametrize(
    "failing",
    # getMe fails inside StartupError; deleteWebhook (polling mode) outside it, uncaught.
    ["getMe", "deleteWebhook"],
)
async def test_a_failed_start_prints_no_token_on_stderr(tmp_path: Path, failing: str) -> None:
    async with RedirectingBotAPI(failing) as telegram:
        env = {
            "PATH": os.environ["PATH"],
            "HOME": str(tmp_path),
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_URL": telegram.root_url,
            "OPENAI_API_KEY": API_KEY,
            "LISTEN_HOST": "127.0.0.1",
            "LISTEN_PORT": "0",
            "METRICS_PORT": "0",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.sqlite3'}",
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", env=env, stderr=asyncio.subprocess.PIPE
        )
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    stderr = err.decode(errors="replace")
    assert proc.returncode not in (0, None)
    assert "TooManyRedirects" in stderr  # the failure whose message holds the URL
    assert f"/bot***/{failing}" in stderr
    for secret in (TOKEN, TOKEN.split(":", 1)[1], API_KEY):
        assert secret not in stderr, stderr


@pytest.mark.parametrize(
    "text",
    [
        "POST https://api.telegram.org/bot123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/getMe",
        "url=URL('http://127.0.0.1:8081/file/bot42:short-secret/voice/file_1.oga')",
        "/var/lib/telegram-bot-api/123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/voice/f.oga",
        "https://api.telegram.org/bot123456%3AAAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/getMe",
        "Authorization: Bearer sk-proj-abcdef",
        "redis://:hunter2-hunter2@redis:6379/0 and redis://redis:6379/0?password=hunter2-x&db=1",
        "rediss://default:hunter2-hunter2@redis:6379/0",
    ],
)
def test_unknown_secrets_of_known_shapes_are_scrubbed(text: str) -> None:
    scrubbed = Redactor([])(text)
    for secret in (
        "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
        "short-secret",
        "sk-proj-abcdef",
        "hunter2",
    ):
        assert secret not in scrubbed, scrubbed
    assert "***" in scrubbed


def test_ordinary_text_is_left_alone() -> None:
    text = "job=42 done chat_id=-100123 at 12:30:15 http://127.0.0.1:8080/healthz user:1"
    assert Redactor([])(text) == text


def test_warnings_and_uncaught_errors_go_through_the_scrubber(tmp_path: Path) -> None:
    token = "987654:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
    script = (
        "import threading, warnings\n"
        "from bot.logs import setup_logging\n"
        "setup_logging('INFO', [])\n"
        f"warnings.warn('deprecated call to https://x/bot{token}/getMe')\n"
        "import asyncio\n"
        "async def report():\n"
        f"    error = OSError('https://x/bot{token}/sendMessage')\n"
        "    loop = asyncio.get_running_loop()\n"
        "    loop.call_exception_handler({'message': 'x', 'exception': error})\n"
        "asyncio.run(report())\n"
        f"thread = threading.Thread(target=lambda: 1 / 0, name='bot{token}')\n"
        "thread.start(); thread.join()\n"
        f"raise RuntimeError('cannot reach https://x/bot{token}/getMe')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1
    assert "UserWarning" in result.stderr
    assert "OSError" in result.stderr  # asyncio's handler logs to the "asyncio" logger
    assert "ZeroDivisionError" in result.stderr
    assert "RuntimeError" in result.stderr
    assert token.split(":")[1] not in result.stderr, result.stderr


async def test_at_debug_library_loggers_stay_at_info_unless_named(
    bot_process: ProcessFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    api.set_transcript(voice_bytes, "words only the chat may read")
    logs: list[str] = []
    for named in ("", "telegram.ext"):
        bot = bot_process(LOG_LEVEL="DEBUG", DEBUG_LOGGERS=named)
        await bot.start()
        assert await bot.deliver(voice(tg, voice_bytes)) == 200
        await tg.wait_for(
            lambda: final_texts(tg).count("words only the chat may read") == len(logs) + 1,
            timeout=20,
        )
        bot.signal(signal.SIGTERM)
        assert await bot.wait() == 0
        logs.append(bot.log())
    quiet, told = logs
    assert "words only the chat may read" not in quiet
    assert not [
        line for line in quiet.splitlines() if " DEBUG " in line and " DEBUG bot" not in line
    ]
    assert " DEBUG telegram.ext.ExtBot: Calling Bot API endpoint" in told
