"""The OpenAI-compatible transcription client: upload, retries, errors."""

from __future__ import annotations

import contextlib
import functools
import io
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from httpx_sse import EventSource, aconnect_sse
from pydantic import SecretStr

from bot import segments
from bot.errors import UpstreamAuthError, UpstreamRejected
from bot.models import ModelSpec
from bot.segments import Segment, Transcribed
from bot.upstream import ApiClient, Transient, error_message, transport_errors

log = logging.getLogger(__name__)

OnText = Callable[[str], Awaitable[None]]
T = TypeVar("T")

# Diarization needs chunking_strategy for audio longer than this (OpenAI's 400 says so).
CHUNKING_AFTER_SECONDS = 30.0
# Fields an engine may turn out not to take: the request goes again without (response_format:
# as plain json), and the engine is not sent them again. `stream` has its own fallback.
_DROPPABLE = ("prompt", "language", "chunking_strategy")
# How engines word "I do not take that" (OpenAI, Groq, FastAPI-based servers such as speaches).
_REFUSAL = re.compile(
    r"not (supported|allowed|permitted|compatible|recogni[sz]ed|available)|unsupported|"
    r"unrecogni[sz]ed|unknown|unexpected|extra (inputs|fields)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Transcript:
    text: str
    upstream_seconds: float
    attempts: int
    segments: tuple[Segment, ...] = ()  # with verbose_json or diarized_json answers


class _NoStreaming(Exception):
    """The API, or a proxy in front of it, does not stream transcriptions."""


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
        streaming: bool = True,
    ) -> None:
        self._streaming = streaming
        self._api = ApiClient(
            base_url,
            api_key,
            what="transcription",
            max_attempts=max_attempts,
            retry_seconds=retry_seconds,
            client=client,
        )
        self._url = self._api.url("audio/transcriptions")
        # What each model turned out to refuse: not sent to it again while this process lives.
        self._refused: dict[str, set[str]] = {}

    def streams(self, spec: ModelSpec) -> bool:
        """Whether on_text sees the model's text as it comes (until it shows it cannot stream)."""
        return self._streaming and spec.streaming and "stream" not in self._refused_by(spec)

    def _refused_by(self, spec: ModelSpec) -> set[str]:
        return self._refused.setdefault(spec.name, set())

    def _refuse(self, spec: ModelSpec, name: str, message: str) -> None:
        refused = self._refused_by(spec)
        if name not in refused:
            log.warning(
                "%s refused %s (%s): asking without it from now on", spec.name, name, message
            )
        refused.add(name)

    def fields(
        self, spec: ModelSpec, duration: float | None, language: str | None, prompt: str | None
    ) -> dict[str, str]:
        """The form fields this model takes, less what it refused before."""
        refused = self._refused_by(spec)
        answer = "json" if "response_format" in refused else spec.response_format
        fields = {"model": spec.name, "response_format": answer}
        if language and spec.language and "language" not in refused:
            fields["language"] = language
        if prompt and spec.prompt and "prompt" not in refused:
            fields["prompt"] = prompt
        long = duration is None or duration > CHUNKING_AFTER_SECONDS
        if spec.chunking_strategy and long and "chunking_strategy" not in refused:
            fields["chunking_strategy"] = "auto"
        return fields

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
                    self.fields(spec, duration, language, prompt),
                    lambda fields: self._post_streaming(audio, filename, fields, timeout, on_text),
                )
            except _NoStreaming as exc:
                self._refuse(spec, "stream", str(exc))
                earlier = 1  # the request that showed it, counted with the plain ones
            else:
                return Transcript(text, time.monotonic() - started, attempts)
        result, attempts = await self._asking(
            spec,
            self.fields(spec, duration, language, prompt),
            lambda fields: self._post(audio, filename, fields, timeout),
        )
        seconds = time.monotonic() - started
        return Transcript(result.text, seconds, earlier + attempts, result.segments)

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
                name = _refused_field(exc, fields)
                if name is None:
                    raise
                self._refuse(spec, name, str(exc))
                fields = self.fields_without(fields, name)
                refusals += 1
            else:
                return result, refusals + attempts

    @staticmethod
    def fields_without(fields: dict[str, str], name: str) -> dict[str, str]:
        if name == "response_format":
            return {**fields, "response_format": "json"}
        return {key: value for key, value in fields.items() if key != name}

    async def _post(
        self, audio: bytes | Path, filename: str, fields: dict[str, str], limits: httpx.Timeout
    ) -> Transcribed:
        with _file_field(audio, filename) as files, transport_errors():
            response = await self._api.http.post(
                self._url, data=fields, files=files, headers=self._api.headers, timeout=limits
            )
        self._api.check(response)
        return _result_of(response)

    async def _post_streaming(
        self,
        audio: bytes | Path,
        filename: str,
        fields: dict[str, str],
        limits: httpx.Timeout,
        on_text: OnText,
    ) -> str:
        with _file_field(audio, filename) as files, transport_errors():
            async with aconnect_sse(
                self._api.http,
                "POST",
                self._url,
                data={**fields, "stream": "true"},
                files=files,
                headers=self._api.headers,
                timeout=limits,
            ) as source:
                response = source.response
                if _is_event_stream(response) and response.status_code == 200:
                    return await _read_events(source, on_text)
                await response.aread()
        _raise_if_streaming_refused(response)
        self._api.check(response)
        # A proxy that does not stream answers the whole text at once.
        self._stop_streaming("it answered stream=true without events")
        return _result_of(response).text

    def _stop_streaming(self, reason: str) -> None:
        if self._streaming:
            log.warning("the transcription API does not stream (%s): not asking again", reason)
        self._streaming = False


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


