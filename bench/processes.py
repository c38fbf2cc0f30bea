"""The processes under the benchmark: the fakes, the bot as `python -m bot` runs it (one or
more replicas) and, for the replica scenarios, redis-server.

Both are pinned to their CPUs (when given), get SIGTERM if the benchmark dies, and are always
stopped on the way out: SIGTERM, then SIGKILL after a grace.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench.machine import ROOT

TOKEN = "123456:BENCH-token-abcdefghijklmnopqrstuvwxyz"
API_KEY = "sk-bench-key-0123456789abcdef"
SECRET = "bench-webhook-secret_0123456789"
WEBHOOK_PATH = "/telegram/hook"
START_TIMEOUT = 30.0
STOP_GRACE = 15.0
_PR_SET_PDEATHSIG = 1


class BenchError(RuntimeError):
    """The benchmark could not run a scenario (not a slow result: a broken setup)."""


def _child_setup(cpus: set[int] | None) -> Callable[[], None]:
    """Runs in the child before exec: pin it, and have it terminated if we die."""

    def setup() -> None:
        if cpus:
            os.sched_setaffinity(0, cpus)
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return setup


def _env(extra: dict[str, str], source: Path = ROOT) -> dict[str, str]:
    """A small environment of our own: nothing of the caller's TELEGRAM_*/OPENAI_* leaks in.

    PYTHONPATH comes before the editable install's finder: `source` decides which `bot` runs.
    """
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")
    env = {key: os.environ[key] for key in keep if key in os.environ}
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([str(source), str(ROOT)]))
    return env | extra


async def _stop(proc: asyncio.subprocess.Process, grace: float = STOP_GRACE) -> int:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await asyncio.wait_for(proc.wait(), grace)
    assert proc.returncode is not None
    return proc.returncode


@dataclass
class Fakes:
    """The fakes' process and its control API."""

    proc: asyncio.subprocess.Process
    telegram_url: str
    api_url: str
    control_url: str
    http: aiohttp.ClientSession

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def _call(self, path: str, body: dict[str, Any] | None, timeout: float) -> Any:
        method = "GET" if body is None else "POST"
        async with self.http.request(
            method,
            self.control_url + path,
            json=body,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as response:
            response.raise_for_status()
            return await response.json()

    async def notes(self, **spec: Any) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("/notes", spec, 300)
        return result

    async def set_delay(self, *, api: float = 0.0, telegram: float = 0.0) -> None:
        await self._call("/delay", {"api": api, "telegram": telegram}, 10)

    async def wait(self, timeout: float, chats: list[int] | None = None) -> bool:
        """Whether those chats (or all prepared notes) got their outcome within the timeout."""
        result = await self._call("/wait", {"timeout": timeout, "chats": chats}, timeout + 30)
        return bool(result["done"])

    async def report(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("/report", None, 120)
        return result

    async def set_faults(self, *, api_error_rate: float) -> None:
        await self._call("/faults", {"api_error_rate": api_error_rate}, 10)

    async def add_file(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Serve a file as it is in a chat of its own; returns the update that carries it."""
        result: dict[str, Any] = (await self._call("/file", spec, 60))["update"]
        return result

    async def chats(self) -> dict[str, Any]:
        """Each chat's answers and placeholders, and the seconds paid per upload."""
        result: dict[str, Any] = await self._call("/chats", None, 120)
        return result


@contextlib.asynccontextmanager
async def running_fakes(cpus: set[int] | None, *, measure: bool = False) -> AsyncIterator[Fakes]:
    """The fakes; with measure, the fake API runs ffprobe on every upload (seconds paid)."""
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "bench.fakes_server", "--token", TOKEN, "--api-key", API_KEY),
        *(["--measure"] if measure else []),
        cwd=ROOT,
        env=_env({}),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        preexec_fn=_child_setup(cpus),
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), START_TIMEOUT)
            where = json.loads(line)
        except (TimeoutError, ValueError) as exc:
            raise BenchError(f"the fakes did not start: {exc!r}") from exc
        async with aiohttp.ClientSession() as http:
            yield Fakes(proc, where["telegram"], where["api"], where["control"], http)
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        await _stop(proc)


