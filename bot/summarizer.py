"""Summaries and translations of transcripts through the OpenAI-compatible chat completions API."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from httpx_sse import EventSource
from pydantic import BaseModel, SecretStr, ValidationError

from bot.errors import UpstreamRejected
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

OnText = Callable[[str], Awaitable[None]]  # the text so far, after each piece streamed

SYSTEM_PROMPT = (
    "You summarize transcripts of voice messages. Reply with a short summary of the transcript "
    "the user sends: a few bullet points, or 2 to 4 sentences. Write it in the language of the "
    "transcript. Plain text only: no Markdown, no headings, no preamble."
)
TRANSLATE_PROMPT = (
    "You translate transcripts of voice messages into {language} (language code: {code}). "
    "Translate the text the user sends. Keep its paragraphs and line breaks, keep timestamps "
    "in square brackets such as [00:25:00] and speaker labels exactly as they are. Plain text "
    "only: no notes, no preamble, no quotation marks around it."
)
# A summary is short, but the model first reads the whole transcript (up to hours of speech).
_TIMEOUT = httpx.Timeout(120.0, connect=10.0, pool=None)


@dataclass(frozen=True)
class Summary:
    text: str
    input_tokens: int
    output_tokens: int


class _Message(BaseModel):
    content: str | None = None


class _Choice(BaseModel):
    message: _Message


class _Usage(BaseModel):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class _Completion(BaseModel):
    choices: list[_Choice]
    usage: _Usage | None = None


class Summarizer:
    """POST {base}/chat/completions with one shared, keep-alive httpx client."""

    def __init__(
        self,
        base_url: str,
        api_key: SecretStr,
        *,
        max_attempts: int = 5,
        retry_seconds: float = 120.0,
        client: httpx.AsyncClient | None = None,
        gate: UpstreamGate | None = None,
    ) -> None:
        self._api = ApiClient(
            base_url,
            api_key,
            what="summary",
            max_attempts=max_attempts,
            retry_seconds=retry_seconds,
            client=client,
            gate=gate,
        )
        self._url = self._api.url("chat/completions")
        self._streaming = StreamingSwitch(log, "chat")

    async def aclose(self) -> None:
        await self._api.aclose()

    async def summarize(self, text: str, model: str) -> Summary:
        """A short summary of `text`; raises UpstreamRejected or UpstreamUnavailable."""
        return await self._complete(SYSTEM_PROMPT, text, model)

    async def translate(
        self, text: str, model: str, language: str, code: str, on_text: OnText | None = None
    ) -> Summary:
        """`text` in `language` (an English name, e.g. "Russian"; `code` its ISO 639-1 code).

        With `on_text`, streamed when the API streams: on_text gets the text so far after each
        piece. An API that does not is asked the plain way, then on.
        """
        system = TRANSLATE_PROMPT.format(language=language, code=code)
        return await self._complete(system, text, model, on_text)

    async def _complete(
        self, system: str, text: str, model: str, on_text: OnText | None = None
    ) -> Summary:
        body: dict[str, Any] = {
            "model": model,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": text},
            ],
        }
        if on_text is not None and self._streaming.on:
            try:
                streamed, _ = await self._api.retrying(lambda: self._post_streaming(body, on_text))
            except NoStreaming as exc:
                self._streaming.stop(str(exc))
            else:
                return streamed
        summary, _ = await self._api.retrying(lambda: self._post(body))
        return summary

    async def _post_streaming(self, body: dict[str, Any], on_text: OnText) -> Summary:
        streamed = {**body, "stream": True, "stream_options": {"include_usage": True}}
        return await post_events(
            self._api,
            self._url,
            self._streaming,
            functools.partial(_read_chunks, on_text=on_text),
            _summary_of,
            json=streamed,
            timeout=_TIMEOUT,
        )

    async def _post(self, body: dict[str, Any]) -> Summary:
        with transport_errors():
            response = await self._api.http.post(
                self._url, json=body, headers=self._api.headers, timeout=_TIMEOUT
            )
        self._api.check(response)
        return _summary_of(response)


def _summary_of(response: httpx.Response) -> Summary:
    try:
        completion = _Completion.model_validate_json(response.content)
    except ValidationError:  # not JSON, or not a completion
        completion = None
    content = completion.choices[0].message.content if completion and completion.choices else None
    if completion is None or not content or not content.strip():
        raise UpstreamRejected("the summary API answered without text", response.status_code)
    usage = completion.usage or _Usage()
    return Summary(content.strip(), usage.prompt_tokens or 0, usage.completion_tokens or 0)


async def _read_chunks(source: EventSource, on_text: OnText) -> Summary:
    """chat.completion.chunk events (on_text after each piece of content), the usage chunk
    (stream_options.include_usage), then [DONE]."""
    text, usage, ended = "", _Usage(), False
    async for event in source.aiter_sse():
        if event.data == "[DONE]":
            ended = True
            break
        try:
            chunk = json.loads(event.data)
        except json.JSONDecodeError:
            raise NoStreaming(f"an event that is not JSON: {event.data[:100]!r}") from None
        if not isinstance(chunk, dict):
            raise NoStreaming(f"an event that is not an object: {event.data[:100]!r}")
        if "error" in chunk:  # the API failed part way
            raise Transient(f"stream error: {chunk['error']}", None, None)
        if isinstance(chunk.get("usage"), dict):
            with contextlib.suppress(ValidationError):
                usage = _Usage.model_validate(chunk["usage"])
        piece = _content_of(chunk)
        if piece:
            text += piece
            await on_text(text)
    if not ended:
        raise Transient("the completion stream ended before [DONE]", None, None)
    if not text.strip():
        raise UpstreamRejected("the summary API answered without text", 200)
    return Summary(text.strip(), usage.prompt_tokens or 0, usage.completion_tokens or 0)


def _content_of(chunk: dict[str, Any]) -> str:
    choices = chunk.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return ""
    delta = choices[0].get("delta")
    content = delta.get("content") if isinstance(delta, dict) else None
    return content if isinstance(content, str) else ""
