"""SENTRY_DSN: errors to Sentry (or a compatible tracker), scrubbed like the logs.

What leaves the process is what the logs say, no more: every string of an event or breadcrumb
goes through the logs' Redactor (the token, the API key, the webhook secret, Redis passwords,
any bot token or bearer key); request bodies (Telegram's updates: people's messages) and the
local variables of stack frames (audio, transcripts) are never captured, and headers that
carry secrets are dropped. No performance tracing.
"""

from __future__ import annotations

import functools
from typing import Any

from bot.config import Settings
from bot.logs import Redactor

FILTERED = "[Filtered]"
# Header names (lower case) whose values are secrets whatever they look like.
_SECRET_HEADERS = frozenset(
    {"authorization", "cookie", "set-cookie", "x-telegram-bot-api-secret-token", "x-api-key"}
)
# Keys whose values may hold what people said: never sent.
_PRIVATE_KEYS = frozenset({"data", "vars", "cookies", "query_string", "body", "text", "caption"})


def scrub_event(event: dict[str, Any], redact: Redactor) -> dict[str, Any]:
    """The event with every secret removed and every private payload replaced (before_send)."""
    scrubbed = _scrub(event, redact)
    assert isinstance(scrubbed, dict)
    return scrubbed


def _scrub(value: Any, redact: Redactor, key: str = "") -> Any:
    if key.lower() in _PRIVATE_KEYS and value:
        return FILTERED
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        if key == "headers":
            return {
                k: FILTERED if str(k).lower() in _SECRET_HEADERS else _scrub(v, redact)
                for k, v in value.items()
            }
        return {k: _scrub(v, redact, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v, redact) for v in value]
    return value


def _before_send(event: Any, hint: Any, *, redact: Redactor) -> Any:
    return scrub_event(event, redact)


def _before_breadcrumb(crumb: Any, hint: Any, *, redact: Redactor) -> Any:
    return scrub_event(crumb, redact)


def setup_tracking(settings: Settings, secrets: list[str]) -> bool:
    """Start the Sentry SDK when SENTRY_DSN is set; whether it was started."""
    if settings.sentry_dsn is None:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.aiohttp import AioHttpIntegration
    from sentry_sdk.integrations.asyncio import AsyncioIntegration

    dsn = settings.sentry_dsn.get_secret_value()
    redact = Redactor([*secrets, dsn])
    sentry_sdk.init(
        dsn=dsn,
        environment=settings.sentry_environment,
        integrations=[AsyncioIntegration(), AioHttpIntegration()],
        before_send=functools.partial(_before_send, redact=redact),
        before_breadcrumb=functools.partial(_before_breadcrumb, redact=redact),
        send_default_pii=False,
        include_local_variables=False,
        max_request_body_size="never",
        traces_sample_rate=0.0,
    )
    return True
