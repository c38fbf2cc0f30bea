"""How each engine is asked, and what its answers mean: form fields, refusals, results.

What the registry says a model takes is where asking starts; what a model turns out to refuse
(a 400 naming a parameter) is remembered here for the life of the process and not sent again.
"""

from __future__ import annotations

import json
import logging
import re

import httpx

from bot import language, segments
from bot.errors import UpstreamAuthError, UpstreamRejected
from bot.models import ModelSpec
from bot.segments import Transcribed

log = logging.getLogger(__name__)

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


class Dialects:
    """The form fields each model takes, less what it refused before (logged once)."""

    def __init__(self) -> None:
        self._refused: dict[str, set[str]] = {}

    def refused(self, spec: ModelSpec, name: str) -> bool:
        return name in self._refused.get(spec.name, ())

    def refuse(self, spec: ModelSpec, name: str, message: str) -> None:
        refused = self._refused.setdefault(spec.name, set())
        if name not in refused:
            log.warning(
                "%s refused %s (%s): asking without it from now on", spec.name, name, message
            )
        refused.add(name)

    def fields(
        self, spec: ModelSpec, duration: float | None, language: str | None, prompt: str | None
    ) -> dict[str, str]:
        """model, response_format (the richest the model gives) and the hints it takes."""
        answer = "json" if self.refused(spec, "response_format") else spec.response_format
        fields = {"model": spec.name, "response_format": answer}
        if language and spec.language and not self.refused(spec, "language"):
            fields["language"] = language
        if prompt and spec.prompt and not self.refused(spec, "prompt"):
            fields["prompt"] = prompt
        long = duration is None or duration > CHUNKING_AFTER_SECONDS
        if spec.chunking_strategy and long and not self.refused(spec, "chunking_strategy"):
            fields["chunking_strategy"] = "auto"
        return fields


def without(fields: dict[str, str], name: str) -> dict[str, str]:
    """The fields less one the engine refused (a refused response format becomes json)."""
    if name == "response_format":
        return {**fields, "response_format": "json"}
    return {key: value for key, value in fields.items() if key != name}


def refused_field(error: UpstreamRejected, fields: dict[str, str]) -> str | None:
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


def result_of(response: httpx.Response) -> Transcribed:
    """json, verbose_json (segments) or diarized_json (segments with speakers)."""
    try:
        body = response.json()
    except json.JSONDecodeError:
        # A proxy that ignores response_format answers plain text.
        return Transcribed(response.text.strip())
    if isinstance(body, dict) and isinstance(body.get("text"), str):
        return Transcribed(
            str(body["text"]).strip(),
            segments.parse(body.get("segments")),
            language.code_of(body.get("language")),  # verbose_json: "english"; some: "en"
        )
    raise UpstreamRejected("the transcription API answered without text", response.status_code)
