"""Each engine is asked the way it understands; a parameter it refuses is dropped, once."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest

from tests.conftest import BotFactory, make_audio, send_voice
from tests.fakes import FakeTelegram, FakeTranscriptionAPI
from tests.fakes.transcription_dialects import DIALECTS, WHISPER_STYLE, Segment
from tests.test_preferences import say
from tests.test_private_chat import USER
from tests.test_upgrade_button import buttons, press

TURBO = "whisper-large-v3-turbo"


@pytest.fixture(scope="session")
def long_voice(audio_dir: Path) -> bytes:
    """40 seconds of ogg/opus: over diarization's 30 s without chunking_strategy."""
    path = make_audio(
        audio_dir / "forty.ogg",
        *("-f", "lavfi", "-i", "sine=frequency=300:duration=40"),
        *("-ac", "1", "-c:a", "libopus", "-b:a", "16k", "-f", "ogg"),
    )
    return path.read_bytes()


async def transcript_text(tg: FakeTelegram, before: int = 0) -> str:
    """The text of the next transcript edited into a placeholder."""
    edit = (await tg.wait_calls("editMessageText", before + 1))[before]
    return str(edit.params["text"])


async def test_whisper_1_is_asked_for_verbose_json_and_never_to_stream(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    api.set_transcript(voice_bytes, "Hello there.")
    async with bot_factory(transcription_models="whisper-1") as bot:
        await say(bot, tg, "/prompt Kubernetes")
        await say(bot, tg, "/language en")
        await send_voice(bot, tg, voice_bytes, chat_id=USER)
        shown = await transcript_text(tg)
    (request,) = api.requests
    assert request.fields == {
        "model": "whisper-1",
        "response_format": "verbose_json",
        "language": "en",
        "prompt": "Kubernetes",
    }
    assert shown == "Hello there."  # a short note: no timestamps


async def test_a_whisper_style_engine_gets_no_stream_and_no_chunking_strategy(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, long_voice: bytes
) -> None:
    api.set_transcript(long_voice, "Forty seconds of words.")
    async with bot_factory(transcription_models=TURBO) as bot:
        await send_voice(bot, tg, long_voice, chat_id=USER, duration=40)
        shown = await transcript_text(tg)
    (request,) = api.requests
    assert request.ok
    assert request.fields == {"model": TURBO, "response_format": "verbose_json"}
    assert shown == "Forty seconds of words."


async def test_diarization_gets_no_prompt_and_chunking_over_30_seconds(
    bot_factory: BotFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    voice_bytes: bytes,
    long_voice: bytes,
) -> None:
    api.set_segments(
        long_voice,
        [
            Segment(0.0, 4.0, "Hi, how are you?", "A"),
            Segment(4.0, 9.0, "Fine, thanks.", "B"),
            Segment(9.0, 12.0, "And you?", "B"),
            Segment(12.0, 40.0, "Good.", "A"),
        ],
    )
    async with bot_factory(transcription_models="gpt-4o-transcribe-diarize") as bot:
        await say(bot, tg, "/prompt Kubernetes")
        await send_voice(bot, tg, long_voice, chat_id=USER, duration=40)
        shown = await transcript_text(tg)
        await send_voice(bot, tg, voice_bytes, chat_id=USER)
        await api.wait_calls(2)
    long, short = api.requests
    assert long.fields == {
        "model": "gpt-4o-transcribe-diarize",
        "response_format": "diarized_json",
        "chunking_strategy": "auto",
    }
    assert short.fields == {
        "model": "gpt-4o-transcribe-diarize",
        "response_format": "diarized_json",
    }
    assert [r.status for r in api.requests] == [200, 200]
    assert shown == (
        "Speaker A\nHi, how are you?\n\nSpeaker B\nFine, thanks. And you?\n\nSpeaker A\nGood."
    )


async def test_speaker_labels_are_in_the_readers_language(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    api.set_segments(
        voice_bytes, [Segment(0.0, 1.0, "Привет.", "A"), Segment(1.0, 2.0, "Здравствуй.", "B")]
    )
    async with bot_factory(transcription_models="gpt-4o-transcribe-diarize") as bot:
        await send_voice(bot, tg, voice_bytes, chat_id=USER, language_code="ru")
        shown = await transcript_text(tg)
    assert shown == "Спикер A\nПривет.\n\nСпикер B\nЗдравствуй."


async def test_a_refused_parameter_is_dropped_asked_again_and_remembered(
    bot_factory: BotFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    voice_bytes: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A proxy in front of gpt-4o-transcribe that does not know `prompt`.
    api.dialects["gpt-4o-transcribe"] = dataclasses.replace(
        DIALECTS["gpt-4o-transcribe"], rejects=frozenset({"prompt"})
    )
    api.set_transcript(voice_bytes, "without the hint")
    with caplog.at_level(logging.WARNING, logger="bot.dialects"):
        async with bot_factory(default_model="gpt-4o-transcribe", streaming=False) as bot:
            await say(bot, tg, "/prompt Kubernetes")
            await send_voice(bot, tg, voice_bytes, chat_id=USER)
            first = await transcript_text(tg)
            await send_voice(bot, tg, voice_bytes + b"\0", chat_id=USER)  # not from the cache
            await api.wait_calls(3)
            await tg.wait_calls("editMessageText", 2)
    assert first == "without the hint"
    assert [(r.status, "prompt" in r.fields) for r in api.requests] == [
        (400, True),
        (200, False),
        (200, False),
    ]
    refusals = [r for r in caplog.records if "refused prompt" in r.getMessage()]
    assert len(refusals) == 1  # logged once for the process's life
    assert "gpt-4o-transcribe" in refusals[0].getMessage()


async def test_an_engine_without_verbose_json_is_asked_for_json(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    api.dialects[TURBO] = dataclasses.replace(WHISPER_STYLE, formats=frozenset({"json", "text"}))
    api.set_transcript(voice_bytes, "plain words")
    async with bot_factory(transcription_models=TURBO) as bot:
        await send_voice(bot, tg, voice_bytes, chat_id=USER)
        assert await transcript_text(tg) == "plain words"
    assert [(r.status, r.fields["response_format"]) for r in api.requests] == [
        (400, "verbose_json"),
        (200, "json"),
    ]


async def test_an_engine_said_to_stream_that_cannot_is_asked_plainly_from_then_on(
    bot_factory: BotFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    voice_bytes: bytes,
    long_voice: bytes,
    tmp_path: Path,
) -> None:
    models = tmp_path / "models.toml"
    models.write_text(f"[models.{TURBO}]\nstreaming = true\nchunking_strategy = true\n")
    async with bot_factory(transcription_models=TURBO, models_file=str(models)) as bot:
        await send_voice(bot, tg, long_voice, chat_id=USER, duration=40)
        await transcript_text(tg)
        await send_voice(bot, tg, voice_bytes, chat_id=USER)
        await api.wait_calls(4)
        await tg.wait_calls("editMessageText", 2)
    asked = [(r.status, r.streamed, "chunking_strategy" in r.fields) for r in api.requests]
    assert asked == [
        (400, True, True),  # chunking_strategy refused
        (400, True, False),  # stream refused
        (200, False, False),
        (200, False, False),  # the next job: neither is asked again
    ]


async def test_an_engine_that_refuses_a_required_value_is_not_asked_again_in_a_loop(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    api.fail_next(400, message="Invalid file format.", times=2)
    async with bot_factory(transcription_models="whisper-1") as bot:
        await send_voice(bot, tg, voice_bytes, chat_id=USER)
        shown = await transcript_text(tg)
    assert len(api.requests) == 1
    assert "couldn't process" in shown


async def test_upgrade_offers_the_model_the_registry_names_and_runs_it(
    bot_factory: BotFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    voice_bytes: bytes,
    tmp_path: Path,
) -> None:
    models = tmp_path / "models.toml"
    models.write_text(f'[models.{TURBO}]\nupgrade = "whisper-large-v3"\n')
    offered = f"{TURBO},whisper-large-v3"
    async with bot_factory(transcription_models=offered, models_file=str(models)) as bot:
        await send_voice(bot, tg, voice_bytes, chat_id=USER)
        edit = (await tg.wait_calls("editMessageText", 1))[0]
        transcript_id = int(edit.params["message_id"])
        found = buttons(tg, USER, transcript_id)
        assert list(found) == ["✨ Transcribe with whisper-large-v3"]
        await press(
            bot, tg, USER, transcript_id, found["✨ Transcribe with whisper-large-v3"], USER
        )
        await api.wait_calls(2)
        await tg.wait_for(lambda: buttons(tg, USER, transcript_id) == {})
    assert [r.model for r in api.requests] == [TURBO, "whisper-large-v3"]
    assert api.requests[1].fields["response_format"] == "verbose_json"


async def test_the_summary_is_made_from_the_labelled_text(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    api.set_transcript(voice_bytes, "Shall we start? Yes, let us start now.")
    api.set_segments(
        voice_bytes,
        [
            Segment(0.0, 1.0, "Shall we start?", "A"),
            Segment(1.0, 2.0, "Yes, let us start now.", "B"),
        ],
    )
    async with bot_factory(
        transcription_models="gpt-4o-transcribe-diarize", summary_min_words=3
    ) as bot:
        await send_voice(bot, tg, voice_bytes, chat_id=USER)
        edit = (await tg.wait_calls("editMessageText", 1))[0]
        transcript_id = int(edit.params["message_id"])
        await press(
            bot, tg, USER, transcript_id, buttons(tg, USER, transcript_id)["📝 Summary"], USER
        )
        (call,) = await api.wait_chat_calls(1)
    assert "Speaker A\nShall we start?\n\nSpeaker B\nYes, let us start now." in str(
        call.messages[-1]["content"]
    )
