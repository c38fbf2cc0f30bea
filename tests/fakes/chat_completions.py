"""The fake API's POST {url}/chat/completions: OpenAI-shaped, with a predictable summary.

stream=true is answered as OpenAI does (chat.completion.chunk events, a usage chunk when
stream_options.include_usage, then [DONE]), or, as ChatStreaming.mode says, as plain JSON (a
proxy that does not stream) or with a 400 that names stream."""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from tests.fakes.openai_errors import OpenAIError

CHAT_MODELS = frozenset({"gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-4.1"})
_ROLES = frozenset({"system", "developer", "user", "assistant"})
SUMMARY_WORDS = 12
# A system prompt that asks for a translation names the language's code so.
_TRANSLATE = re.compile(r"translate.*\(language code: ([a-z]{2})\)", re.IGNORECASE | re.DOTALL)
_ids = itertools.count(1)


@dataclass
class ChatCall:
    """One chat completion request, served or refused; status 0: hung up without answering."""

    at: float  # time.monotonic() when it arrived
    model: str = ""
    messages: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    error_code: str | None = None
    text: str | None = None  # the answer's content
    streamed: bool = False  # asked with stream=true

    @property
    def ok(self) -> bool:
        return self.status == 200

    def describe(self) -> str:
        outcome = "ok" if self.ok else f"{self.status} {self.error_code}"
        return f"chat {self.model} {len(self.messages)} message(s) -> {outcome}"


@dataclass
class ChatStreaming:
    """How stream=true is answered: "sse" in about `pieces` chunks, `delay` seconds apart;
    "json": the whole completion at once; "refuse": 400."""

    mode: Literal["sse", "json", "refuse"] = "sse"
    pieces: int = 5
    delay: float = 0.0


def translation_of(text: str, code: str) -> str:
    """The fake's translation: the text, line by line, marked with the language asked for."""
    return "\n".join(f"[{code}] {line}" if line.strip() else line for line in text.split("\n"))


def summary_of(transcript: str) -> str:
    """The fake's summary: its first words, so tests can tell which text was summarised."""
    return "Summary: " + " ".join(transcript.split()[:SUMMARY_WORDS])


async def answer_chat(
    request: web.Request,
    call: ChatCall,
    models: frozenset[str] = CHAT_MODELS,
    streaming: ChatStreaming | None = None,
) -> web.StreamResponse:
    """Check the request as OpenAI does and answer a summary of the last user message (or the
    translation the system prompt asks for)."""
    streaming = streaming or ChatStreaming()
    body = await _json_body(request)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise OpenAIError(400, "you must provide a model parameter", param="model")
    call.model = model
    messages = _messages(body.get("messages"))
    call.messages = messages
    if model not in models:
        raise OpenAIError(
            404,
            f"The model `{model}` does not exist or you do not have access to it.",
            code="model_not_found",
        )
    users = [_text(m["content"]) for m in messages if m["role"] == "user"]
    last = users[-1] if users else ""
    system = " ".join(_text(m["content"]) for m in messages if m["role"] == "system")
    asked = _TRANSLATE.search(system)
    call.text = translation_of(last, asked.group(1)) if asked else summary_of(last)
    prompt_tokens = sum(len(_text(m["content"]).split()) + 3 for m in messages)
    completion_tokens = len(call.text.split())
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    call.streamed = body.get("stream") is True
    if call.streamed and streaming.mode == "refuse":
        raise OpenAIError(400, "stream is not supported by this proxy", param="stream")
    if call.streamed and streaming.mode == "sse":
        options = body.get("stream_options")
        with_usage = isinstance(options, dict) and options.get("include_usage") is True
        return await _stream(request, model, call.text, usage if with_usage else None, streaming)
    return web.json_response(
        {
            "id": f"chatcmpl-fake{next(_ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": call.text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": usage,
        }
    )


async def _stream(
    request: web.Request,
    model: str,
    text: str,
    usage: dict[str, Any] | None,
    streaming: ChatStreaming,
) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    name = f"chatcmpl-fake{next(_ids)}"

    def chunk(choices: list[dict[str, Any]], **more: Any) -> bytes:
        body = {"id": name, "object": "chat.completion.chunk", "created": int(time.time())}
        return (
            f"data: {json.dumps({**body, 'model': model, 'choices': choices, **more})}\n\n".encode()
        )

    words = re.split(r"(?<=\s)(?=\S)", text)
    size = max(1, math.ceil(len(words) / max(1, streaming.pieces)))
    pieces = ["".join(words[i : i + size]) for i in range(0, len(words), size)]
    await response.write(chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}}]))
    for index, piece in enumerate(pieces):
        if index and streaming.delay:
            await asyncio.sleep(streaming.delay)
        await response.write(chunk([{"index": 0, "delta": {"content": piece}}]))
    await response.write(chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}]))
    if usage is not None:
        await response.write(chunk([], usage=usage))
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


async def _json_body(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise OpenAIError(
            400, f"Invalid Content-Type header ({request.content_type}), expected application/json."
        )
    try:
        body = json.loads(await request.text())
    except json.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        raise OpenAIError(
            400,
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly.)",
        )
    return body


def _messages(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        raise OpenAIError(400, f"{value!r} is too short - 'messages'", param="messages")
    for index, message in enumerate(value):
        where = f"messages.[{index}]"
        if not isinstance(message, dict) or message.get("role") not in _ROLES:
            raise OpenAIError(400, f"Invalid value for '{where}.role'.", param=f"{where}.role")
        content = message.get("content")
        if not isinstance(content, str | list):
            raise OpenAIError(400, f"Invalid type for '{where}.content'.", param=f"{where}.content")
    return value


def _text(content: str | list[Any]) -> str:
    """A message's text: a string, or the text parts of a list."""
    if isinstance(content, str):
        return content
    return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
