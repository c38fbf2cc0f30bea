"""No live edit is spent when the whole text is due within the next edit interval."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import BotFactory, RunningBot, make_audio, send_voice
from tests.fakes import FakeTelegram, FakeTranscriptionAPI
from tests.test_private_chat import USER
from tests.test_streaming import bot, final_edit, live_edits

__all__ = ["bot"]  # the fixture: a placeholder at once, so live text has a message to edit

# About what two seconds of speech make (the voice note is 2 s long): three streamed pieces.
TEXT = "one two three four five six"


async def test_no_live_edit_when_the_whole_text_follows_within_the_interval(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    api.set_transcript(voice_bytes, TEXT)
    api.stream_delay = 0.5  # pieces at 0, 0.5, 1 s; the whole text at 1.5 s
    # The placeholder 0.2 s into the job, about when the stream starts: its first edit, 1 s
    # later, comes with the end due within the next second, for streams starting from 0.3 s
    # before the placeholder to 0.5 s after it (a busy machine's download and upload).
    async with bot_factory(placeholder_after_seconds=0.2) as bot:
        await send_voice(bot, tg, voice_bytes, chat_id=USER)
        await final_edit(tg, TEXT)
    assert tg.calls("sendMessage")[0].params["text"] == "🎙 Transcribing…"
    assert live_edits(tg) == []  # the placeholder, then the text: nothing in between


@pytest.fixture(scope="module")
def ten_seconds(audio_dir: Path) -> bytes:
    path = make_audio(
        audio_dir / "ten-seconds.ogg",
        *("-f", "lavfi", "-i", "sine=frequency=330:duration=10"),
        *("-ac", "1", "-c:a", "libopus", "-b:a", "24k", "-f", "ogg"),
    )
    return path.read_bytes()


async def test_live_edits_go_on_while_the_end_is_further_than_the_interval(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, ten_seconds: bytes
) -> None:
    words = [f"word{n:02d}" for n in range(20)]  # 140 characters: ten seconds of speech
    api.set_transcript(ten_seconds, " ".join(words))
    api.stream_delay = 1.0  # a piece of 4 words a second; the whole text at 5 s
    await send_voice(bot, tg, ten_seconds, chat_id=USER, duration=10)

    final = await final_edit(tg, " ".join(words))
    shown = [c.params["text"].removesuffix(" …") for c in live_edits(tg)]
    assert len(shown) >= 2  # while 2 s and more were left, each interval had its edit
    assert all(" ".join(words).startswith(text) for text in shown)
    assert len(set(shown)) == len(shown)  # each edit showed more
    assert all(c.at < final.at for c in live_edits(tg))
