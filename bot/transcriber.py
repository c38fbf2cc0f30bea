"""The OpenAI-compatible transcription client: upload, retries, errors."""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from bot.errors import UpstreamRejected
from bot.upstream import ApiClient, transport_errors


@dataclass(frozen=True)
class Transcript:
    text: str
    upstream_seconds: float
    attempts: int


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
        self._api = ApiClient(
            base_url,
            api_key,
            what="transcription",
            max_attempts=max_attempts,
            retry_seconds=retry_seconds,
            client=client,
        )
        self._url = self._api.url("audio/transcriptions")

    async def aclose(self) -> None:
        await self._api.aclose()

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
        text, attempts = await self._api.retrying(
            lambda: self._post(audio, filename, fields, timeout)
        )
        return Transcript(text, time.monotonic() - started, attempts)

    async def _post(
        self, audio: bytes | Path, filename: str, fields: dict[str, str], limits: httpx.Timeout
    ) -> str:
        with _file_field(audio, filename) as files, transport_errors():
            response = await self._api.http.post(
                self._url, data=fields, files=files, headers=self._api.headers, timeout=limits
            )
        self._api.check(response)
        return _text_of(response)


@contextlib.contextmanager
def _file_field(audio: bytes | Path, filename: str) -> Iterator[dict[str, Any]]:
    """The multipart `file` field, open for as long as the request needs it."""
    if isinstance(audio, Path):
        with audio.open("rb") as handle:
            yield {"file": (filename, handle)}
    else:
        # A file object is sent in chunks; raw bytes would go as one write that stalls the
        # event loop for tens of milliseconds on a big upload.
        yield {"file": (filename, io.BytesIO(audio))}


def _text_of(response: httpx.Response) -> str:
    try:
        body = response.json()
    except json.JSONDecodeError:
        # A proxy that ignores response_format=json answers plain text.
        return response.text.strip()
    if isinstance(body, dict) and isinstance(body.get("text"), str):
        return str(body["text"]).strip()
    raise UpstreamRejected("the transcription API answered without text", response.status_code)
