"""Summaries and translations of transcripts through the OpenAI-compatible chat completions API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import BaseModel, SecretStr, ValidationError

from bot.errors import UpstreamRejected
from bot.upstream import ApiClient, transport_errors
from bot.upstream_gate import UpstreamGate

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

    async def aclose(self) -> None:
        await self._api.aclose()

    async def summarize(self, text: str, model: str) -> Summary:
        """A short summary of `text`; raises UpstreamRejected or UpstreamUnavailable."""
        return await self._complete(SYSTEM_PROMPT, text, model)

    async def translate(self, text: str, model: str, language: str, code: str) -> Summary:
        """`text` in `language` (an English name, e.g. "Russian"; `code` its ISO 639-1 code)."""
        return await self._complete(
            TRANSLATE_PROMPT.format(language=language, code=code), text, model
        )

    async def _complete(self, system: str, text: str, model: str) -> Summary:
        body = {
            "model": model,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": text},
            ],
        }
        summary, _ = await self._api.retrying(lambda: self._post(body))
        return summary

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
