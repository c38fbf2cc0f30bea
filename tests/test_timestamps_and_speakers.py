"""Real timestamps and speakers from the engine's segments; subtitles for videos."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from bot.segments import Segment as BotSegment
from bot.segments import clock, to_srt
from tests.conftest import (
    BotFactory,
    make_audio,
    next_message_id,
    next_update_id,
    send_voice,
)
from tests.fakes import FakeTelegram, FakeTranscriptionAPI, media_update
from tests.fakes.transcription_dialects import Segment
from tests.test_private_chat import USER
from tests.test_upgrade_button import buttons, press

TURBO = "whisper-large-v3-turbo"


@pytest.fixture(scope="session")
def long_recording(audio_dir: Path) -> bytes:
    """200 seconds of ogg/opus: "over a few minutes"."""
    path = make_audio(
        audio_dir / "two-hundred.ogg",
        *("-f", "lavfi", "-i", "sine=frequency=250:duration=200"),
        *("-ac", "1", "-c:a", "libopus", "-b:a", "12k", "-f", "ogg"),
    )
    return path.read_bytes()


def segments_every(seconds: float, total: float) -> list[Segment]:
    count = int(total // seconds)
    return [Segment(i * seconds, (i + 1) * seconds, f"Words {i}.") for i in range(count)]


async def transcript_edit(tg: FakeTelegram, before: int = 0) -> tuple[int, str]:
    # Long: ffmpeg measures (and may cut) a 200 s recording first, slow on a loaded machine.
    edit = (await tg.wait_calls("editMessageText", before + 1, timeout=60))[before]
    return int(edit.params["message_id"]), str(edit.params["text"])


async def test_a_long_recording_is_shown_in_paragraphs_headed_by_their_start(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, long_recording: bytes
) -> None:
    api.set_segments(long_recording, segments_every(25.0, 200.0))
    async with bot_factory(transcription_models="whisper-1") as bot:
        await send_voice(bot, tg, long_recording, chat_id=USER, duration=200)
        _, shown = await transcript_edit(tg)
    assert shown == (
        "[00:00]\nWords 0. Words 1. Words 2.\n\n"
        "[01:15]\nWords 3. Words 4. Words 5.\n\n"
        "[02:30]\nWords 6. Words 7."
    )


async def test_timestamps_run_on_across_the_parts_of_a_split_recording(
    bot_factory: BotFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    long_recording: bytes,
    tmp_path: Path,
) -> None:
    models = tmp_path / "models.toml"
    models.write_text(f"[models.{TURBO}]\nmax_audio_seconds = 90\n")  # parts of at most 84 s
    async with bot_factory(transcription_models=TURBO, models_file=str(models)) as bot:
        await send_voice(bot, tg, long_recording, chat_id=USER, duration=200)
        await tg.wait_for(
            lambda: "[00:00]" in (tg.text_of(USER, tg.last_message_id(USER)) or ""), timeout=60
        )
        shown = tg.text_of(USER, tg.last_message_id(USER)) or ""
    parts = {r.text or "": r.duration_seconds for r in api.requests}
    assert len(parts) == 3
    assert all(r.ok for r in api.requests)
    # One segment a part (the fake's own): each paragraph starts where its part starts.
    paragraphs = [p.split("\n") for p in shown.split("\n\n")]
    assert sorted(text for _, text in paragraphs) == sorted(parts)
    start = 0.0
    for heading, text in paragraphs:
        assert heading == f"[{clock(start)}]"
        start += parts[text] or 0.0
    assert start == pytest.approx(200.0, abs=1.0)


async def test_a_long_diarized_recording_heads_each_turn_with_speaker_and_time(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, long_recording: bytes
) -> None:
    api.set_segments(
        long_recording,
        [
            Segment(0.0, 50.0, "Let us start.", "A"),
            Segment(50.0, 130.0, "Agreed.", "B"),
            Segment(130.0, 200.0, "Done then.", "A"),
        ],
    )
    async with bot_factory(transcription_models="gpt-4o-transcribe-diarize") as bot:
        await send_voice(bot, tg, long_recording, chat_id=USER, duration=200)
        _, shown = await transcript_edit(tg)
    assert shown == (
        "Speaker A [00:00]\nLet us start.\n\nSpeaker B [00:50]\nAgreed.\n\n"
        "Speaker A [02:10]\nDone then."
    )


def video_update(tg: FakeTelegram, data: bytes, kind: str = "video") -> dict[str, Any]:
    """A video (or round video) update; the bot sniffs the bytes, so ogg will do."""
    message_id = next_message_id()
    file = tg.add_file(data)
    tg.add_message(USER, message_id)
    return media_update(
        next_update_id(),
        kind,
        chat_id=USER,
        user_id=USER,
        message_id=message_id,
        file=file,
        duration=2,
    )


@pytest.mark.parametrize("kind", ["video", "video_note"])
async def test_a_video_gets_a_subtitles_button_that_sends_an_srt(
    bot_factory: BotFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    voice_bytes: bytes,
    kind: str,
) -> None:
    api.set_transcript(voice_bytes, "First line. Second line.")
    api.set_segments(
        voice_bytes, [Segment(0.0, 1.25, "First line."), Segment(1.25, 2.0, "Second line.")]
    )
    async with bot_factory(transcription_models="whisper-1") as bot:
        update = video_update(tg, voice_bytes, kind)
        assert (await bot.deliver(update)).status_code == 200
        transcript_id, shown = await transcript_edit(tg)
        found = buttons(tg, USER, transcript_id)
        assert "🎬 Subtitles" in found
        await press(bot, tg, USER, transcript_id, found["🎬 Subtitles"], USER)
        (document,) = await tg.wait_calls("sendDocument", 1)
    assert shown == "First line. Second line."
    assert document.files["document"].decode() == (
        "1\n00:00:00,000 --> 00:00:01,250\nFirst line.\n\n"
        "2\n00:00:01,250 --> 00:00:02,000\nSecond line.\n"
    )
    assert document.params["reply_parameters"]["message_id"] == transcript_id


async def test_voice_notes_and_engines_without_segments_get_no_subtitles_button(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    async with bot_factory(transcription_models="whisper-1,gpt-4o-transcribe") as bot:
        await send_voice(bot, tg, voice_bytes, chat_id=USER)  # a voice note, with segments
        voice_id, _ = await transcript_edit(tg)
    async with bot_factory(transcription_models="gpt-4o-transcribe") as bot:
        assert (await bot.deliver(video_update(tg, voice_bytes + b"\0"))).status_code == 200
        video_id, _ = await transcript_edit(tg, 1)  # a video, but json: no segments
    assert [r.fields["response_format"] for r in api.requests] == ["verbose_json", "json"]
    assert not any("Subtitles" in label for label in buttons(tg, USER, voice_id))
    assert not any("Subtitles" in label for label in buttons(tg, USER, video_id))


def test_srt_numbers_cues_and_names_speakers() -> None:
    srt = to_srt(
        [BotSegment(3661.5, 3662.0, " Hi\nthere ", "A"), BotSegment(3662.0, 3662.0, "Yes", "B")],
        lambda label: f"Speaker {label}",
    )
    assert srt == (
        "1\n01:01:01,500 --> 01:01:02,000\nSpeaker A: Hi there\n\n"
        "2\n01:01:02,000 --> 01:01:02,001\nSpeaker B: Yes\n"
    )
    assert re.fullmatch(r"(\d+\n[\d:,]+ --> [\d:,]+\n.+\n\n?)+", srt)


async def test_subtitles_once_the_transcript_is_no_longer_kept_are_refused_politely(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    api.set_segments(voice_bytes, [Segment(0.0, 2.0, "Gone soon.")])
    async with bot_factory(transcription_models="whisper-1", cache_transcripts_hours=0.0005) as bot:
        assert (await bot.deliver(video_update(tg, voice_bytes))).status_code == 200
        transcript_id, _ = await transcript_edit(tg)
        data = buttons(tg, USER, transcript_id)["🎬 Subtitles"]
        await asyncio.sleep(2.0)  # past CACHE_TRANSCRIPTS_HOURS (1.8 s)
        await press(bot, tg, USER, transcript_id, data, USER)
        (answer,) = await tg.wait_calls("answerCallbackQuery", 1)
    assert answer.params["show_alert"] is True
    assert "no longer kept" in answer.params["text"]
    assert tg.calls("sendDocument") == []