@dataclass
class Bot:
    """`python -m bot` in webhook mode with its SQLite file in a temporary directory."""

    proc: asyncio.subprocess.Process
    port: int
    log_path: Path
    ready_after: float

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{WEBHOOK_PATH}"

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def bot_env(
    fakes: Fakes, workdir: Path, port: int, max_jobs: int, database_url: str | None = None
) -> dict[str, str]:
    return {
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_URL": fakes.telegram_url,
        "OPENAI_API_KEY": API_KEY,
        "OPENAI_BASE_URL": fakes.api_url,
        "WEBHOOK_URL": f"https://bot.example.com{WEBHOOK_PATH}",
        "WEBHOOK_SECRET": SECRET,
        "LISTEN_HOST": "127.0.0.1",
        "LISTEN_PORT": str(port),
        "METRICS_PORT": "0",
        "DATABASE_URL": database_url or f"sqlite:///{workdir / 'bot.sqlite3'}",
        "MAX_CONCURRENT_JOBS": str(max_jobs),
        # Telegram's own limits (30 messages/s, 20/min per group) would cap a loopback
        # benchmark at 30 notes/s: they are off, and the output says so.
        "TELEGRAM_RATE_PER_SECOND": "0",
        "TELEGRAM_GROUP_RATE_PER_MINUTE": "0",
        "TELEGRAM_CHAT_RATE_PER_SECOND": "0",
        "USER_JOBS_PER_MINUTE": "0",
        "LOG_LEVEL": "WARNING",
        "SHUTDOWN_GRACE_SECONDS": "5",
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def running_bot(
    fakes: Fakes,
    workdir: Path,
    *,
    max_jobs: int,
    cpus: set[int] | None,
    source: Path = ROOT,
    database_url: str | None = None,
    name: str = "bot",
    env: dict[str, str | None] | None = None,
) -> AsyncIterator[Bot]:
    """`env` overrides bot_env's settings (None: the bot's default)."""
    port = _free_port()
    settings = bot_env(fakes, workdir, port, max_jobs, database_url)
    for key, value in (env or {}).items():
        if value is None:
            settings.pop(key, None)
        else:
            settings[key] = value
    log_path = workdir / f"{name}.log"
    started = time.monotonic()
    with log_path.open("wb") as log:
        # cwd is the temporary directory: a developer's .env in the repository is not read.
        proc = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "bot"),
            cwd=workdir,
            env=_env(settings, source),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            preexec_fn=_child_setup(cpus),
            start_new_session=True,
        )
    bot = Bot(proc, port, log_path, 0.0)
    try:
        await _wait_ready(bot, fakes.http)
        bot.ready_after = time.monotonic() - started
        yield bot
    finally:
        code = await _stop(proc)
        if code not in (0, -signal.SIGTERM):
            print(f"warning: the bot exited with {code}:\n{bot.log_tail()}", file=sys.stderr)


async def _wait_ready(bot: Bot, http: aiohttp.ClientSession) -> None:
    url = f"http://127.0.0.1:{bot.port}/healthz"
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if bot.proc.returncode is not None:
            raise BenchError(f"the bot exited with {bot.proc.returncode}:\n{bot.log_tail()}")
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with http.get(url, timeout=aiohttp.ClientTimeout(total=2)) as response:
                if response.status == 200:
                    return
        await asyncio.sleep(0.05)
    raise BenchError(f"the bot was not ready within {START_TIMEOUT:.0f} s:\n{bot.log_tail()}")


@dataclass
class RedisProcess:
    """redis-server as a deployment runs it: append-only file, fsync every second."""

    proc: asyncio.subprocess.Process
    port: int

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


@contextlib.asynccontextmanager
async def running_redis(workdir: Path, cpus: set[int] | None) -> AsyncIterator[RedisProcess]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise BenchError("redis-server is not installed (make system-deps)")
    port = _free_port()
    directory = workdir / "redis"
    directory.mkdir()
    with (directory / "redis.log").open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            *(binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory)),
            *("--save", "", "--appendonly", "yes", "--appendfsync", "everysec"),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            preexec_fn=_child_setup(cpus),
            start_new_session=True,
        )
    server = RedisProcess(proc, port)
    try:
        await _wait_redis(server)
        yield server
    finally:
        await _stop(proc)


async def _wait_redis(server: RedisProcess) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.proc.returncode is not None:
            raise BenchError(f"redis-server exited with {server.proc.returncode}")
        with contextlib.suppress(OSError):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"PING\r\n")
            answer = await reader.readline()
            writer.close()
            if answer.startswith(b"+PONG"):
                return
        await asyncio.sleep(0.05)
    raise BenchError("redis-server did not start")
