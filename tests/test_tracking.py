"""SENTRY_DSN: what reaches the tracker is scrubbed like the logs, and holds no transcript."""

from __future__ import annotations

import asyncio
import gzip
import json
import subprocess
import sys
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.logs import Redactor
from bot.tracking import FILTERED, scrub_event
from tests.conftest import API_KEY, SECRET, TOKEN

TRANSCRIPT = "meet me at the old bridge at nine"
OTHER_TOKEN = "987654:ZYXWVUTSRQPONMLKJIHGFEDCBA-abcdef"


def an_event() -> dict[str, Any]:
    """An event as the SDK builds one, with secrets and private text in every usual place."""
    return {
        "message": f"sendMessage failed for https://api.telegram.org/bot{TOKEN}/sendMessage",
        "exception": {
            "values": [
                {
                    "type": "UpstreamAuthError",
                    "value": f"401 Incorrect API key provided: {API_KEY}",
                    "stacktrace": {
                        "frames": [
                            {"function": "_transcribe", "vars": {"text": TRANSCRIPT, "k": API_KEY}}
                        ]
                    },
                }
            ]
        },
        "request": {
            "url": "https://bot.example.com/telegram/hook",
            "headers": {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "json"},
            "data": {"message": {"voice": {}, "caption": TRANSCRIPT}},
        },
        "breadcrumbs": {
            "values": [
                {"category": "httpx", "message": f"POST /bot{OTHER_TOKEN}/getMe"},
                {"category": "log", "message": f"Authorization: Bearer {API_KEY}"},
            ]
        },
        "extra": {"reason": f"secret is {SECRET}", "text": TRANSCRIPT},
    }


def test_scrubbing_removes_every_secret_and_every_private_text() -> None:
    redact = Redactor([TOKEN, API_KEY, SECRET])
    scrubbed = json.dumps(scrub_event(an_event(), redact))
    for secret in (TOKEN, TOKEN.split(":")[1], API_KEY, SECRET, OTHER_TOKEN, TRANSCRIPT):
        assert secret not in scrubbed
    event = scrub_event(an_event(), redact)
    assert event["request"]["headers"]["X-Telegram-Bot-Api-Secret-Token"] == FILTERED
    assert event["request"]["headers"]["Content-Type"] == "json"
    assert event["request"]["data"] == FILTERED
    frame = event["exception"]["values"][0]["stacktrace"]["frames"][0]
    assert frame == {"function": "_transcribe", "vars": FILTERED}
    # What helps the operator stays.
    assert event["exception"]["values"][0]["type"] == "UpstreamAuthError"
    assert event["request"]["url"] == "https://bot.example.com/telegram/hook"
    assert event["exception"]["values"][0]["value"] == "401 Incorrect API key provided: ***"


@pytest.fixture
async def sentry() -> AsyncIterator[tuple[str, list[bytes]]]:
    """A stand-in for Sentry's ingest endpoint: the DSN, and every envelope it received."""
    received: list[bytes] = []

    async def envelope(request: web.Request) -> web.Response:
        body = await request.read()
        if body[:2] == b"\x1f\x8b":
            body = gzip.decompress(body)
        elif request.headers.get("Content-Encoding") == "deflate":
            body = zlib.decompress(body)
        received.append(body)
        return web.json_response({"id": "0" * 32})

    app = web.Application()
    app.router.add_post("/api/1/envelope/", envelope)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://publickey@127.0.0.1:{port}/1", received
    await runner.cleanup()


_SCRIPT = """
import asyncio, logging
from bot.__main__ import secrets_of
from bot.config import load_settings
from bot.tracking import setup_tracking

async def main():
    settings = load_settings()
    assert setup_tracking(settings, secrets_of(settings))
    logging.getLogger("bot.pipeline").error(
        "job=7 failed: %s %s", settings.openai_api_key.get_secret_value(), "{transcript}"
    )
    async def crash(text):
        raise RuntimeError("bot" + settings.telegram_bot_token.get_secret_value())
    task = asyncio.create_task(crash("{transcript}"))
    await asyncio.sleep(0.2)
    import sentry_sdk
    sentry_sdk.flush(5)

asyncio.run(main())
"""


async def test_the_sdk_sends_errors_through_the_same_scrubbing(
    sentry: tuple[str, list[bytes]], tmp_path: Path
) -> None:
    dsn, received = sentry
    env = {
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "OPENAI_API_KEY": API_KEY,
        "SENTRY_DSN": dsn,
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
        "HOME": str(tmp_path),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _SCRIPT.replace("{transcript}", TRANSCRIPT),
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, out.decode()
    sent = b"\n".join(received).decode(errors="replace")
    assert "job=7 failed" in sent, "the error reached the tracker"
    assert "RuntimeError" in sent, "so did the crashed task"
    for secret in (TOKEN, TOKEN.split(":")[1], API_KEY):
        assert secret not in sent
