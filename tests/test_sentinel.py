"""redis+sentinel://: the bot finds the master through Sentinel, waits for a replica before it
answers a delivery, and goes on after a failover."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from bot.config import RedisLocation, SentinelAddress, database_location
from bot.store.redis_db import RedisConnection
from tests.conftest import BotFactory, RunningBot, free_port, process_env, voice_message
from tests.fakes import FakeTelegram, FakeTranscriptionAPI
from tests.redis_server import RedisServer

SERVICE = "transcribot-master"


@dataclass
class Sentinel:
    directory: Path
    port: int
    pid: int | None = None

    def start(self, master_port: int) -> None:
        conf = self.directory / "sentinel.conf"
        conf.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndaemonize yes\n"
            f"pidfile {self.directory / 'sentinel.pid'}\n"
            f"logfile {self.directory / 'sentinel.log'}\n"
            f"dir {self.directory}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {master_port} 1\n"
            f"sentinel down-after-milliseconds {SERVICE} 1000\n"
            f"sentinel failover-timeout {SERVICE} 4000\n"
        )
        binary = shutil.which("redis-server")
        assert binary is not None
        subprocess.run([binary, str(conf), "--sentinel"], check=True, stdin=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, decode_responses=True)
        for _ in range(200):
            with contextlib.suppress(redis.ConnectionError):
                if client.sentinel_master(SERVICE):
                    break
            time.sleep(0.025)
        client.close()
        self.pid = int((self.directory / "sentinel.pid").read_text())

    def master_port(self) -> int:
        client = redis.Redis(port=self.port, decode_responses=True)
        try:
            address = client.sentinel_get_master_addr_by_name(SERVICE)
            assert isinstance(address, tuple)
            return int(address[1])
        finally:
            client.close()

    def kill(self) -> None:
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)


@dataclass
class Trio:
    master: RedisServer
    replica: RedisServer
    sentinel: Sentinel

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel.port}/{SERVICE}/0"


@pytest.fixture
def trio(tmp_path: Path) -> Iterator[Trio]:
    # No 5 s pause before the first full sync (Redis 7's diskless default).
    master = RedisServer(
        tmp_path / "master", databases=16, extra_args=("--repl-diskless-sync-delay", "0")
    )
    master.start()
    replica = RedisServer(
        tmp_path / "replica",
        databases=16,
        extra_args=(
            *("--replicaof", "127.0.0.1", str(master.port)),
            *("--enable-debug-command", "local"),
        ),
    )
    replica.start()
    sentinel = Sentinel(tmp_path / "sentinel", free_port())
    sentinel.directory.mkdir()
    try:
        _wait_in_sync(master.port)
        sentinel.start(master.port)
        yield Trio(master, replica, sentinel)
    finally:
        sentinel.kill()
        replica.kill()
        master.kill()


def _wait_in_sync(master_port: int) -> None:
    client = redis.Redis(port=master_port, decode_responses=True)
    try:
        for _ in range(400):
            if client.info("replication").get("slave0", {}).get("state") == "online":
                return
            time.sleep(0.025)
        raise RuntimeError("the replica did not connect")
    finally:
        client.close()


def jobs_on(port: int) -> int:
    client = redis.Redis(port=port, decode_responses=True)
    try:
        keys = [str(key) for key in client.keys("transcribot:job:*")]
        return len([key for key in keys if key.rpartition(":")[2].isdigit()])
    finally:
        client.close()


async def transcribed(bot: RunningBot, tg: FakeTelegram, voice: bytes, chat_id: int) -> None:
    """Deliver a voice note as Telegram does (again after a 503) and wait for its transcript."""
    update = voice_message(tg, voice, chat_id=chat_id)
    for _ in range(60):
        if (await bot.deliver(update)).status_code == 200:
            break
        await asyncio.sleep(0.5)
    else:
        raise AssertionError("never accepted")
    await tg.wait_for(
        lambda: any("transcript" in (m.text or "") for m in tg.bot_messages(chat_id)), timeout=30
    )


async def test_an_accepted_note_is_on_the_replica_before_telegram_gets_its_200(
    bot_factory: BotFactory, tg: FakeTelegram, voice_bytes: bytes, trio: Trio
) -> None:
    async with bot_factory(database_url=trio.url) as bot:
        await transcribed(bot, tg, voice_bytes, chat_id=5101)
        # The replica is busy for 0.6 s: the delivery's answer waits for it to confirm.
        replica = redis.asyncio.Redis(port=trio.replica.port)
        sleeping = asyncio.create_task(
            replica.execute_command("DEBUG", "SLEEP", "0.6")  # type: ignore[no-untyped-call]
        )
        await asyncio.sleep(0.05)
        started = time.monotonic()
        answer = await bot.deliver(voice_message(tg, voice_bytes, chat_id=5102))
        waited = time.monotonic() - started
        await sleeping
        await replica.aclose()
        assert answer.status_code == 200
        assert waited >= 0.4, "answered before the replica had the job"
        assert jobs_on(trio.replica.port) == 2


async def test_the_bot_goes_on_with_the_promoted_replica_after_a_failover(
    bot_factory: BotFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    voice_bytes: bytes,
    trio: Trio,
) -> None:
    async with bot_factory(database_url=trio.url) as bot:
        await transcribed(bot, tg, voice_bytes, chat_id=5201)
        trio.master.kill()
        for _ in range(200):  # Sentinel notices after 1 s and promotes the replica
            if trio.sentinel.master_port() == trio.replica.port:
                break
            await asyncio.sleep(0.1)
        assert trio.sentinel.master_port() == trio.replica.port
        await transcribed(bot, tg, voice_bytes, chat_id=5202)
    assert jobs_on(trio.replica.port) == 2  # the first job, replicated before its 200, is kept


def test_a_sentinel_url_names_every_sentinel_the_service_and_the_database() -> None:
    location = database_location(
        "redis+sentinel://:pw%40x@s1:26379,s2,s3:26380/mymaster/2?sentinel_password=sp"
    )
    assert isinstance(location, RedisLocation)
    assert location.sentinel == SentinelAddress(
        (("s1", 26379), ("s2", 26379), ("s3", 26380)), "mymaster", 2, "sp"
    )
    assert location.password == "pw@x"
    assert location.wait == (1, 1000)  # with Sentinel, a replica confirms each accepted update
    assert "pw" not in location.redacted


def test_wait_settings_come_from_the_query_and_redis_py_never_sees_them() -> None:
    location = database_location("redis://h:6379/0?wait_replicas=2&wait_timeout_ms=250")
    assert isinstance(location, RedisLocation)
    assert location.sentinel is None
    assert location.wait == (2, 250)
    assert location.plain_url == "redis://h:6379/0"
    plain = database_location("redis://h:6379/0")
    assert isinstance(plain, RedisLocation)
    assert plain.wait == (0, 1000)  # no replicas assumed without Sentinel


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://s1:26379",  # no service
        "redis+sentinel://s1:26379/mymaster/db",  # db not a number
        "redis+sentinel://s1:port/mymaster",
        "redis+sentinel://s1:26379/mymaster?wait_replicas=some",
    ],
)
def test_a_bad_sentinel_url_is_refused_at_start(url: str) -> None:
    with pytest.raises(ValueError, match=r"sentinel|whole number"):
        database_location(url)


async def test_the_doctor_reaches_redis_through_sentinel(
    tg: FakeTelegram, api: FakeTranscriptionAPI, trio: Trio, tmp_path: Path
) -> None:
    from tests.test_doctor import doctor, line

    env = process_env(tg, api, tmp_path, 8080, DATABASE_URL=trio.url)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    _, lines = await doctor(env, tmp_path)
    assert line(lines, "redis").startswith("✓ redis: Redis ")
    assert "maxmemory-policy noeviction" in line(lines, "redis")


async def test_the_doctor_names_the_sentinels_when_none_answers(
    tg: FakeTelegram, api: FakeTranscriptionAPI, tmp_path: Path
) -> None:
    from tests.test_doctor import doctor, line

    url = f"redis+sentinel://:pw-{free_port()}@127.0.0.1:{free_port()}/transcribot/0"
    env = process_env(tg, api, tmp_path, 8080, DATABASE_URL=url)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    code, lines = await doctor(env, tmp_path)
    assert code == 1
    bad = line(lines, "redis")
    assert bad.startswith("✗")
    assert "Sentinels" in bad
    assert "transcribot" in bad


def test_a_redis_error_shows_neither_the_password_nor_the_sentinels_own() -> None:
    location = database_location(
        "redis+sentinel://:master-pass@s1:26379/mymaster/0?sentinel_password=sent-pass"
    )
    assert isinstance(location, RedisLocation)
    told = RedisConnection(location)._redact("auth master-pass failed; sentinel sent-pass refused")
    assert "master-pass" not in told
    assert "sent-pass" not in told
