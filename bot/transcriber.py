"""The OpenAI-compatible transcription client: upload, retries, errors."""

from __future__ import annotations

import contextlib
import functools
import io
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from httpx_sse import EventSource
from pydantic import SecretStr

from bot.dialects import Dialects, refused_field, result_of, without
from bot.errors import UpstreamRejected
from bot.models import ModelSpec
from bot.segments import Segment, Transcribed
from bot.upstream import (
    ApiClient,
    NoStreaming,
    StreamingSwitch,
    Transient,
    post_events,
    transport_errors,
)
from bot.upstream_gate import UpstreamGate

log = logging.getLogger(__name__)

OnText = Callable[[str], Awaitable[None]]
T = TypeVar("T")


@dataclass(frozen=True)
class Transcript:
    text: str
    upstream_seconds: float
    attempts: int
    segments: tuple[Segment, ...] = ()  # with verbose_json or diarized_json answers
    language: str | None = None  # ISO 639-1, when the engine said (verbose_json)


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
        gate: UpstreamGate | None = None,
        streaming: bool = True,
    ) -> None:
        self._streaming = StreamingSwitch(log, "transcription", on=streaming)
        self._api = ApiClient(
            base_url,
            api_key,
            what="transcription",
            max_attempts=max_attempts,
            retry_seconds=retry_seconds,
            client=client,
            gate=gate,
        )
        self._url = self._api.url("audio/transcriptions")
        self._dialects = Dialects()

    def streams(self, spec: ModelSpec) -> bool:
        """Whether on_text sees the model's text as it comes (until it shows it cannot stream)."""
        on = self._streaming.on
        return on and spec.streaming and not self._dialects.refused(spec, "stream")

    async def aclose(self) -> None:
        await self._api.aclose()

    async def transcribe(
        self,
        audio: bytes | Path,
        filename: str,
        spec: ModelSpec,
        *,
        duration: float | None = None,
        language: str | None = None,
        prompt: str | None = None,
        on_text: OnText | None = None,
    ) -> Transcript:
        """The text of the audio; raises UpstreamRejected or UpstreamUnavailable.

        With `on_text`, the text is streamed when the model can: on_text gets the text so far
        after each piece. A model that cannot stream is asked the plain way, then on.
        """
        # The API transcribes faster than real time; allow generously for long parts.
        timeout = httpx.Timeout(30.0 + (duration or 60.0), connect=10.0, pool=None)
        started = time.monotonic()
        earlier = 0
        if on_text is not None and self.streams(spec):
            try:
                text, attempts = await self._asking(
                    spec,
                    self._dialects.fields(spec, duration, language, prompt),
                    lambda fields: self._post_streaming(audio, filename, fields, timeout, on_text),
                )
            except NoStreaming as exc:
                self._dialects.refuse(spec, "stream", str(exc))
                earlier = 1  # the request that showed it, counted with the plain ones
            else:
                return Transcript(text, time.monotonic() - started, attempts)
        result, attempts = await self._asking(
            spec,
            self._dialects.fields(spec, duration, language, prompt),
            lambda fields: self._post(audio, filename, fields, timeout),
        )
        seconds = time.monotonic() - started
        return Transcript(
            result.text, seconds, earlier + attempts, result.segments, result.language
        )

    async def _asking(
        self,
        spec: ModelSpec,
        fields: dict[str, str],
        send: Callable[[dict[str, str]], Awaitable[T]],
    ) -> tuple[T, int]:
        """send(fields) with retries; a field the model refuses is dropped and asked again."""
        refusals = 0
        while True:
            try:
                result, attempts = await self._api.retrying(functools.partial(send, fields))
            except UpstreamRejected as exc:
                name = refused_field(exc, fields)
                if name is None:
                    raise
                self._dialects.refuse(spec, name, str(exc))
                fields = without(fields, name)
                refusals += 1
            else:
                return result, refusals + attempts

    async def _post(
        self, audio: bytes | Path, filename: str, fields: dict[str, str], limits: httpx.Timeout
    ) -> Transcribed:
        with _file_field(audio, filename) as files, transport_errors():
            response = await self._api.http.post(
                self._url, data=fields, files=files, headers=self._api.headers, timeout=limits
            )
        self._api.check(response)
        return result_of(response)

    async def _post_streaming(
        self,
        audio: bytes | Path,
        filename: str,
        fields: dict[str, str],
        limits: httpx.Timeout,
        on_text: OnText,
    ) -> str:
        with _file_field(audio, filename) as files:
            return await post_events(
                self._api,
                self._url,
                self._streaming,
                functools.partial(_read_events, on_text=on_text),
                lambda response: result_of(response).text,
                data={**fields, "stream": "true"},
                files=files,
                timeout=limits,
            )


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


async def _read_events(source: EventSource, on_text: OnText) -> str:
    """transcript.text.delta events (on_text after each), up to transcript.text.done."""
    text = ""
    async for event in source.aiter_sse():
        if event.data == "[DONE]":
            break  # the chat completions' end marker, which some proxies send here too
        try:
            data = json.loads(event.data)
        except json.JSONDecodeError:
            raise NoStreaming(f"an event that is not JSON: {event.data[:100]!r}") from None
        if not isinstance(data, dict):
            raise NoStreaming(f"an event that is not an object: {event.data[:100]!r}")
        kind = data.get("type") or event.event
        if kind == "transcript.text.delta" and isinstance(data.get("delta"), str):
            text += data["delta"]
            await on_text(text)
        elif kind == "transcript.text.done":
            done = data.get("text")
            return (done if isinstance(done, str) else text).strip()
        elif kind == "error" or "error" in data:
            # The API failed part way (OpenAI's streams end with an error event then).
            error = data.get("error")
            message = error.get("message") if isinstance(error, dict) else error
            raise Transient(f"stream error: {message or data}", None, None)
        # Other events (logprobs, segments, keep-alives) carry nothing we show.
    raise NoStreaming("the event stream ended without transcript.text.done")
