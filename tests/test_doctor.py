"""`python -m bot check` against the fakes: every line ✓, then each failure with its line."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from bot.store import SqliteStore
from tests.conftest import API_KEY, TOKEN, WEBHOOK_PATH, next_message_id, process_env
from tests.fakes import FakeTelegram, FakeTranscriptionAPI
from tests.redis_server import RedisServer

WEBHOOK_URL = f"https://bot.example.com{WEBHOOK_PATH}"
NAMES = ["settings", "telegram token", "webhook", "transcription API", "ffmpeg", "ffprobe"]


async def doctor(env: dict[str, str], cwd: Path) -> tuple[int, list[str]]:
    """Run `python -m bot check` as an operator would; its exit code and lines."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "check",
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    text = out.decode()
    assert TOKEN not in text
    assert API_KEY not in text
    assert TOKEN.split(":")[1] not in text
    assert proc.returncode is not None
    return proc.returncode, text.splitlines()


def line(lines: list[str], name: str) -> str:
    found = [x for x in lines if x[2:].startswith(f"{name}:")]
    assert len(found) == 1, lines
    return found[0]


@pytest.fixture
def env(tg: FakeTelegram, api: FakeTranscriptionAPI, tmp_path: Path) -> dict[str, str]:
    values = process_env(tg, api, tmp_path, 8080)
    values["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    return values


@pytest.fixture
async def migrated(tmp_path: Path) -> Path:
    """The SQLite file as the bot leaves it after a start."""
    store = SqliteStore(tmp_path / "bot.sqlite3")
    await store.open()
    await store.close()
    return tmp_path / "bot.sqlite3"


async def set_webhook(tg: FakeTelegram, url: str) -> None:
    async with httpx.AsyncClient() as http:
        answer = await http.post(f"{tg.url}/bot{TOKEN}/setWebhook", json={"url": url})
        assert answer.json()["ok"]


async def test_a_healthy_deployment_passes_every_check(
    tg: FakeTelegram, api: FakeTranscriptionAPI, env: dict[str, str], migrated: Path
) -> None:
    await set_webhook(tg, WEBHOOK_URL)
    code, lines = await doctor(env, migrated.parent)
    assert code == 0, lines
    assert [x[0] for x in lines] == ["✓"] * len(lines), lines
    for name in [*NAMES, "database"]:
        line(lines, name)
    assert f"(id {tg.bot_user['id']})" in line(lines, "telegram token")
    assert WEBHOOK_URL in line(lines, "webhook")
    assert "0 updates waiting" in line(lines, "webhook")
    assert "gpt-4o-mini-transcribe among them" in line(lines, "transcription API")
    assert re.match(r"✓ ffmpeg: \d", line(lines, "ffmpeg"))  # its version number
    assert "writable; schema" in line(lines, "database")
    assert "up to date" in line(lines, "database")
    assert api.model_list_calls == 1
    assert api.requests == []  # nothing billable was asked for


async def test_a_token_telegram_refuses_is_its_own_line_and_fails(
    tg: FakeTelegram, env: dict[str, str], migrated: Path
) -> None:
    env["TELEGRAM_BOT_TOKEN"] = "654321:WRONG-token-abcdefghijklmnopqrstuvw"
    code, lines = await doctor(env, migrated.parent)
    assert code == 1
    bad = line(lines, "telegram token")
    assert bad.startswith("✗")
    assert "refused TELEGRAM_BOT_TOKEN" in bad
    assert "@BotFather" in bad
    assert "WRONG-token" not in "\n".join(lines)
    assert line(lines, "transcription API").startswith("✓")


async def test_a_webhook_set_to_another_url_fails_and_says_both(
    tg: FakeTelegram, env: dict[str, str], migrated: Path
) -> None:
    await set_webhook(tg, "https://old.example.com/hook")
    code, lines = await doctor(env, migrated.parent)
    assert code == 1
    bad = line(lines, "webhook")
    assert bad.startswith("✗")
    assert "https://old.example.com/hook" in bad
    assert WEBHOOK_URL in bad
    assert [x for x in lines if x.startswith("✗")] == [bad]


async def test_a_failing_delivery_is_shown_with_the_waiting_updates(
    tg: FakeTelegram, env: dict[str, str], migrated: Path
) -> None:
    await set_webhook(tg, WEBHOOK_URL)
    tg.pending_updates.extend([{"update_id": 1}, {"update_id": 2}])
    tg.set_webhook_error("Wrong response from the webhook: 502 Bad Gateway", seconds_ago=30)
    code, lines = await doctor(env, migrated.parent)
    assert code == 1
    bad = line(lines, "webhook")
    assert bad.startswith("✗")
    assert "2 updates waiting" in bad
    assert "502 Bad Gateway" in bad

    tg.set_webhook_error("Connection timed out", seconds_ago=3 * 3600)  # long over
    code, lines = await doctor(env, migrated.parent)
    old = line(lines, "webhook")
    assert code == 0
    assert old.startswith("✓")
    assert "Connection timed out" in old
    assert "3 h ago" in old


async def test_polling_mode_wants_no_webhook(
    tg: FakeTelegram, env: dict[str, str], migrated: Path
) -> None:
    del env["WEBHOOK_URL"], env["WEBHOOK_SECRET"]
    code, lines = await doctor(env, migrated.parent)
    assert code == 0
    assert line(lines, "webhook").startswith("✓ webhook: none set")
    assert "polling mode" in line(lines, "settings")

    await set_webhook(tg, "https://elsewhere.example.com/hook")
    code, lines = await doctor(env, migrated.parent)
    assert code == 1
    bad = line(lines, "webhook")
    assert bad.startswith("✗")
    assert "elsewhere.example.com" in bad
    assert "polls" in bad


async def test_an_api_key_the_api_refuses_fails_its_line(
    tg: FakeTelegram, api: FakeTranscriptionAPI, env: dict[str, str], migrated: Path
) -> None:
    await set_webhook(tg, WEBHOOK_URL)
    env["OPENAI_API_KEY"] = "sk-revoked-key-00000000000"
    code, lines = await doctor(env, migrated.parent)
    assert code == 1
    bad = line(lines, "transcription API")
    assert bad.startswith("✗")
    assert "refused OPENAI_API_KEY (401" in bad
    assert "sk-revoked-key-00000000000" not in "\n".join(lines)
    assert [x for x in lines if x.startswith("✗")] == [bad]


async def test_ffmpeg_missing_from_path_fails_both_tools(
    tg: FakeTelegram, env: dict[str, str], migrated: Path, tmp_path: Path
) -> None:
    await set_webhook(tg, WEBHOOK_URL)
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    env["PATH"] = str(empty)
    code, lines = await doctor(env, migrated.parent)
    assert code == 1
    for tool in ("ffmpeg", "ffprobe"):
        bad = line(lines, tool)
        assert bad.startswith("✗")
        assert "not found on PATH" in bad
        assert "apt-get install" in bad
    assert line(lines, "database").startswith("✓")


@pytest.fixture
def read_only(migrated: Path) -> Iterator[Path]:
    """The database file and its directory made read-only, even for root (chattr +i)."""
    paths = [migrated, migrated.parent]
    if os.geteuid() == 0:
        chattr = shutil.which("chattr")
        if chattr is None:
            pytest.skip("chattr is not installed")
        made = subprocess.run([chattr, "+i", *map(str, paths)], capture_output=True, check=False)
        if made.returncode != 0:
            pytest.skip(f"this filesystem has no immutable flag: {made.stderr!r}")
        try:
            yield migrated
        finally:
            subprocess.run([chattr, "-i", *map(str, paths)], check=True)
    else:
        for path in paths:
            path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
        try:
            yield migrated
        finally:
            for path in paths:
                path.chmod(path.stat().st_mode | stat.S_IWUSR)


async def test_a_read_only_database_fails_its_line(
    tg: FakeTelegram, env: dict[str, str], read_only: Path
) -> None:
    await set_webhook(tg, WEBHOOK_URL)
    code, lines = await doctor(env, read_only.parent.parent)
    assert code == 1
    bad = line(lines, "database")
    assert bad.startswith("✗")
    assert "cannot write to" in bad
    assert "write access" in bad
    assert [x for x in lines if x.startswith("✗")] == [bad]


async def test_a_database_not_made_yet_passes_when_its_directory_is_writable(
    tg: FakeTelegram, env: dict[str, str], tmp_path: Path
) -> None:
    await set_webhook(tg, WEBHOOK_URL)
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'new' / 'bot.sqlite3'}"
    code, lines = await doctor(env, tmp_path)
    assert code == 0
    assert "creates it at start" in line(lines, "database")


