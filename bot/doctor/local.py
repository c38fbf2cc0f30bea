"""The checks of this machine and its store: ffmpeg, ffprobe, the SQLite file or Redis."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
from pathlib import Path

from redis.asyncio.sentinel import MasterNotFoundError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeout

from bot.config import RedisLocation, SqliteLocation, database_location
from bot.doctor.result import Result, failed, passed
from bot.redis_client import connect
from bot.store.sqlite import SCHEMA_VERSION

# The longest the Redis check waits for its answers, however many connections it tries.
_REDIS_SECONDS = 10


def check_ffmpeg() -> list[Result]:
    return [_tool("ffmpeg"), _tool("ffprobe")]


def _tool(name: str) -> Result:
    path = shutil.which(name)
    if path is None:
        return failed(
            name,
            "not found on PATH: install ffmpeg (Debian/Ubuntu: apt-get install ffmpeg); "
            "without it only plain voice notes are transcribed",
        )
    try:
        done = subprocess.run(  # noqa: S603 - a program found on PATH, fixed arguments
            [path, "-hide_banner", "-version"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return failed(name, f"{path} does not run ({type(exc).__name__}): reinstall ffmpeg")
    first = done.stdout.splitlines()[0] if done.stdout else ""
    if done.returncode != 0 or not first:
        return failed(name, f"{path} -version failed: reinstall ffmpeg")
    version = first.split(" Copyright")[0].removeprefix(f"{name} version ").strip()
    return passed(name, f"{version} ({path})")


async def check_database(url: str) -> Result:
    location = database_location(url)
    if isinstance(location, RedisLocation):
        return await _check_redis(location)
    return await asyncio.to_thread(_check_sqlite, location)


def _check_sqlite(location: SqliteLocation) -> Result:
    name = "database"
    path = location.path
    if not path.exists():
        return _check_new_sqlite(path)
    try:
        version = _sqlite_version_writable(path)
    except sqlite3.Error as exc:
        return failed(
            name,
            f"cannot write to {path} ({exc}): the bot's user needs write access to the file "
            "and its directory (SQLite keeps -wal and -shm files beside it)",
        )
    if version > SCHEMA_VERSION:
        return failed(
            name,
            f"{path} has schema {version}, newer than this version of the bot knows "
            f"({SCHEMA_VERSION}): run the newer version, or restore a backup made for this one",
        )
    if version < SCHEMA_VERSION:
        return passed(
            name, f"{path} writable; schema {version}, migrated to {SCHEMA_VERSION} at start"
        )
    return passed(name, f"{path} writable; schema {version} (up to date)")


def _sqlite_version_writable(path: Path) -> int:
    """The schema version, after taking the write lock and writing it back (rolled back)."""
    db = sqlite3.connect(path, isolation_level=None, timeout=5)
    try:
        db.execute("BEGIN IMMEDIATE")
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        db.execute(f"PRAGMA user_version={version}")
        db.execute("ROLLBACK")
        return version
    finally:
        db.close()


def _check_new_sqlite(path: Path) -> Result:
    directory = path.parent
    while not directory.exists() and directory != directory.parent:
        directory = directory.parent  # the bot creates the missing directories
    probe = directory / ".transcribot-check"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        return failed(
            "database",
            f"{path} does not exist and {directory} is not writable ({exc.strerror}): "
            "give the bot's user write access there, or point DATABASE_URL elsewhere",
        )
    return passed("database", f"{path} does not exist yet; the bot creates it at start")


def _to_do(location: RedisLocation) -> str:
    if location.sentinel is None:
        return "check DATABASE_URL and that Redis runs"
    return (
        "check DATABASE_URL and that its Sentinels run and name a master "
        f"'{location.sentinel.service}' (SENTINEL get-master-addr-by-name)"
    )


async def _check_redis(location: RedisLocation) -> Result:
    name = "redis"
    client = connect(location.url, max_connections=2)
    try:
        async with asyncio.timeout(_REDIS_SECONDS):
            server = await client.info("server")
            memory = await client.info("memory")
            persistence = await client.info("persistence")
            await client.set("transcribot:doctor", "1", ex=60)  # a replica refuses: READONLY
    except MasterNotFoundError:
        return failed(
            name, f"{location.redacted}: no Sentinel named the master: {_to_do(location)}"
        )
    except (TimeoutError, RedisTimeout):
        return failed(
            name,
            f"no answer within {_REDIS_SECONDS} s from {location.redacted}: {_to_do(location)}"
            " (a paused or overloaded Redis also answers nothing)",
        )
    except RedisError as exc:
        text = str(exc).replace(location.password or "\0", "***")
        return failed(name, f"{location.redacted}: {text}: {_to_do(location)}")
    finally:
        await client.aclose()
    version = str(server.get("redis_version", "?"))
    policy = str(memory.get("maxmemory_policy", "?"))
    aof = "AOF on" if int(persistence.get("aof_enabled", 0)) else "AOF off"
    found = f"Redis {version}, maxmemory-policy {policy}, {aof}"
    if tuple(int(p) for p in version.split(".")[:2] if p.isdigit()) < (6, 2):
        return failed(name, f"{found}: the job queue needs Redis 6.2 or newer")
    if policy != "noeviction":
        return failed(
            name,
            f"{found}: a full Redis would evict queued jobs and settings; set "
            "maxmemory-policy noeviction",
        )
    return passed(name, found)
