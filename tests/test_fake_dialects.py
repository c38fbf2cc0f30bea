"""The fake API speaks each engine's dialect: what it refuses, what it answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import API_KEY, make_audio
from tests.fakes import FakeTranscriptionAPI
from tests.fakes.transcription_dialects import Segment

TWO = [Segment(0.0, 1.5, "One."), Segment(1.5, 3.0, "Two.")]


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def forty_seconds(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("dialects") / "forty.ogg"
    sine = ("-f", "lavfi", "-i", "sine=frequency=300:duration=40")
    return make_audio(path, *sine, "-c:a", "libopus", "-b:a", "16k", "-f", "ogg").read_bytes()


async def post(
    http: httpx.AsyncClient, api: FakeTranscriptionAPI, data: bytes, **fields: str
) -> httpx.Response:
    return await http.post(
        f"{api.url}/audio/transcriptions",
        headers={"Authorization": f"Bearer {API_KEY}"},
        data=fields,
        files={"file": ("voice.ogg", data, "audio/ogg")},
    )


async def test_whisper_1_answers_every_format_and_ignores_stream(
    http: httpx.AsyncClient, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    api.set_transcript(voice_bytes, "One. Two.")
    api.set_segments(voice_bytes, TWO)
    verbose = (
        await post(http, api, voice_bytes, model="whisper-1", response_format="verbose_json")
    ).json()
    assert verbose["text"] == "One. Two."
    assert [(s["start"], s["end"], s["text"]) for s in verbose["segments"]] == [
        (0.0, 1.5, " One."),
        (1.5, 3.0, " Two."),
    ]
    srt = await post(http, api, voice_bytes, model="whisper-1", response_format="srt")
    assert (
        srt.text
        == "1\n00:00:00,000 --> 00:00:01,500\nOne.\n\n2\n00:00:01,500 --> 00:00:03,000\nTwo.\n\n"
    )
    vtt = await post(http, api, voice_bytes, model="whisper-1", response_format="vtt")
    assert vtt.text.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nOne.\n")
    text = await post(http, api, voice_bytes, model="whisper-1", response_format="text")
    assert text.text == "One. Two."
    streamed = await post(http, api, voice_bytes, model="whisper-1", stream="true")
    assert streamed.headers["content-type"].startswith("application/json")  # ignored
    assert streamed.json()["text"] == "One. Two."


@pytest.mark.parametrize(
    ("fields", "param"),
    [({"stream": "true"}, "stream"), ({"chunking_strategy": "auto"}, "chunking_strategy")],
)
async def test_a_whisper_style_engine_rejects_stream_and_chunking_strategy(
    http: httpx.AsyncClient,
    api: FakeTranscriptionAPI,
    voice_bytes: bytes,
    fields: dict[str, str],
    param: str,
) -> None:
    model = "whisper-large-v3-turbo"
    refused = await post(http, api, voice_bytes, model=model, **fields)
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == param
    assert param in refused.json()["error"]["message"]
    verbose = await post(http, api, voice_bytes, model=model, response_format="verbose_json")
    assert verbose.json()["segments"][0]["text"].strip() == api.transcript_for(voice_bytes)
    srt = await post(http, api, voice_bytes, model=model, response_format="srt")
    assert srt.status_code == 400  # json, text and verbose_json only


async def test_diarization_refuses_a_prompt_and_long_audio_without_chunking(
    http: httpx.AsyncClient, api: FakeTranscriptionAPI, voice_bytes: bytes, forty_seconds: bytes
) -> None:
    model = "gpt-4o-transcribe-diarize"
    prompted = await post(http, api, voice_bytes, model=model, prompt="Names")
    assert prompted.status_code == 400
    assert prompted.json()["error"]["message"] == "Prompt is not supported for diarization models."
    unchunked = await post(http, api, forty_seconds, model=model)
    assert unchunked.status_code == 400
    assert unchunked.json()["error"]["param"] == "chunking_strategy"
    api.set_segments(forty_seconds, [Segment(0, 20, "Hi.", "A"), Segment(20, 40, "Hello.", "B")])
    answer = await post(
        http,
        api,
        forty_seconds,
        model=model,
        chunking_strategy="auto",
        response_format="diarized_json",
    )
    assert [(s["speaker"], s["start"], s["end"], s["text"]) for s in answer.json()["segments"]] == [
        ("A", 0, 20, "Hi."),
        ("B", 20, 40, "Hello."),
    ]
    short = await post(http, api, voice_bytes, model=model, response_format="diarized_json")
    assert short.json()["segments"][0]["speaker"] == "A"  # made up from the text


async def test_made_up_segments_spread_the_text_over_the_audio(
    http: httpx.AsyncClient, api: FakeTranscriptionAPI, forty_seconds: bytes, tmp_path: Path
) -> None:
    api.set_transcript(forty_seconds, "First part. Second part. Third part. Fourth part.")
    answer = await post(http, api, forty_seconds, model="whisper-1", response_format="verbose_json")
    starts = [s["start"] for s in answer.json()["segments"]]
    assert starts == pytest.approx([0, 10, 20, 30], abs=0.1)