async def test_redis_shows_its_version_and_eviction_policy(
    tg: FakeTelegram, env: dict[str, str], redis_url: str, redis_server: RedisServer, tmp_path: Path
) -> None:
    await set_webhook(tg, WEBHOOK_URL)
    env["DATABASE_URL"] = redis_url
    code, lines = await doctor(env, tmp_path)
    redis = line(lines, "redis")
    assert code == 0, lines
    assert redis.startswith("✓ redis: Redis ")
    assert "maxmemory-policy noeviction" in redis

    env["DATABASE_URL"] = f"redis://127.0.0.1:{free_port_closed()}/0"
    code, lines = await doctor(env, tmp_path)
    assert code == 1
    assert line(lines, "redis").startswith("✗")


def free_port_closed() -> int:
    from tests.conftest import free_port

    return free_port()


async def test_invalid_settings_are_named_and_fail(env: dict[str, str], tmp_path: Path) -> None:
    del env["OPENAI_API_KEY"]
    env["LISTEN_PORT"] = "not-a-port"
    code, lines = await doctor(env, tmp_path)
    assert code == 1
    assert any(x.startswith("✗ settings: OPENAI_API_KEY: is required") for x in lines), lines
    assert any(x.startswith("✗ settings: LISTEN_PORT:") for x in lines), lines


