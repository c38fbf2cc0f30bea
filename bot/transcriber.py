"""The OpenAI-compatible transcription client: upload, retries, errors."""

from __future__ import annotations

import io
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import stamina
from pydantic import SecretStr

from bot.errors import UpstreamAuthError, UpstreamRejected, UpstreamUnavailable

log = logging.getLogger(__name__)

# Statuses worth another try: rate limits, overload and server faults.
_TRANSIENT = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524})
_MAX_RETRY_AFTER = 60.0


@dataclass(frozen=True)
class Transcript:
    text: str
    upstream_seconds: float
    attempts: int


class _Transient(Exception):
    """One failed attempt that may succeed if tried again."""

    def __init__(self, message: str, status: int | None, retry_after: float | None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


def _backoff(exc: Exception) -> bool | float:
    """stamina's hook: retry transient failures, waiting as long as Retry-After asks."""
    if isinstance(exc, _Transient):
        return min(exc.retry_after, _MAX_RETRY_AFTER) if exc.retry_after else True
    return False


class Transcriber:
    """POST {base}/audio/transcriptions with one shared, keep-alive httpx client."""

    def __init__(
        self,
        base_url: str,
        api_key: SecretStr,
        *,
        max_attempts: int = 5,
        retry_seconds: float = 120.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._url = base_url.rstrip("/") + "/audio/transcriptions"
        self._api_key = api_key
        self._max_attempts = max_attempts
        self._retry_seconds = retry_seconds
        self._client = client or httpx.AsyncClient(
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=100),
            timeout=httpx.Timeout(60.0, connect=10.0, pool=None),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def transcribe(
        self,
        audio: bytes | Path,
        filename: str,
        model: str,
        *,
        duration: float | None = None,
        language: str | None = None,
        prompt: str | None = None,
    ) -> Transcript:
        """The text of the audio; raises UpstreamRejected or UpstreamUnavailable."""
        fields = {"model": model, "response_format": "json"}
        if language:
            fields["language"] = language
        if prompt:
            fields["prompt"] = prompt
        # The API transcribes faster than real time; allow generously for long parts.
        timeout = httpx.Timeout(30.0 + (duration or 60.0), connect=10.0, pool=None)
        started = time.monotonic()
        attempts = 0
        try:
            async for attempt in stamina.retry_context(
                on=_backoff,
                attempts=self._max_attempts,
                timeout=self._retry_seconds,
                wait_initial=0.5,
                wait_max=10.0,
            ):
                with attempt:
                    attempts = attempt.num
                    text = await self._post(audio, filename, fields, timeout)
        except _Transient as exc:
            log.warning(
                "transcription failed after %d attempts: %s (status %s)",
                attempts,
                exc,
                exc.status,
            )
            raise UpstreamUnavailable(str(exc), exc.status) from exc
        return Transcript(text, time.monotonic() - started, attempts)

    async def _post(
        self, audio: bytes | Path, filename: str, fields: dict[str, str], limits: httpx.Timeout
    ) -> str:
        headers = {"Authorization": f"Bearer {self._api_key.get_secret_value()}"}
        try:
            if isinstance(audio, Path):
                with audio.open("rb") as handle:
                    response = await self._client.post(
                        self._url,
                        data=fields,
                        files={"file": (filename, handle)},
                        headers=headers,
                        timeout=limits,
                    )
            else:
                # A file object is sent in chunks; raw bytes would go as one write that
                # stalls the event loop for tens of milliseconds on a big upload.
                response = await self._client.post(
                    self._url,
                    data=fields,
                    files={"file": (filename, io.BytesIO(audio))},
                    headers=headers,
                    timeout=limits,
                )
        except httpx.TimeoutException as exc:
            raise _Transient(f"timed out ({type(exc).__name__})", None, None) from exc
        except httpx.TransportError as exc:
            raise _Transient(f"connection failed ({type(exc).__name__})", None, None) from exc
        if response.status_code == 200:
            return _text_of(response)
        message = _error_message(response)
        if response.status_code in _TRANSIENT:
            raise _Transient(message, response.status_code, _retry_after(response))
        log.warning("transcription API refused: %s (status %d)", message, response.status_code)
        if response.status_code in (401, 403):
            raise UpstreamAuthError(message, response.status_code)
        raise UpstreamRejected(message, response.status_code)


def _text_of(response: httpx.Response) -> str:
    try:
        body = response.json()
    except json.JSONDecodeError:
        # A proxy that ignores response_format=json answers plain text.
        return response.text.strip()
    if isinstance(body, dict) and isinstance(body.get("text"), str):
        return str(body["text"]).strip()
    raise UpstreamRejected("the transcription API answered without text", response.status_code)


def _error_message(response: httpx.Response) -> str:
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