def _is_event_stream(response: httpx.Response) -> bool:
    content_type = str(response.headers.get("content-type", ""))
    return content_type.partition(";")[0].strip().lower() == "text/event-stream"


def _raise_if_streaming_refused(response: httpx.Response) -> None:
    """A refusal that names streaming: the same request without it may well succeed."""
    if response.status_code in (400, 404, 405, 415, 422, 501):
        message = error_message(response)
        if "stream" in message.lower():
            raise _NoStreaming(message)


async def _read_events(source: EventSource, on_text: OnText) -> str:
    """transcript.text.delta events (on_text after each), up to transcript.text.done."""
    text = ""
    async for event in source.aiter_sse():
        if event.data == "[DONE]":
            break  # the chat completions' end marker, which some proxies send here too
        try:
            data = json.loads(event.data)
        except json.JSONDecodeError:
            raise _NoStreaming(f"an event that is not JSON: {event.data[:100]!r}") from None
        if not isinstance(data, dict):
            raise _NoStreaming(f"an event that is not an object: {event.data[:100]!r}")
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
    raise _NoStreaming("the event stream ended without transcript.text.done")


def _result_of(response: httpx.Response) -> Transcribed:
    """json, verbose_json (segments) or diarized_json (segments with speakers)."""
    try:
        body = response.json()
    except json.JSONDecodeError:
        # A proxy that ignores response_format answers plain text.
        return Transcribed(response.text.strip())
    if isinstance(body, dict) and isinstance(body.get("text"), str):
        return Transcribed(str(body["text"]).strip(), segments.parse(body.get("segments")))
    raise UpstreamRejected("the transcription API answered without text", response.status_code)


def _refused_field(error: UpstreamRejected, fields: dict[str, str]) -> str | None:
    """The field a 400 says the model does not take, when it is one we can do without."""
    message = str(error)
    if isinstance(error, UpstreamAuthError) or error.status not in (400, 422):
        return None
    if not _REFUSAL.search(message):
        return None
    lowered = message.lower()
    for name in _DROPPABLE:
        if name in fields and re.search(rf"\b{re.escape(name)}", lowered):
            return name
    answer = fields.get("response_format", "json")
    if answer != "json" and ("response_format" in lowered or answer in lowered):
        return "response_format"
    return None
