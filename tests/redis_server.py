"""A real redis-server for the tests: on a free port, in a temporary directory, killed after."""

from __future__ import annotations

import shutil
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
    """`redis-server` as a subprocess. Without persistence unless `appendonly` (then every
    write is in the append-only file before Redis answers, and survives a SIGKILL)."""

    directory: Path
    appendonly: bool = False
    databases: int = 1024
    port: int = field(default_factory=_free_port)
    proc: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: `make system-deps` installs it")
        self.directory.mkdir(parents=True, exist_ok=True)
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "everysec"]
            if self.appendonly
            else ["--appendonly", "no"]
        )
        log = (self.directory / "redis.log").open("ab")
        self.proc = subprocess.Popen(
            [
                binary,
                *("--port", str(self.port), "--bind", "127.0.0.1"),
                *("--dir", str(self.directory), "--save", ""),
                *("--databases", str(self.databases)),
                *persistence,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        self._wait_ready()

    def _wait_ready(self) -> None:
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        try:
            for _ in range(200):
                if self.proc is not None and self.proc.poll() is not None:
                    raise RuntimeError(f"redis-server exited:\n{self.log()}")
                try:
                    client.ping()
                    return
                except (redis.ConnectionError, redis.BusyLoadingError):
                    time.sleep(0.025)
        finally:
            client.close()
        raise RuntimeError(f"redis-server did not start:\n{self.log()}")

    def kill(self) -> None:
        """SIGKILL, as a crash: only what is in the append-only file comes back."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def flush(self, db: int) -> None:
        client = redis.Redis(port=self.port, db=db)
        try:
            client.flushdb()
        finally:
            client.close()

    def log(self) -> str:
        path = self.directory / "redis.log"
        return path.read_text(errors="replace") if path.exists() else ""
