"""One way to run the bot in tests: the real BotService against the fake servers, over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp.abc import AbstractResolver

from bot.app import BotService
from bot.config import Settings
from tests.fakes import FakeTelegram, FakeTranscriptionAPI, voice_update
from tests.redis_server import RedisServer

TOKEN = "123456:TEST-token-abcdefghijklmnopqrstuvwxyz"
API_KEY = "sk-test-key-0123456789abcdef"
SECRET = "webhook-secret_0123456789"
WEBHOOK_PATH = "/telegram/hook"

# The longest a bot may take to start: it imports its libraries first, which takes seconds when
# the machine is busy (the suite runs in parallel; other work may share the cores).
START_SECONDS = 60

_update_ids = itertools.count(1000)
_message_ids = itertools.count(100)
_redis_databases = itertools.count(1)
BACKENDS = ("sqlite", "redis")


def next_update_id() -> int:
    return next(_update_ids)


def next_message_id() -> int:
    return next(_message_ids)


def make_audio(path: Path, *args: str) -> Path:
    """Run ffmpeg to make a fixture file (lavfi sources: no input files needed)."""
    subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args, str(path)],
        check=True,
    )
    return path


@pytest.fixture(scope="session")
def audio_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("audio")


@pytest.fixture(scope="session")
def voice_bytes(audio_dir: Path) -> bytes:
    """A real 2-second ogg/opus voice note, as Telegram clients record them."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    path = make_audio(
        audio_dir / "voice.ogg",
        *("-f", "lavfi", "-i", "sine=frequency=440:duration=2"),
        *("-ac", "1", "-c:a", "libopus", "-b:a", "24k", "-f", "ogg"),
    )
    return path.read_bytes()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the whole run, on its own port; each test takes its own database."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.kill()  # nothing to keep: it runs without persistence


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """A Redis database of this test's own, empty at the start and emptied after."""
    db = next(_redis_databases) % redis_server.databases
    redis_server.flush(db)
    yield redis_server.url(db)
    redis_server.flush(db)


def backend_url(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> str:
    """DATABASE_URL for one of BACKENDS (Redis: a database of this test's own)."""
    if backend == "redis":
        url: str = request.getfixturevalue("redis_url")
        return url
    return f"sqlite:///{tmp_path / 'bot.sqlite3'}"


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """The bots' DATABASE_URL: SQLite, unless a module overrides this fixture (see BACKENDS)."""
    return f"sqlite:///{tmp_path / 'bot.sqlite3'}"


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(TOKEN) as fake:
        yield fake


@pytest.fixture
async def api() -> AsyncIterator[FakeTranscriptionAPI]:
    async with FakeTranscriptionAPI(API_KEY) as fake:
        yield fake


@dataclass
class RunningBot:
    service: BotService
    settings: Settings
    http: httpx.AsyncClient
    task: asyncio.Task[None]
    stop: asyncio.Event
    sent: list[int] = field(default_factory=list)

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.service.web.port}{WEBHOOK_PATH}"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.service.web.port}"

    @property
    def metrics_url(self) -> str:
        """/metrics on its own listener (METRICS_PORT; 0 here: any free port)."""
        return f"http://127.0.0.1:{self.service.web.metrics_port}/metrics"

    async def deliver(
        self, update: dict[str, Any], *, secret: str | None = SECRET
    ) -> httpx.Response:
        """POST an update to the webhook as Telegram does."""
        headers = {} if secret is None else {"X-Telegram-Bot-Api-Secret-Token": secret}
        return await self.http.post(self.webhook_url, json=update, headers=headers)

    async def shutdown(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 30)


BotFactory = Callable[..., contextlib.AbstractAsyncContextManager[RunningBot]]


