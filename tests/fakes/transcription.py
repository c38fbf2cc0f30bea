"""A fake OpenAI-compatible API: POST {url}/audio/transcriptions, {url}/chat/completions and
GET {url}/models.

It refuses what the real API (or a stricter proxy in front of it) refuses, answers a
predictable transcript (streamed as server-sent events on stream=true) and summary, records
every attempt and can fail, stall or hang up on demand.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Literal

from aiohttp import BodyPartReader, web

from tests.fakes._server import CallLog, FakeServer
from tests.fakes.audio_probe import (
    UnreadableAudio,
    ffprobe_duration,
    header_duration,
    sniff_container,
)
from tests.fakes.chat_completions import CHAT_MODELS, ChatCall, ChatStreaming, answer_chat
from tests.fakes.openai_errors import OpenAIError
from tests.fakes.transcription_dialects import (
    DIALECTS,
    WHISPER_STYLE,
    Dialect,
    Segment,
    answer,
    check_fields,
    default_segments,
)

# Whisper-style servers' own names (Groq's): they reject `stream` and `chunking_strategy`.
WHISPER_STYLE_MODELS = frozenset({"whisper-large-v3-turbo", "whisper-large-v3"})
# The formats the Yescale page lists; OpenAI's own message (below) also names "oga".
FORMATS = frozenset({"flac", "mp3", "mp4", "mpeg", "mpga", "m4a", "ogg", "wav", "webm"})
_FORMATS_MESSAGE = (
    "Invalid file format. Supported formats: "
    "['flac', 'm4a', 'mp3', 'mp4', 'mpeg', 'mpga', 'oga', 'ogg', 'wav', 'webm']"
)
MAX_FILE_BYTES = 25 * 1024 * 1024  # 26214400
MAX_DURATION_SECONDS = 1500
_MAX_BODY = 30 * 1024 * 1024
_LANGUAGE = re.compile(r"[a-z]{2}")
_RECORDED_HEADERS = ("Content-Type", "Content-Length", "User-Agent", "Accept", "Idempotency-Key")
_BYTES_PER_SECOND = 4_000  # ~32 kbit/s voice, to estimate usage when the duration is unknown
# "sse": events, as the gpt-4o transcribe models stream; "json": the plain answer, as proxies
# that do not stream give; "refuse": 400; "cut": deltas, then the stream ends without "done".
StreamMode = Literal["sse", "json", "refuse", "cut"]
Route = Literal["transcriptions", "chat"]
_FAULTS: dict[int, tuple[str, str, str | None]] = {
    400: ("Injected failure.", "invalid_request_error", None),
    401: ("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
    429: (
        "Rate limit reached for requests. Please try again later.",
        "requests",
        "rate_limit_exceeded",
    ),
    500: (
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
        None,
    ),
    502: ("Bad gateway.", "server_error", None),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
}


@dataclass
class TranscriptionCall:
    """One request, served or refused; status 0 means the fake hung up without answering."""

    at: float  # time.monotonic() when it arrived
    model: str = ""  # "" when the field, or the file, was not sent
    filename: str = ""
    size: int = 0
    sha256: str = ""
    fields: dict[str, str] = field(default_factory=dict)  # every form field but the file
    headers: dict[str, str] = field(default_factory=dict)
    duration_seconds: float | None = None  # when the fake measured it
    status: int = 200
    error_code: str | None = None
    text: str | None = None  # the transcript answered
    handler_seconds: float = 0.0  # time spent in the fake, delay included
    data: bytes = b""  # the uploaded file, when the fake keeps uploads (and it is <= 25 MB)

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def streamed(self) -> bool:
        """Whether the request asked for stream=true."""
        return self.fields.get("stream", "").lower() == "true"


@dataclass
class _File:
    filename: str
    size: int
    sha256: str
    data: bytes  # empty when over the size limit


@dataclass
class _Fault:
    error: OpenAIError | None  # None: hang up without answering
    remaining: int


class FakeTranscriptionAPI(FakeServer):
    """The API at `url` (the OpenAI base URL, ending in /v1)."""

    def __init__(
        self,
        api_key: str = "sk-test-key",
        *,
        check_duration: bool = False,
        keep_uploads: bool = False,
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.check_duration = check_duration  # run ffprobe on every upload (slow)
        self.keep_uploads = keep_uploads  # keep each upload's bytes in its TranscriptionCall
        self.delay = 0.0  # seconds added to every request
        self.stream_mode: StreamMode = "sse"  # how stream=true is answered
        self.stream_pieces = 5  # transcript.text.delta events per streamed transcript
        self.language = "english"  # what verbose_json answers report (Whisper says the name)
        self.stream_delay = 0.0  # seconds before each streamed event but the first
        self.chat_models = CHAT_MODELS  # what /chat/completions accepts
        self.chat_streaming = ChatStreaming()  # how /chat/completions answers stream=true
        self.transcripts: dict[str, str] = {}  # by sha256 of the file
        self.segments: dict[str, list[Segment]] = {}  # by sha256; else made up from the text
        # What each model accepts and answers (tests may change one), and other known names.
        self.dialects: dict[str, Dialect] = dict(DIALECTS)
        self.whisper_style_models = set(WHISPER_STYLE_MODELS)
        self.total_own_time = 0.0  # sum of handler_seconds, for benchmarks to subtract
        self.in_flight = 0  # requests being handled right now (e.g. waiting out `delay`)
        self.most_in_flight = 0  # the most transcription requests handled at one moment
        self.started = 0  # transcription requests that reached the handler, finished or not
        self.model_list_calls = 0  # GET /models
        self.lists_models = True  # False: GET /models is 404, as on whisper.cpp's server
        self._log: CallLog[TranscriptionCall] = CallLog(_describe)
        self._chat_log: CallLog[ChatCall] = CallLog(ChatCall.describe)
        # Served in the order they were asked for, per route.
        self._faults: dict[Route, deque[_Fault]] = {"transcriptions": deque(), "chat": deque()}

    @property
    def url(self) -> str:
        return f"{self.root_url}/v1"

    @property
    def requests(self) -> list[TranscriptionCall]:
        return self._log.items

    @property
    def chat_requests(self) -> list[ChatCall]:
        return self._chat_log.items

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10) -> None:
        await self._log.wait_for(predicate, timeout, "the awaited condition")

    async def wait_calls(self, count: int, timeout: float = 10) -> list[TranscriptionCall]:
        """Wait for at least `count` requests (any outcome); returns them all."""
        await self._log.wait_for(
            lambda: len(self.requests) >= count, timeout, f"{count} request(s)"
        )
        return list(self.requests)

    async def wait_chat_calls(self, count: int, timeout: float = 10) -> list[ChatCall]:
        """Wait for at least `count` chat completion requests; returns them all."""
        await self._chat_log.wait_for(
            lambda: len(self.chat_requests) >= count, timeout, f"{count} chat request(s)"
        )
        return list(self.chat_requests)

    @staticmethod
    def default_text(sha256: str) -> str:
        return f"transcript {sha256[:12]}"

    def set_transcript(self, data_or_sha: bytes | str, text: str) -> None:
        """Answer `text` for this file (its bytes, or the hex sha256 of them)."""
        sha = data_or_sha if isinstance(data_or_sha, str) else _sha256(data_or_sha)
        self.transcripts[sha] = text

    def set_segments(self, data_or_sha: bytes | str, segments: list[Segment]) -> None:
        """Answer these segments for this file (verbose_json, diarized_json, srt, vtt)."""
        sha = data_or_sha if isinstance(data_or_sha, str) else _sha256(data_or_sha)
        self.segments[sha] = segments

    def dialect_of(self, model: str) -> Dialect | None:
        if model in self.dialects:
            return self.dialects[model]
        return WHISPER_STYLE if model in self.whisper_style_models else None

    def transcript_for(self, data: bytes) -> str:
        return self._transcript(_sha256(data))

    def _transcript(self, sha: str) -> str:
        text = self.transcripts.get(sha)
        return self.default_text(sha) if text is None else text  # "" is a valid transcript

    def fail_next(
        self,
        status: int,
        *,
        times: int = 1,
        retry_after: float | None = None,
        message: str | None = None,
        route: Route = "transcriptions",
    ) -> None:
        """The next `times` requests to `route` (after faults already queued) get this error.

        Retry-After is sent when retry_after is given.
        """
        default_message, kind, code = _FAULTS.get(
            status, (f"Injected error {status}.", "server_error", None)
        )
        error = OpenAIError(
            status, message or default_message, type=kind, code=code, retry_after=retry_after
        )
        self._faults[route].append(_Fault(error, times))

    def drop_next(self, times: int = 1, *, route: Route = "transcriptions") -> None:
        """The next `times` requests to `route` (after faults queued) are read, then hung up on."""
        self._faults[route].append(_Fault(None, times))

    def _make_app(self) -> web.Application:
        app = web.Application(client_max_size=_MAX_BODY)
        self._add_routes(app)
        return app

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/audio/transcriptions", self._handle_transcription)
        app.router.add_post("/v1/chat/completions", self._handle_chat)
        app.router.add_get("/v1/models", self._handle_models)

    async def _handle_transcription(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        call = TranscriptionCall(
            at=time.monotonic(),
            headers={h: request.headers[h] for h in _RECORDED_HEADERS if h in request.headers},
        )
        self.in_flight += 1
        self.started += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            response = await self._transcribe(request, call)
        except OpenAIError as exc:
            call.status, call.error_code = exc.status, exc.code
            response = exc.response()
        finally:
            self.in_flight -= 1
        call.handler_seconds = time.perf_counter() - started
        self.total_own_time += call.handler_seconds
        self._log.append(call)
        return response

    async def _transcribe(
        self, request: web.Request, call: TranscriptionCall
    ) -> web.StreamResponse:
        file = await _read_form(request, call)
        if self.keep_uploads and file is not None:
            call.data = file.data
        if self.delay:
            await asyncio.sleep(self.delay)
        if self._next_fault_drops("transcriptions"):
            call.status = 0
            if request.transport is not None:
                request.transport.close()
            return web.Response()  # never sent: aiohttp ignores writes to a closed connection
        self._check_key(request.headers.get("Authorization", ""))
        if file is not None and file.size > MAX_FILE_BYTES:
            raise OpenAIError(
                413,
                f"Maximum content size limit ({MAX_FILE_BYTES}) exceeded ({file.size} bytes read)",
            )
        dialect, file = self._check_request(call.fields, file)
        call.duration_seconds = await self._duration(file)
        seconds = call.duration_seconds or file.size / _BYTES_PER_SECOND
        check_fields(call.model, dialect, call.fields, seconds)
        call.text = self._transcript(file.sha256)
        usage = {"type": "duration", "seconds": max(1, math.ceil(seconds))}
        if call.streamed and dialect.streams and self.stream_mode != "json":
            return await self._stream_reply(request, call.text, usage)
        segments = self.segments.get(file.sha256) or default_segments(
            call.text, seconds, dialect.speakers
        )
        response_format = call.fields.get("response_format", "json")
        return answer(response_format, call.text, segments, seconds, usage, self.language)

    async def _stream_reply(
        self, request: web.Request, text: str, usage: dict[str, Any]
    ) -> web.StreamResponse:
        """stream=true: transcript.text.delta events, then transcript.text.done."""
        if self.stream_mode == "refuse":
            raise OpenAIError(
                400,
                "Streaming is not supported for this model.",
                param="stream",
                code="unsupported_value",
            )
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        events: list[dict[str, Any]] = [
            {"type": "transcript.text.delta", "delta": d} for d in _pieces(text, self.stream_pieces)
        ]
        if self.stream_mode != "cut":
            events.append({"type": "transcript.text.done", "text": text, "usage": usage})
        for index, event in enumerate(events):
            if index and self.stream_delay:
                await asyncio.sleep(self.stream_delay)
            # OpenAI sends data-only events: the kind is in the JSON's "type".
            await response.write(f"data: {json.dumps(event)}\n\n".encode())
        await response.write_eof()
        return response

    async def _handle_chat(self, request: web.Request) -> web.StreamResponse:
        call = ChatCall(at=time.monotonic())
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            if self._next_fault_drops("chat"):
                call.status = 0
                if request.transport is not None:
                    request.transport.close()
                self._chat_log.append(call)
                return web.Response()
            self._check_key(request.headers.get("Authorization", ""))
            response = await answer_chat(request, call, self.chat_models, self.chat_streaming)
        except OpenAIError as exc:
            call.status, call.error_code = exc.status, exc.code
            response = exc.response()
        self._chat_log.append(call)
        return response

    async def _handle_models(self, request: web.Request) -> web.Response:
        """GET /models: OpenAI's list, only for a valid key (how an operator checks one)."""
        self.model_list_calls += 1
        if not self.lists_models:
            return web.Response(status=404, text="404: Not Found")
        try:
            self._check_key(request.headers.get("Authorization", ""))
        except OpenAIError as exc:
            return exc.response()
        models = sorted(set(self.dialects) | self.whisper_style_models | set(self.chat_models))
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "system"} for m in models]
        return web.json_response({"object": "list", "data": data})

    def _next_fault_drops(self, route: Route) -> bool:
        """Take the route's next queued fault, if any: True to hang up, or raise its error."""
        faults = self._faults[route]
        if not faults:
            return False
        fault = faults[0]
        fault.remaining -= 1
        if fault.remaining <= 0:
            faults.popleft()
        e = fault.error
        if e is None:
            return True
        raise OpenAIError(
            e.status, e.message, type=e.type, param=e.param, code=e.code, retry_after=e.retry_after
        )

    def _check_key(self, authorization: str) -> None:
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() != "bearer" or not key:
            raise OpenAIError(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            )
        if key != self.api_key:
            raise OpenAIError(
                401, f"Incorrect API key provided: {key[:5]}****.", code="invalid_api_key"
            )

    def _check_request(self, fields: dict[str, str], file: _File | None) -> tuple[Dialect, _File]:
        model = fields.get("model")
        if not model:
            raise OpenAIError(400, "you must provide a model parameter", param="model")
        dialect = self.dialect_of(model)
        if dialect is None:
            raise OpenAIError(
                400,
                f"The model `{model}` does not exist or you do not have access to it.",
                param="model",
                code="model_not_found",
            )
        if file is None:
            raise OpenAIError(400, "you must provide a file parameter", param="file")
        if PurePosixPath(file.filename).suffix.lower().removeprefix(".") not in FORMATS:
            raise OpenAIError(400, _FORMATS_MESSAGE, param="file", code="unsupported_format")
        language = fields.get("language")
        if language is not None and not _LANGUAGE.fullmatch(language):
            raise OpenAIError(
                400,
                f"Invalid language '{language}'. Language parameter must be specified in "
                "ISO-639-1 format.",
                param="language",
                code="invalid_language_format",
            )
        return dialect, file

    async def _duration(self, file: _File) -> float | None:
        """The audio's duration if known; refuses what is not audio or is too long."""
        container = sniff_container(file.data[:16])
        if container is None:
            raise _corrupted()
        duration = header_duration(file.data, container)
        if self.check_duration:
            try:
                duration = await ffprobe_duration(file.data, PurePosixPath(file.filename).suffix)
            except UnreadableAudio:
                raise _corrupted() from None
        if duration is not None and duration > MAX_DURATION_SECONDS:
            raise OpenAIError(
                400,
                f"Audio duration {duration:.1f} seconds is longer than {MAX_DURATION_SECONDS} "
                "seconds which is the maximum for this model.",
                code="invalid_value",
            )
        return duration


