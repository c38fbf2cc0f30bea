"""The processes the chaos soak kills, freezes and restarts: bot replicas and redis-server.

Unlike bench.processes (one clean start and stop per run), these come back after a SIGKILL on
the same store, and keep the peak RSS of every process they were.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import sys
from pathlib import Path

from bench.machine import memory_kib
from bench.processes import (
    STOP_GRACE,
    BenchError,
    Bot,
    Fakes,
    RedisProcess,
    _child_setup,
    _env,
    _free_port,
    _wait_ready,
    _wait_redis,
    bot_env,
)


class Replica:
    """`python -m bot` in webhook mode, started again after each kill on the same store."""

    def __init__(
        self, name: str, workdir: Path, fakes: Fakes, database_url: str, lease: float
    ) -> None:
        self.name = name
        self._workdir = workdir
        self._fakes = fakes
        self._database_url = database_url
        self._lease = lease
        self._bot: Bot | None = None
        self._watch: asyncio.Task[None] | None = None
        self.starts = 0
        self.peak_kib = 0  # the highest VmHWM of any of its processes

    @property
    def url(self) -> str | None:
        """Where to deliver updates; None while it is down."""
        return self._bot.webhook_url if self._bot is not None else None

    async def start(self) -> None:
        port = _free_port()
        env = bot_env(self._fakes, self._workdir, port, 8, self._database_url) | {
            "JOB_LEASE_SECONDS": str(self._lease),
            "MAX_AUDIO_SECONDS": "3600",
            "LOG_LEVEL": "INFO",
        }
        self.starts += 1
        log_path = self._workdir / f"{self.name}-{self.starts}.log"
        with log_path.open("wb") as log:
            proc = await asyncio.create_subprocess_exec(
                *(sys.executable, "-m", "bot"),
                cwd=self._workdir,
                env=_env(env),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                preexec_fn=_child_setup(None),
                start_new_session=True,
            )
        bot = Bot(proc, port, log_path, 0.0)
        await _wait_ready(bot, self._fakes.http)
        self._bot = bot
        self._watch = asyncio.create_task(self._sample(proc.pid))

    async def _sample(self, pid: int) -> None:
        with contextlib.suppress(OSError, KeyError):
            while True:
                self.peak_kib = max(self.peak_kib, memory_kib(pid, "VmHWM"))
                await asyncio.sleep(0.2)

    async def kill_and_restart(self) -> None:
        await self._end(signal.SIGKILL)
        await self.start()

    async def freeze(self, seconds: float) -> None:
        """SIGSTOP for that long (longer than its leases: others take its jobs), then SIGCONT."""
        if self._bot is None:
            return
        self._bot.proc.send_signal(signal.SIGSTOP)
        await asyncio.sleep(seconds)
        self._bot.proc.send_signal(signal.SIGCONT)

    async def stop(self) -> None:
        await self._end(signal.SIGTERM)

    async def _end(self, how: signal.Signals) -> None:
        bot, self._bot = self._bot, None
        if bot is None:
            return
        with contextlib.suppress(OSError, KeyError):
            self.peak_kib = max(self.peak_kib, memory_kib(bot.pid, "VmHWM"))
        if self._watch is not None:
            self._watch.cancel()
        with contextlib.suppress(ProcessLookupError):
            bot.proc.send_signal(signal.SIGCONT)
            bot.proc.send_signal(how)
        try:
            await asyncio.wait_for(bot.proc.wait(), STOP_GRACE)
        except TimeoutError:
            bot.proc.kill()
            await bot.proc.wait()


class Redis:
    """redis-server with an append-only file, restarted on the same port and directory."""

    def __init__(self, workdir: Path) -> None:
        self._directory = workdir / "redis"
        self._directory.mkdir()
        self._port = _free_port()
        self._server: RedisProcess | None = None

    async def start(self) -> str:
        binary = shutil.which("redis-server")
        if binary is None:
            raise BenchError("redis-server is not installed (make system-deps)")
        with (self._directory / "redis.log").open("ab") as log:
            proc = await asyncio.create_subprocess_exec(
                *(binary, "--port", str(self._port), "--bind", "127.0.0.1"),
                *("--dir", str(self._directory), "--save", "", "--appendonly", "yes"),
                *("--appendfsync", "everysec"),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                preexec_fn=_child_setup(None),
                start_new_session=True,
            )
        self._server = RedisProcess(proc, self._port)
        await _wait_redis(self._server)
        return self._server.url

    async def restart(self) -> None:
        """A restart as an operator does one: SIGTERM (the AOF is flushed), then start."""
        await self.stop()
        await self.start()

    async def pause(self, seconds: float) -> None:
        if self._server is not None:
            self._server.proc.send_signal(signal.SIGSTOP)
            await asyncio.sleep(seconds)
            self._server.proc.send_signal(signal.SIGCONT)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(server.proc.wait(), STOP_GRACE)