def bot_settings(
    tg: FakeTelegram, api: FakeTranscriptionAPI, db: Path, **overrides: Any
) -> Settings:
    values: dict[str, Any] = {
        "telegram_bot_token": TOKEN,
        "telegram_api_url": tg.url,
        "openai_api_key": API_KEY,
        "openai_base_url": api.url,
        "database_url": f"sqlite:///{db}",
        "listen_host": "127.0.0.1",
        "listen_port": 0,
        "metrics_port": 0,
        "webhook_url": f"https://bot.example.com{WEBHOOK_PATH}",
        "webhook_secret": SECRET,
        "upstream_retry_seconds": 20,
        "shutdown_grace_seconds": 5,
        # A placeholder at once in private chats, whatever the wait: most tests follow a note
        # through its placeholder; test_one_message and test_private_chat use the default.
        "placeholder_after_seconds": 0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
def bot_factory(
    tg: FakeTelegram, api: FakeTranscriptionAPI, tmp_path: Path, database_url: str
) -> BotFactory:
    """`async with bot_factory(**settings) as bot:` runs a bot; leaving it stops the bot.

    link_resolver=...: the DNS answers the bot gets for the hosts of links.
    """

    @contextlib.asynccontextmanager
    async def run(
        *, link_resolver: AbstractResolver | None = None, **overrides: Any
    ) -> AsyncIterator[RunningBot]:
        settings = bot_settings(
            tg, api, tmp_path / "bot.sqlite3", **{"database_url": database_url, **overrides}
        )
        service = BotService(settings, link_resolver=link_resolver)
        stop = asyncio.Event()
        task = asyncio.create_task(service.run(stop))
        async with httpx.AsyncClient(timeout=10) as http:
            running = RunningBot(service, settings, http, task, stop)
            deadline = time.monotonic() + START_SECONDS
            while not (service.web.ready or task.done()) and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            if task.done():
                task.result()  # raise the start-up error
            assert service.web.ready, "the bot did not become ready"
            try:
                yield running
            finally:
                stop.set()
                await asyncio.wait_for(task, 30)

    return run


@pytest.fixture
async def bot(bot_factory: BotFactory) -> AsyncIterator[RunningBot]:
    async with bot_factory() as running:
        yield running


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class BotProcess:
    """`python -m bot` as a real subprocess, as production runs it."""

    env: dict[str, str]
    log_path: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{WEBHOOK_PATH}"

    async def start(self) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + START_SECONDS
        async with httpx.AsyncClient(timeout=1) as http:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"bot exited at start:\n{self.log()}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"http://127.0.0.1:{self.port}/healthz")).status_code == 200:
                        return
                await asyncio.sleep(0.05)
        raise RuntimeError(f"bot did not become healthy in {START_SECONDS} s:\n{self.log()}")

    async def deliver(self, update: dict[str, Any], *, secret: str = SECRET) -> int:
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.post(
                self.webhook_url,
                json=update,
                headers={"X-Telegram-Bot-Api-Secret-Token": secret},
            )
            return response.status_code

    async def health(self) -> int:
        async with httpx.AsyncClient(timeout=10) as http:
            return (await http.get(f"http://127.0.0.1:{self.port}/healthz")).status_code

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    async def wait(self, timeout: float = 30) -> int:
        assert self.proc is not None
        for _ in range(int(timeout * 20)):
            code = self.proc.poll()
            if code is not None:
                return code
            await asyncio.sleep(0.05)
        raise TimeoutError(f"bot did not exit:\n{self.log()}")

    def stop_now(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


ProcessFactory = Callable[..., BotProcess]


def process_env(
    tg: FakeTelegram, api: FakeTranscriptionAPI, home: Path, port: int, **settings: str
) -> dict[str, str]:
    """The environment of a `python -m bot` subprocess talking to the fakes."""
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_URL": tg.url,
        "OPENAI_API_KEY": API_KEY,
        "OPENAI_BASE_URL": api.url,
        "WEBHOOK_URL": f"https://bot.example.com{WEBHOOK_PATH}",
        "WEBHOOK_SECRET": SECRET,
        "LISTEN_HOST": "127.0.0.1",
        "LISTEN_PORT": str(port),
        "METRICS_PORT": "0",
        "DATABASE_URL": f"sqlite:///{home / 'bot.sqlite3'}",
        **settings,
    }


@pytest.fixture
def bot_process(
    tg: FakeTelegram, api: FakeTranscriptionAPI, tmp_path: Path, database_url: str
) -> Iterator[ProcessFactory]:
    """`bot_process(SETTING="value", ...)` builds (not starts) a subprocess bot; each has its
    own port and log, and all share DATABASE_URL (the `database_url` fixture)."""
    made: list[BotProcess] = []

    def make(**settings: str) -> BotProcess:
        port = free_port()
        defaults = {"SHUTDOWN_GRACE_SECONDS": "10", "DATABASE_URL": database_url}
        env = process_env(tg, api, tmp_path, port, **(defaults | settings))
        process = BotProcess(env, tmp_path / f"bot-{len(made) + 1}.log", port)
        made.append(process)
        return process

    yield make
    for process in made:
        process.stop_now()


async def eventually(predicate: Callable[[], bool], timeout: float = 10, what: str = "") -> None:
    """Poll a condition that no fake call signals (e.g. a request still in flight)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)
    assert predicate(), what


def voice_message(
    tg: FakeTelegram,
    data: bytes,
    *,
    chat_id: int,
    user_id: int | None = None,
    chat_type: str = "private",
    duration: int = 2,
    language_code: str = "en",
) -> dict[str, Any]:
    """A voice-note update whose file and message the fake Telegram knows."""
    file = tg.add_file(data)
    message_id = next_message_id()
    tg.add_message(chat_id, message_id)
    return voice_update(
        next_update_id(),
        chat_id=chat_id,
        user_id=chat_id if user_id is None else user_id,
        message_id=message_id,
        file=file,
        chat_type=chat_type,
        duration=duration,
        language_code=language_code,
    )


async def send_voice(bot: RunningBot, tg: FakeTelegram, data: bytes, **how: Any) -> int:
    """Deliver a voice note to the webhook; its message id."""
    update = voice_message(tg, data, **how)
    assert (await bot.deliver(update)).status_code == 200
    message_id: int = update["message"]["message_id"]
    return message_id
