"""What every call to the OpenAI-compatible API shares: the client, the key, retries, errors."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx
import stamina
from httpx_sse import EventSource, aconnect_sse
from pydantic import SecretStr

from bot.errors import UpstreamAuthError, UpstreamRejected, UpstreamUnavailable
from bot.leases import ensure_still_ours
from bot.upstream_gate import GateLimits, LocalGate, UpstreamGate

log = logging.getLogger(__name__)

T = TypeVar("T")

# Statuses worth another try: rate limits, overload and server faults.
TRANSIENT = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524})
_MAX_RETRY_AFTER = 60.0
_PAUSE_WITHOUT_RETRY_AFTER = 1.0  # a 429 that does not say how long still holds everyone back


class Transient(Exception):
    """One failed attempt that may succeed if tried again."""

    def __init__(self, message: str, status: int | None, retry_after: float | None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


def _backoff(exc: Exception) -> bool | float:
    """stamina's hook: retry transient failures, waiting as long as Retry-After asks."""
    if isinstance(exc, Transient):
        return min(exc.retry_after, _MAX_RETRY_AFTER) if exc.retry_after else True
    return False


class ApiClient:
    """One shared, keep-alive httpx client for `{base}/...`, with the key and the retry policy."""

    def __init__(
        self,
        base_url: str,
        api_key: SecretStr,
        *,
        what: str,
        max_attempts: int = 5,
        retry_seconds: float = 120.0,
        client: httpx.AsyncClient | None = None,
        gate: UpstreamGate | None = None,
    ) -> None:
        self.what = what  # "transcription", "summary": names the calls in logs
        self._gate: UpstreamGate = gate or LocalGate(GateLimits())
        self._base = base_url.rstrip("/")
        self._api_key = api_key
        self._max_attempts = max_attempts
        self._retry_seconds = retry_seconds
        self.http = client or httpx.AsyncClient(
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=100),
            timeout=httpx.Timeout(60.0, connect=10.0, pool=None),
        )

    def url(self, path: str) -> str:
        return f"{self._base}/{path.lstrip('/')}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key.get_secret_value()}"}

    async def aclose(self) -> None:
        await self.http.aclose()

    async def retrying(self, attempt: Callable[[], Awaitable[T]]) -> tuple[T, int]:
        """`attempt()` until it succeeds or fails for good: its result and the attempts made.

        Transient failures that outlast the retries raise UpstreamUnavailable; refusals raise
        UpstreamRejected (UpstreamAuthError for the key) at once.
        """
        attempts = 0
        started = time.monotonic()
        try:
            async for retry in stamina.retry_context(
                on=_backoff,
                attempts=self._max_attempts,
                timeout=self._retry_seconds,
                wait_initial=0.5,
                wait_max=10.0,
            ):
                with retry:
                    attempts = retry.num
                    result = await self._gated(attempt)
        except Transient as exc:
            log.warning(
                "%s failed after %d attempts: %s (status %s)", self.what, attempts, exc, exc.status
            )
            failing = time.monotonic() - started
            raise UpstreamUnavailable(str(exc), exc.status, failing_seconds=failing) from exc
        return result, attempts

    async def _gated(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """One attempt within the key's limits; a 429 makes every job wait it out."""
        async with self._gate.slot():
            await ensure_still_ours()  # a worker that stalled past its lease pays nothing more
            try:
                return await attempt()
            except Transient as exc:
                if exc.status == 429:
                    seconds = min(exc.retry_after or _PAUSE_WITHOUT_RETRY_AFTER, _MAX_RETRY_AFTER)
                    log.warning(
                        "%s API answered 429: every request waits %.1f s", self.what, seconds
                    )
                    await self._gate.pause(seconds)
                raise

    def check(self, response: httpx.Response) -> None:
        """Raise for an answer that is not 200 (the body must have been read)."""
        if response.status_code == 200:
            return
        message = error_message(response)
        if response.status_code in TRANSIENT:
            raise Transient(message, response.status_code, _retry_after(response))
        log.warning("%s API refused: %s (status %d)", self.what, message, response.status_code)
        if response.status_code in (401, 403):
            raise UpstreamAuthError(message, response.status_code)
        raise UpstreamRejected(message, response.status_code)


@contextlib.contextmanager
def transport_errors() -> Iterator[None]:
    """Timeouts and dropped connections are worth another attempt."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise Transient(f"timed out ({type(exc).__name__})", None, None) from exc
    except httpx.TransportError as exc:
        raise Transient(f"connection failed ({type(exc).__name__})", None, None) from exc


def error_message(response: httpx.Response) -> str:
    """The API's own error message ({"error": {"message": ...}}), or the start of the body."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return f"HTTP {response.status_code}: {response.text[:200]!r}"
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:500]
        if isinstance(error, str):
            return error[:500]
    return f"HTTP {response.status_code}: {str(body)[:200]}"


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after-ms")
    if value:
        try:
            return float(value) / 1000
        except ValueError:
            pass
    value = response.headers.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            return None
    return None


class NoStreaming(Exception):
    """The API, or a proxy in front of it, does not stream (transcriptions or completions)."""


class StreamingSwitch:
    """Whether to ask an API to stream: yes until it (or a proxy in front of it) shows it does
    not; said once, in the caller's log."""

    def __init__(self, log: logging.Logger, what: str, *, on: bool = True) -> None:
        self._log = log
        self._what = what  # "transcription", "chat": names the API in the log line
        self.on = on

    def stop(self, reason: str) -> None:
        if self.on:
            self._log.warning(
                "the %s API does not stream (%s): not asking again", self._what, reason
            )
        self.on = False


async def post_events(
    api: ApiClient,
    url: str,
    switch: StreamingSwitch,
    read: Callable[[EventSource], Awaitable[T]],
    whole: Callable[[httpx.Response], T],
    **request: Any,
) -> T:
    """POST asking for server-sent events, read as they come. A proxy that does not stream
    answers the whole at once: taken as it is, and streaming is not asked for again. A refusal
    that names streaming raises NoStreaming (the plain request may well succeed)."""
    with transport_errors():
        async with aconnect_sse(api.http, "POST", url, headers=api.headers, **request) as source:
            response = source.response
            if is_event_stream(response) and response.status_code == 200:
                return await read(source)
            await response.aread()
    raise_if_streaming_refused(response)
    api.check(response)
    switch.stop("it answered stream=true without events")
    return whole(response)


def is_event_stream(response: httpx.Response) -> bool:
    content_type = str(response.headers.get("content-type", ""))
    return content_type.partition(";")[0].strip().lower() == "text/event-stream"


def raise_if_streaming_refused(response: httpx.Response) -> None:
    """A refusal that names streaming: the same request without it may well succeed."""
    if response.status_code in (400, 404, 405, 415, 422, 501):
        message = error_message(response)
        if "stream" in message.lower():
            raise NoStreaming(message)
