"""The transcript appears as the API streams it; an API that cannot stream is asked plainly."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from bot.models import BUILT_IN
from bot.transcriber import Transcriber
from tests.conftest import API_KEY, BotFactory, RunningBot, send_voice, voice_message
from tests.fakes import Call, FakeTelegram, FakeTranscriptionAPI
from tests.test_groups import GROUP, MEMBER
from tests.test_private_chat import USER

WORDS = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen"
MORE = " …"  # what a live edit ends with
FULL = BUILT_IN["gpt-4o-transcribe"]
TOLERANCE = 0.1  # seconds: the fake records arrival, the bot measures from sending


@pytest.fixture
async def bot(bot_factory: BotFactory) -> AsyncIterator[RunningBot]:
    """Live text goes in a placeholder: here one at once, whatever the wait."""
    async with bot_factory(placeholder_after_seconds=0) as running:
        yield running


def live_edits(tg: FakeTelegram) -> list[Call]:
    return [c for c in tg.calls("editMessageText") if c.params["text"].endswith(MORE)]


async def final_edit(tg: FakeTelegram, text: str, timeout: float = 15) -> Call:
    await tg.wait_for(
        lambda: any(c.params["text"] == text for c in tg.calls("editMessageText")), timeout
    )
    return next(c for c in tg.calls("editMessageText") if c.params["text"] == text)


async def test_slow_stream_edits_the_placeholder_about_once_a_second_then_shows_it_all(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    api.set_transcript(voice_bytes, WORDS)
    api.stream_delay = 0.7  # 5 deltas and "done": 3.5 s
    await send_voice(bot, tg, voice_bytes, chat_id=USER)

    final = await final_edit(tg, WORDS)
    placeholder = tg.calls("sendMessage")[0]
    live = live_edits(tg)
    assert len(live) >= 2
    assert all(WORDS.startswith(c.params["text"].removesuffix(MORE)) for c in live)
    times = [placeholder.at] + [c.at for c in live]
    assert all(b - a >= 1 - TOLERANCE for a, b in itertools.pairwise(times))
    assert tg.calls("editMessageText")[-1] is final  # nothing lands after the whole text
    assert all(c.params["message_id"] == final.params["message_id"] for c in live)
    assert [r.streamed for r in api.requests] == [True]


async def test_in_a_group_live_edits_are_three_seconds_apart(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    api.set_transcript(voice_bytes, WORDS)
    api.stream_delay = 0.9  # 4.5 s
    # A long recording (as it says): a short one gets no placeholder in a group.
    update = voice_message(
        tg, voice_bytes, chat_id=GROUP, user_id=MEMBER, chat_type="supergroup", duration=150
    )
    assert (await bot.deliver(update)).status_code == 200

    await final_edit(tg, "👤 <b>Ann</b>\n" + WORDS)  # headed by who spoke, in a group
    placeholder = next(c for c in tg.calls("sendMessage") if c.params["chat_id"] == GROUP)
    live = live_edits(tg)
    assert 1 <= len(live) <= 2
    times = [placeholder.at] + [c.at for c in live]
    assert all(b - a >= 3 - TOLERANCE for a, b in itertools.pairwise(times))


async def test_a_long_streamed_transcript_fits_each_live_edit_then_is_split(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    text = " ".join(f"word{i:04d}" for i in range(700))  # 6,299 characters
    api.set_transcript(voice_bytes, text)
    api.stream_delay = 0.5
    await send_voice(bot, tg, voice_bytes, chat_id=USER)

    await tg.wait_calls("sendMessage", 2, timeout=15)  # the placeholder, then the second piece
    live = live_edits(tg)
    assert live
    assert all(c.ok for c in tg.calls("editMessageText"))  # none over Telegram's 4,096
    assert live[-1].params["text"].startswith("…word")  # the end of the text so far
    final = tg.calls("editMessageText")[-1]
    second = tg.calls("sendMessage")[1]
    assert f"{final.params['text']} {second.params['text']}" == text


async def test_a_proxy_that_answers_json_gives_the_transcript_and_is_not_asked_to_stream_again(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    api.stream_mode = "json"
    api.set_transcript(voice_bytes, "plain answer")
    await send_voice(bot, tg, voice_bytes, chat_id=USER)
    await final_edit(tg, "plain answer")
    await send_voice(bot, tg, voice_bytes, chat_id=USER)
    await tg.wait_for(lambda: len(tg.calls("editMessageText")) == 2)

    assert [c.params["text"] for c in tg.calls("editMessageText")] == ["plain answer"] * 2
    assert [(r.status, r.streamed) for r in api.requests] == [(200, True), (200, False)]


async def test_a_refused_stream_falls_back_to_a_plain_request_once_for_all(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    api.stream_mode = "refuse"
    api.set_transcript(voice_bytes, "after the fallback")
    await send_voice(bot, tg, voice_bytes, chat_id=USER)
    await final_edit(tg, "after the fallback")
    await send_voice(bot, tg, voice_bytes, chat_id=USER)
    await tg.wait_for(lambda: len(tg.calls("editMessageText")) == 2)

    assert [(r.status, r.streamed) for r in api.requests] == [
        (400, True),
        (200, False),
        (200, False),
    ]


async def test_a_stream_that_ends_without_done_falls_back_to_a_plain_request(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    api.stream_mode = "cut"
    api.set_transcript(voice_bytes, WORDS)
    await send_voice(bot, tg, voice_bytes, chat_id=USER)
    await final_edit(tg, WORDS)
    assert [(r.status, r.streamed) for r in api.requests] == [(200, True), (200, False)]


async def test_a_rate_limited_stream_is_retried_as_a_stream(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    api.fail_next(429, retry_after=1)
    api.set_transcript(voice_bytes, "streamed after the rate limit")
    await send_voice(bot, tg, voice_bytes, chat_id=USER)
    await final_edit(tg, "streamed after the rate limit")
    assert [(r.status, r.streamed) for r in api.requests] == [(429, True), (200, True)]
    assert api.requests[1].at - api.requests[0].at >= 0.9


async def test_with_streaming_off_the_api_is_never_asked_to_stream(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    api.stream_delay = 0.7
    api.set_transcript(voice_bytes, WORDS)
    async with bot_factory(streaming=False, placeholder_after_seconds=0) as bot:
        await send_voice(bot, tg, voice_bytes, chat_id=USER)
        await final_edit(tg, WORDS)
    assert [r.streamed for r in api.requests] == [False]
    assert live_edits(tg) == []


async def test_language_and_prompt_are_sent_only_when_given(
    api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    transcriber = Transcriber(api.url, SecretStr(API_KEY))
    seen: list[str] = []

    async def on_text(text: str) -> None:
        seen.append(text)

    try:
        await transcriber.transcribe(
            voice_bytes, "voice.ogg", FULL, language="vi", prompt="Xin chào"
        )
        await transcriber.transcribe(voice_bytes, "voice.ogg", FULL)
        streamed = await transcriber.transcribe(
            voice_bytes, "voice.ogg", FULL, language="vi", on_text=on_text
        )
    finally:
        await transcriber.aclose()

    fields = [r.fields for r in api.requests]
    assert (fields[0]["language"], fields[0]["prompt"]) == ("vi", "Xin chào")
    assert "language" not in fields[1]
    assert "prompt" not in fields[1]
    assert (fields[2]["language"], fields[2]["stream"]) == ("vi", "true")
    assert "prompt" not in fields[2]
    text = api.transcript_for(voice_bytes)
    assert streamed.text == text
    assert seen[-1] == text
    assert all(text.startswith(s) for s in seen)
