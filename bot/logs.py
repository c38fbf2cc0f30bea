"""Logging for operators: readable lines, secrets never printed."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable

# A bot token anywhere (URLs of python-telegram-bot and httpx contain it): "123456:AA...".
_TOKEN_RE = re.compile(r"\b\d{3,}:[A-Za-z0-9_-]{20,}")
_BEARER_RE = re.compile(r"(?i)(bearer\s+)[^\s'\"]+")


class RedactingFormatter(logging.Formatter):
    """Formats as usual, then removes every known secret (messages, arguments, tracebacks)."""

    def __init__(self, fmt: str, secrets: Iterable[str]) -> None:
        super().__init__(fmt)
        # Longest first, so a secret that contains another is removed whole.
        # Very short values (test keys like "k") would garble every line; real ones are long.
        self._secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        text = _TOKEN_RE.sub("***", text)
        return _BEARER_RE.sub(r"\1***", text)

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(super().format(record))


def setup_logging(level: str, secrets: Iterable[str]) -> None:
    """Root logging to stderr; quiet libraries whose INFO lines carry the bot token in URLs."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", secrets)
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # httpx logs every request URL at INFO ("POST .../bot<token>/sendMessage"): keep it quiet.
    for noisy in ("httpx", "httpcore", "telegram.request", "aiohttp.access", "hpack"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