def _pieces(text: str, count: int) -> list[str]:
    """`text` in about `count` pieces, cut after whitespace; joined, they are `text` exactly."""
    words = re.split(r"(?<=\s)(?=\S)", text) if text else []
    size = max(1, math.ceil(len(words) / max(1, count)))
    return ["".join(words[i : i + size]) for i in range(0, len(words), size)]


def _corrupted() -> OpenAIError:
    return OpenAIError(
        400, "Audio file might be corrupted or unsupported", param="file", code="invalid_value"
    )


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def _read_form(request: web.Request, call: TranscriptionCall) -> _File | None:
    """Read the multipart form into call.fields, hashing the file as it streams in."""
    if request.content_type != "multipart/form-data":
        raise OpenAIError(
            400,
            f"Invalid Content-Type header ({request.content_type}), expected multipart/form-data.",
        )
    file = None
    async for part in await request.multipart():
        if not isinstance(part, BodyPartReader) or part.name is None:
            continue
        if part.filename is None:
            call.fields[part.name] = await part.text()
        elif part.name == "file" and file is None:
            file = await _read_file(part, part.filename)
            call.filename, call.size, call.sha256 = file.filename, file.size, file.sha256
        else:
            await part.release()
    call.model = call.fields.get("model", "")
    return file


async def _read_file(part: BodyPartReader, filename: str) -> _File:
    digest = hashlib.sha256()
    chunks: list[bytes] = []
    size = 0
    while chunk := await part.read_chunk(1 << 20):
        size += len(chunk)
        digest.update(chunk)
        if size <= MAX_FILE_BYTES:
            chunks.append(chunk)
    # Over the limit, the rest is read and dropped: the client gets its 413, not a broken pipe.
    data = b"".join(chunks) if size <= MAX_FILE_BYTES else b""
    return _File(filename, size, digest.hexdigest(), data)


def _describe(call: TranscriptionCall) -> str:
    outcome = "ok" if call.ok else f"{call.status} {call.error_code}"
    return f"{call.model} {call.filename} {call.size} bytes -> {outcome}"
