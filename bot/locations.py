"""Where the store is, from DATABASE_URL: a SQLite file, one Redis server, or a Redis master
found through Sentinel; and the URL without its passwords, for logs and errors."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, parse_qsl, unquote, urlencode, urlsplit

# Query parameters the bot reads itself; redis-py never sees them.
_OUR_QUERY = frozenset({"wait_replicas", "wait_timeout_ms", "sentinel_password"})
_PASSWORD_PARAM = re.compile(r"(?i)((?:^|&)(?:sentinel_)?password=)[^&]*")
_WAIT_TIMEOUT_MS = 1000


@dataclass(frozen=True)
class SqliteLocation:
    path: Path


@dataclass(frozen=True)
class SentinelAddress:
    sentinels: tuple[tuple[str, int], ...]
    service: str  # the master's name in the Sentinels' configuration
    db: int
    sentinel_password: str | None  # the Sentinels' own, when they have one


@dataclass(frozen=True)
class RedisLocation:
    url: str  # as given: redis://, rediss:// or redis+sentinel://, maybe with a password

    @property
    def redacted(self) -> str:
        """The URL with its password replaced by ***, for logs and errors."""
        return redact_url(self.url)

    @property
    def password(self) -> str | None:
        """The password as Redis gets it (percent-decoded), to keep it out of the logs: from
        `redis://user:password@host` or, as redis-py also reads it, `?password=`."""
        parts = urlsplit(self.url)
        if parts.password is not None:
            return unquote(parts.password)
        given = parse_qs(parts.query).get("password")
        return given[0] if given else None

    @property
    def passwords(self) -> list[str]:
        """Redis's password and the Sentinels' own, those that are set (to keep them out of
        the logs)."""
        sentinel = self.sentinel
        found = [self.password, sentinel.sentinel_password if sentinel else None]
        return [password for password in found if password]

    @property
    def sentinel(self) -> SentinelAddress | None:
        """Where the Sentinels are, for a redis+sentinel:// URL (None for a plain one)."""
        return _sentinel_address(self.url) if _is_sentinel(self.url) else None

    @property
    def wait(self) -> tuple[int, int]:
        """(replicas, timeout ms) an accepted update waits for (WAIT), from the URL's query:
        `wait_replicas` (1 with Sentinel, else 0) and `wait_timeout_ms` (1000)."""
        query = parse_qs(urlsplit(self.url).query)
        default = 1 if _is_sentinel(self.url) else 0
        replicas = int(query.get("wait_replicas", [default])[0])
        return replicas, int(query.get("wait_timeout_ms", [_WAIT_TIMEOUT_MS])[0])

    @property
    def plain_url(self) -> str:
        """The URL without the query parameters only the bot understands (for redis-py)."""
        parts = urlsplit(self.url)
        query = [(k, v) for k, v in parse_qsl(parts.query) if k not in _OUR_QUERY]
        return parts._replace(query=urlencode(query)).geturl()


def database_location(url: str) -> SqliteLocation | RedisLocation:
    """`sqlite:///relative/path`, `sqlite:////absolute/path` (SQLAlchemy's convention),
    `redis://[:password@]host[:port][/db]` (`rediss://` for TLS), or
    `redis+sentinel://[:password@]host:port[,host:port...]/service[/db]` (Redis Sentinel)."""
    scheme = url.partition("://")[0].lower()
    if scheme == "redis+sentinel":
        _sentinel_address(url)
        return _checked_wait(RedisLocation(url))
    if scheme in ("redis", "rediss"):
        return _redis_location(url)
    prefix = "sqlite:///"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise ValueError(
            "sqlite:///relative/path, sqlite:////absolute/path or redis://host:port/db"
        )
    return SqliteLocation(Path(url[len(prefix) :]))


def _redis_location(url: str) -> RedisLocation:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if not parts.hostname or port == -1:
        raise ValueError("redis://[:password@]host[:port][/db] with a host and a numeric port")
    database = parts.path.strip("/")
    if database and not database.isdigit():
        raise ValueError("redis://host:port/db where db is a number (0 by default)")
    return _checked_wait(RedisLocation(url))


def _checked_wait(location: RedisLocation) -> RedisLocation:
    query = parse_qs(urlsplit(location.url).query)
    for name in ("wait_replicas", "wait_timeout_ms"):
        if name in query and not query[name][0].isdigit():
            raise ValueError(f"{name} in DATABASE_URL must be a whole number")
    return location


def _is_sentinel(url: str) -> bool:
    return url.partition("://")[0].lower() == "redis+sentinel"


def _sentinel_address(url: str) -> SentinelAddress:
    """redis+sentinel://[:password@]host[:port][,host[:port]...]/service[/db][?...]"""
    parts = urlsplit(url)
    sentinels = []
    for item in parts.netloc.rpartition("@")[2].split(","):
        host, _, port = item.strip().rpartition(":") if ":" in item else (item, "", "26379")
        if not host or not port.isdigit():
            raise ValueError(
                "redis+sentinel://[:password@]host:port[,host:port...]/service[/db]: "
                "each Sentinel as host:port"
            )
        sentinels.append((host, int(port)))
    path = [p for p in parts.path.split("/") if p]
    if not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
        raise ValueError("redis+sentinel://host:port,.../service[/db]: name the master's service")
    password = parse_qs(parts.query).get("sentinel_password", [None])[0]
    db = int(path[1]) if len(path) == 2 else 0
    return SentinelAddress(tuple(sentinels), path[0], db, password)


def redact_url(url: str) -> str:
    """A URL without its passwords, in userinfo or `?password=` / `?sentinel_password=` (user
    names stay: not secret)."""
    parts = urlsplit(url)
    if parts.password is not None:
        user = parts.username or ""
        host = parts.netloc.rpartition("@")[2]
        parts = parts._replace(netloc=f"{user}:***@{host}")
    query = _PASSWORD_PARAM.sub(r"\1***", parts.query)
    return parts._replace(query=query).geturl()
