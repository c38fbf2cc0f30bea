"""A real redis-server for the tests: on a free port, in a temporary directory, killed after."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RedisServer:
    """`redis-server` on its own (daemonized: not a child of the tests, whose checks for
    leftover ffmpeg processes look at their children). Without persistence unless
    `appendonly` (then what Redis acknowledged survives a SIGKILL, as in a deployment)."""

    directory: Path
    appendonly: bool = False
    databases: int = 1024
    port: int = field(default_factory=_free_port)
    pid: int | None = None
    extra_args: tuple[str, ...] = ()  # e.g. ("--replicaof", "127.0.0.1", "6379")

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    @property
    def _pidfile(self) -> Path:
        return self.directory / "redis.pid"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: `make system-deps` installs it")
        self.directory.mkdir(parents=True, exist_ok=True)
        self._pidfile.unlink(missing_ok=True)
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "everysec"]
            if self.appendonly
            else ["--appendonly", "no"]
        )
        subprocess.run(
            [
                binary,
                *("--port", str(self.port), "--bind", "127.0.0.1"),
                *("--dir", str(self.directory), "--save", ""),
                *("--databases", str(self.databases)),
                *("--daemonize", "yes", "--pidfile", str(self._pidfile)),
                *("--logfile", str(self.directory / "redis.log")),
                *persistence,
                *self.extra_args,
            ],
            check=True,
            stdin=subprocess.DEVNULL,
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        try:
            for _ in range(200):
                if self.pid is None and self._pidfile.exists():
                    with contextlib.suppress(ValueError):
                        self.pid = int(self._pidfile.read_text())
                try:
                    client.ping()
                    if self.pid is not None:
                        return
                except (redis.ConnectionError, redis.BusyLoadingError):
                    pass
                time.sleep(0.025)
        finally:
            client.close()
        raise RuntimeError(f"redis-server did not start:\n{self.log()}")

    def kill(self) -> None:
        """SIGKILL, as a crash: only what is in the append-only file comes back."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        self._signal(signal.SIGTERM)

    def _signal(self, sig: int) -> None:
        if self.pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)
            for _ in range(400):  # until it is gone (it is not our child: no wait())
                os.kill(self.pid, 0)
                time.sleep(0.025)
            os.kill(self.pid, signal.SIGKILL)
        self.pid = None

    def flush(self, db: int) -> None:
        client = redis.Redis(port=self.port, db=db)
        try:
            client.flushdb()
        finally:
            client.close()

    def log(self) -> str:
        path = self.directory / "redis.log"
        return path.read_text(errors="replace") if path.exists() else ""