@pytest.fixture
async def silent_host() -> AsyncIterator[str]:
    """A host that takes connections and never answers: host:port."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        for writer in held:
            writer.close()
        server.close()


async def test_hosts_that_never_answer_fail_their_lines_within_one_timeout(
    env: dict[str, str], silent_host: str, tmp_path: Path
) -> None:
    env["TELEGRAM_API_URL"] = f"http://{silent_host}"
    env["OPENAI_BASE_URL"] = f"http://{silent_host}/v1"
    env["DATABASE_URL"] = f"redis://:hunter2-redis@{silent_host}/0"
    # Each check waits 10 s at most, and they wait together: far less than one after another.
    code, lines = await asyncio.wait_for(doctor(env, tmp_path), 25)
    assert code == 1
    for name in ("telegram token", "transcription API", "redis"):
        bad = line(lines, name)
        assert bad.startswith("✗"), lines
        assert "no answer within" in bad, bad
    assert "hunter2-redis" not in "\n".join(lines)
    assert line(lines, "ffmpeg").startswith("✓")


async def test_admins_who_never_wrote_to_the_bot_are_named_as_getting_no_alerts(
    tg: FakeTelegram, env: dict[str, str], migrated: Path
) -> None:
    await set_webhook(tg, WEBHOOK_URL)
    tg.add_message(7001, next_message_id())  # 7001 has a private chat with the bot; 7002 not
    env["ADMIN_USER_IDS"] = "7001,7002"
    code, lines = await doctor(env, migrated.parent)
    admins = line(lines, "admins")
    assert code == 0, lines  # the bot works; the admin has something to do
    assert "7002" in admins
    assert "7001" not in admins
    assert "/start" in admins

    tg.add_message(7002, next_message_id())
    code, lines = await doctor(env, migrated.parent)
    assert line(lines, "admins") == "✓ admins: 2, each can be written to"

    tg.fail_next("getChat", error_code=500, description="Internal Server Error")
    code, lines = await doctor(env, migrated.parent)
    unsure = line(lines, "admins")
    assert "not checked" in unsure
    assert "each can be written to" not in unsure

    del env["ADMIN_USER_IDS"]
    code, lines = await doctor(env, migrated.parent)
    assert not [x for x in lines if "admins:" in x], "no admins, no line"


async def test_an_engine_without_a_model_list_is_asked_without_audio(
    tg: FakeTelegram, api: FakeTranscriptionAPI, env: dict[str, str], migrated: Path
) -> None:
    """whisper.cpp's server has no GET /models: the transcription route is asked with no file
    (refused as incomplete, so nothing is transcribed or paid), which checks it and the key."""
    await set_webhook(tg, WEBHOOK_URL)
    api.lists_models = False
    code, lines = await doctor(env, migrated.parent)
    assert code == 0, lines
    good = line(lines, "transcription API")
    assert "/audio/transcriptions answers" in good
    assert [c.status for c in api.requests] == [400], "asked once, and nothing transcribed"

    env["OPENAI_API_KEY"] = "sk-revoked-key-00000000000"
    code, lines = await doctor(env, migrated.parent)
    assert code == 1
    assert "refused OPENAI_API_KEY (401" in line(lines, "transcription API")

    env["OPENAI_BASE_URL"] = f"{api.url}/not-the-api"
    code, lines = await doctor(env, migrated.parent)
    assert code == 1
    assert "check OPENAI_BASE_URL" in line(lines, "transcription API")
