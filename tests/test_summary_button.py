"""Under a long transcript: one tap posts a short summary, once; failures are told."""

from __future__ import annotations

from tests.conftest import BotFactory, RunningBot, send_voice
from tests.fakes import FakeTelegram, FakeTranscriptionAPI
from tests.test_preferences import say
from tests.test_private_chat import USER
from tests.test_upgrade_button import buttons, press

LONG = " ".join(f"word{i}" for i in range(40))


def summary_data(tg: FakeTelegram, message_id: int) -> str:
    (data,) = [d for t, d in buttons(tg, USER, message_id).items() if "Summary" in t]
    return data


async def long_transcript(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, voice: bytes
) -> int:
    api.set_transcript(voice, LONG)
    await send_voice(bot, tg, voice, chat_id=USER)
    edit = (await tg.wait_calls("editMessageText", 1))[0]
    return int(edit.params["message_id"])


async def test_summary_is_posted_once_under_the_transcript(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    async with bot_factory(summary_min_words=30, streaming=False) as bot:
        transcript_id = await long_transcript(bot, tg, api, voice_bytes)
        data = summary_data(tg, transcript_id)

        await press(bot, tg, USER, transcript_id, data, USER)
        reply = (await tg.wait_calls("sendMessage", 2))[1]
        assert reply.params["reply_parameters"]["message_id"] == transcript_id
        words = " ".join(f"word{i}" for i in range(12))
        assert reply.params["text"] == f"📝 <b>Summary</b>\nSummary: {words}"
        (call,) = api.chat_requests
        assert call.model == "gpt-4o-mini"
        assert LONG in call.messages[-1]["content"]  # the whole transcript, from the cache
        labels = buttons(tg, USER, transcript_id)
        assert not any("Summary" in label for label in labels)  # gone
        assert any("gpt-4o-transcribe" in label for label in labels)  # the other one stays

        await press(bot, tg, USER, transcript_id, data, USER)  # a second press: nothing
        await tg.wait_calls("answerCallbackQuery", 2)
        assert len(api.chat_requests) == 1
        usage = await say(bot, tg, "/usage")
    assert "gpt-4o-mini: 1 summary, " in usage


async def test_short_transcripts_and_disabled_summaries_have_no_button(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    async with bot_factory(summary_min_words=100) as bot:
        transcript_id = await long_transcript(bot, tg, api, voice_bytes)
        assert not any("Summary" in t for t in buttons(tg, USER, transcript_id))
    async with bot_factory(summary_min_words=10, summary_model="") as bot:
        transcript_id = await long_transcript(bot, tg, api, voice_bytes)
        assert not any("Summary" in t for t in buttons(tg, USER, transcript_id))


async def test_a_failed_summary_is_told_and_the_button_comes_back(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    async with bot_factory(
        summary_min_words=30, upstream_max_attempts=2, upstream_retry_seconds=2
    ) as bot:
        transcript_id = await long_transcript(bot, tg, api, voice_bytes)
        data = summary_data(tg, transcript_id)
        api.fail_next(503, times=2, route="chat")
        await press(bot, tg, USER, transcript_id, data, USER)
        told = (await tg.wait_calls("sendMessage", 2))[1]
        assert "not answering" in told.params["text"]
        await tg.wait_for(lambda: bool(summary_data(tg, transcript_id)))
        assert len(api.chat_requests) == 2  # retried as transcription is

        await press(bot, tg, USER, transcript_id, data, USER)  # it works now
        reply = (await tg.wait_calls("sendMessage", 3))[2]
        assert reply.params["text"].startswith("📝 <b>Summary</b>\nSummary: word0")


async def test_without_the_cache_only_a_transcript_in_one_message_offers_a_summary(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    async with bot_factory(summary_min_words=30, cache_transcripts_hours=0, streaming=False) as bot:
        transcript_id = await long_transcript(bot, tg, api, voice_bytes)
        await press(bot, tg, USER, transcript_id, summary_data(tg, transcript_id), USER)
        await api.wait_chat_calls(1)
        assert LONG in api.chat_requests[0].messages[-1]["content"]  # the message held it all

        huge = " ".join(f"word{i:05d}" for i in range(900))  # two messages
        api.set_transcript(voice_bytes, huge)
        edits = len(tg.calls("editMessageText"))
        await send_voice(bot, tg, voice_bytes, chat_id=USER)
        await tg.wait_calls("sendMessage", 5)  # summary, placeholder, second piece…
        await tg.wait_calls("editMessageText", edits + 1)
        last = tg.last_message_id(USER)
    assert not any("Summary" in t for t in buttons(tg, USER, last))  # only a part would be at hand
