"""Logging for operators: readable lines or JSON, a request id on each, secrets never printed."""

from __future__ import annotations

import contextlib
import contextvars
import logging
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, Literal

from pythonjsonlogger.json import JsonFormatter

# A bot token anywhere, inside a URL's "/bot123:AA..." too: "123456:AA..." (colon maybe "%3A").
_TOKEN_RE = re.compile(r"(?<![0-9])\d{3,}(?::|%3[Aa])[A-Za-z0-9_-]{20,}")
# Whatever follows /bot<id>: in a Bot API URL (call or file download) is its secret part.
_URL_TOKEN_RE = re.compile(r"(/bot\d+(?::|%3[Aa]))[^/\s'\"?#]+")
_BEARER_RE = re.compile(r"(?i)(bearer\s+)[^\s'\"]+")
# Passwords in URLs: "scheme://user:password@host" and "?password=..." (Redis accepts both).
_USERINFO_RE = re.compile(r"(://[^/\s:@'\"]*:)[^/\s@'\"]+@")
_PASSWORD_PARAM_RE = re.compile(r"(?i)(\bpassword=)[^&\s'\"]+")

# What the current log lines are about: "upd-<update_id>" for a delivery, "job-<id>" for a job.
# Tasks copy the context they are created in, so a job's helper tasks carry its id too.
_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

LogFormat = Literal["text", "json"]


@contextlib.contextmanager
def request_context(request_id: str) -> Iterator[None]:
    """Every log line written inside carries this request id."""
    token = _request_id.set(request_id)
    try:
        yield
    finally:
        _request_id.reset(token)


class Throttle:
    """Lets one event a `interval` seconds through to the log and counts the ones held back."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval
        self._clock = clock
        self._last: float | None = None
        self._count = 0

    def hit(self) -> int | None:
        """None: stay quiet. Else how many events (this one included) since the last report."""
        now = self._clock()
        self._count += 1
        if self._last is not None and now - self._last < self._interval:
            return None
        count, self._count, self._last = self._count, 0, now
        return count


class RequestIdFilter(logging.Filter):
    """Adds `request_id` (None outside a request) to every record a handler sees."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        return True


class Redactor:
    """Removes every known secret from a text: the given values, bot tokens, keys, passwords."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so a secret that contains another is removed whole. The settings
        # refuse secrets shorter than six characters (they could not be told from words).
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        text = _URL_TOKEN_RE.sub(r"\1***", text)
        text = _TOKEN_RE.sub("***", text)
        text = _USERINFO_RE.sub(r"\1***@", text)
        text = _PASSWORD_PARAM_RE.sub(r"\1***", text)
        return _BEARER_RE.sub(r"\1***", text)


class RedactingFormatter(logging.Formatter):
    """`time LEVEL logger [request]: message`, then every secret removed (tracebacks too)."""

    _LINE = "%(asctime)s %(levelname)s %(name)s%(request)s: %(message)s"

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__(self._LINE)
        self.redact = Redactor(secrets)

    def formatMessage(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None)
        request = f" [{request_id}]" if request_id else ""
        return self._LINE % {**record.__dict__, "request": request}

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(super().format(record))


class RedactingJsonFormatter(JsonFormatter):
    """One JSON object a line: time, level, logger, message, request_id and any `extra` fields.

    Secrets are removed from the values before they are serialised, so the line stays JSON.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__(
            ["levelname", "name", "message", "request_id"],
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",
        )
        self.redact = Redactor(secrets)

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        return {key: self._scrub(value) for key, value in log_data.items()}

    def _scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {k: self._scrub(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._scrub(v) for v in value]
        return value


def setup_logging(
    level: str,
    secrets: Iterable[str],
    log_format: LogFormat = "text",
    debug_loggers: Iterable[str] = (),
) -> Redactor:
    """Root logging to stderr, everything that Python itself would print on stderr routed
    through it (uncaught exceptions, warnings; asyncio's handler logs to "asyncio" already),
    libraries whose lines carry the bot token kept quiet. The scrubber, for other output."""
    handler = logging.StreamHandler(sys.stderr)
    secrets = list(secrets)
    formatter = (
        RedactingJsonFormatter(secrets) if log_format == "json" else RedactingFormatter(secrets)
    )
    handler.setFormatter(formatter)
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    _set_levels(logging.getLevelNamesMapping()[level], debug_loggers)
    # Tracebacks print exception messages, and aiohttp's name the URL, the token in it.
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread
    return formatter.redact


def _set_levels(level: int, debug_loggers: Iterable[str]) -> None:
    """LOG_LEVEL for the bot's own loggers; INFO at most for libraries, unless named.

    At DEBUG python-telegram-bot logs every request's parameters and answer (transcripts,
    the webhook secret): only by name.
    """
    logging.getLogger().setLevel(max(level, logging.INFO))
    logging.getLogger("bot").setLevel(level)
    # httpx logs every request URL at INFO ("POST .../bot<token>/sendMessage"): keep it quiet.
    for noisy in _NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    for name in debug_loggers:
        logging.getLogger(name).setLevel(logging.DEBUG)
        for noisy in _NOISY:
            if noisy.startswith(name + "."):
                logging.getLogger(noisy).setLevel(logging.DEBUG)


_NOISY = ("httpx", "httpcore", "telegram.request", "aiohttp.access", "hpack")


def _log_uncaught(
    kind: type[BaseException], error: BaseException, traceback: TracebackType | None
) -> None:
    logging.getLogger("bot").critical("stopped by an error", exc_info=(kind, error, traceback))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None or isinstance(args.exc_value, SystemExit):
        return
    thread = args.thread.name if args.thread else "?"
    logging.getLogger("bot").error(
        "error in thread %s",
        thread,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )
