"""What each engine behind /audio/transcriptions accepts and answers (the fake's dialects).

- gpt-4o(-mini)-transcribe: `json`/`text`, streams.
- gpt-4o-transcribe-diarize: `json`/`text`/`diarized_json` (segments with speakers); 400 for a
  `prompt`; 400 for more than 30 s of audio without `chunking_strategy`.
- whisper-1: `json`/`text`/`verbose_json` (segments)/`srt`/`vtt`; `stream` is ignored.
- a Whisper-style server under another name (Groq, speaches, whisper.cpp): `json`/`text`/
  `verbose_json`; 400 for `stream` and `chunking_strategy`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes.openai_errors import OpenAIError

DIARIZE_MAX_UNCHUNKED_SECONDS = 30.0
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class Dialect:
    formats: frozenset[str]
    streams: bool = False  # answers stream=true with events (else: ignores it, or rejects it)
    rejects: frozenset[str] = frozenset()  # fields answered with 400 when sent
    speakers: bool = False
    needs_chunking: bool = False  # over 30 s of audio


_GPT4O = Dialect(frozenset({"json", "text"}), streams=True)
_WHISPER_FORMATS = frozenset({"json", "text", "verbose_json", "srt", "vtt"})
DIALECTS: dict[str, Dialect] = {
    "gpt-4o-mini-transcribe": _GPT4O,
    "gpt-4o-transcribe": _GPT4O,
    "gpt-4o-transcribe-diarize": Dialect(
        frozenset({"json", "text", "diarized_json"}),
        rejects=frozenset({"prompt"}),
        speakers=True,
        needs_chunking=True,
    ),
    "whisper-1": Dialect(_WHISPER_FORMATS),
}
WHISPER_STYLE = Dialect(
    frozenset({"json", "text", "verbose_json"}), rejects=frozenset({"stream", "chunking_strategy"})
)


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    text: str
    speaker: str | None = None


def check_fields(model: str, dialect: Dialect, fields: dict[str, str], seconds: float) -> None:
    """Refuse what this engine refuses, as it words it."""
    for name in sorted(dialect.rejects & fields.keys()):
        if name == "prompt" and dialect.speakers:
            message = "Prompt is not supported for diarization models."
        elif name == "stream":
            message = f"stream is not supported for model '{model}'."
        else:
            message = f"Unrecognized request argument supplied: {name}"
        raise OpenAIError(400, message, param=name, code="unsupported_parameter")
    response_format = fields.get("response_format", "json")
    if response_format not in dialect.formats:
        raise OpenAIError(
            400,
            f"response_format '{response_format}' is not compatible with model '{model}'. "
            f"Use one of {', '.join(sorted(dialect.formats))}.",
            param="response_format",
            code="unsupported_value",
        )
    long = seconds > DIARIZE_MAX_UNCHUNKED_SECONDS
    if dialect.needs_chunking and long and "chunking_strategy" not in fields:
        raise OpenAIError(
            400,
            "chunking_strategy is required for diarization models when the audio is longer "
            "than 30 seconds.",
            param="chunking_strategy",
            code="invalid_value",
        )


def default_segments(text: str, seconds: float, speakers: bool) -> list[Segment]:
    """About one segment per sentence (or 8 words), spread evenly over the audio."""
    pieces = [p for p in re.split(r"(?<=[.!?])\s+", text.strip()) if p]
    if len(pieces) == 1:
        words = text.split()
        pieces = [" ".join(words[i : i + 8]) for i in range(0, len(words), 8)] or [text]
    step = seconds / max(1, len(pieces))
    return [
        Segment(
            round(i * step, 2),
            round((i + 1) * step, 2),
            piece,
            _LETTERS[i % 2] if speakers else None,
        )
        for i, piece in enumerate(pieces)
    ]


def answer(
    response_format: str,
    text: str,
    segments: Sequence[Segment],
    seconds: float,
    usage: dict[str, Any],
    language: str = "english",
) -> web.Response:
    """The answer in the format asked for (already checked against the dialect)."""
    if response_format == "text":
        return web.Response(text=text, content_type="text/plain")
    if response_format == "srt":
        return web.Response(text=srt(segments), content_type="text/plain")
    if response_format == "vtt":
        return web.Response(text=vtt(segments), content_type="text/vtt")
    if response_format == "verbose_json":
        body: dict[str, Any] = {
            "task": "transcribe",
            "language": language,
            "duration": seconds,
            "text": text,
            "segments": [
                {"id": i, "seek": 0, "start": s.start, "end": s.end, "text": " " + s.text}
                for i, s in enumerate(segments)
            ],
            "usage": usage,
        }
        return web.json_response(body)
    if response_format == "diarized_json":
        return web.json_response(
            {
                "text": text,
                "segments": [
                    {
                        "type": "transcript.text.segment",
                        "id": f"seg_{i}",
                        "start": s.start,
                        "end": s.end,
                        "text": s.text,
                        "speaker": s.speaker or "A",
                    }
                    for i, s in enumerate(segments)
                ],
                "usage": usage,
            }
        )
    return web.json_response({"text": text, "usage": usage})


def _stamp(seconds: float, separator: str) -> str:
    millis = max(0, math.floor(seconds * 1000 + 0.5))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def srt(segments: Sequence[Segment]) -> str:
    return "".join(
        f"{i}\n{_stamp(s.start, ',')} --> {_stamp(s.end, ',')}\n{s.text.strip()}\n\n"
        for i, s in enumerate(segments, 1)
    )


def vtt(segments: Sequence[Segment]) -> str:
    cues = "".join(
        f"{_stamp(s.start, '.')} --> {_stamp(s.end, '.')}\n{s.text.strip()}\n\n" for s in segments
    )
    return "WEBVTT\n\n" + cues
