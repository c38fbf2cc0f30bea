"""Translate: a button under a transcript in another language than the reader's, and /translate.

The fake chat model "translates" by marking each line with the language asked for ("[en] ...").
"""

from __future__ import annotations

import re
from typing import Any

from bot.language import code_of, detect
from tests.conftest import (
    BotFactory,
    RunningBot,
    next_message_id,
    next_update_id,
    send_voice,
    voice_message,
)
from tests.fakes import FakeTelegram, FakeTranscriptionAPI, text_update
from tests.fakes.chat_completions import ChatStreaming
from tests.test_preferences import say
from tests.test_result_cache import forward
from tests.test_upgrade_button import buttons, press

USER = 6161
RUSSIAN = "Привет всем, сегодня мы обсуждаем новый проект и сроки его запуска."
ENGLISH = "Hello everyone, today we are talking about the new project and its launch dates."
SETTINGS: dict[str, Any] = {"streaming": False}


async def transcript_of(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, voice: bytes, text: str
) -> int:
    """Send a voice note that is transcribed as `text`; the transcript message's id."""
    api.set_transcript(voice, text)
    before = len(tg.calls("editMessageText"))
    await send_voice(bot, tg, voice, chat_id=USER)
    edit = (await tg.wait_calls("editMessageText", before + 1))[before]
    return int(edit.params["message_id"])


def translate_data(tg: FakeTelegram, message_id: int) -> str | None:
    found = [d for label, d in buttons(tg, USER, message_id).items() if "Translate" in label]
    return found[0] if found else None


async def reply_command(
    bot: RunningBot, tg: FakeTelegram, text: str, reply_to: int | dict[str, Any]
) -> None:
    """`text` as a reply to a message: the bot's (by id), or a user's (as Telegram sent it)."""
    message_id = next_message_id()
    tg.add_message(USER, message_id, text=text)
    update = text_update(
        next_update_id(),
        chat_id=USER,
        user_id=USER,
        message_id=message_id,
        text=text,
        reply_to=tg.message_json(USER, reply_to) if isinstance(reply_to, int) else reply_to,
    )
    assert (await bot.deliver(update)).status_code == 200


def replies_to(tg: FakeTelegram, message_id: int) -> list[str]:
    return [m.text or "" for m in tg.bot_messages(USER) if m.reply_to == message_id]


async def final_translation(tg: FakeTelegram, message_id: int, count: int = 1) -> list[str]:
    """The translation's messages under `message_id`, once the placeholder is replaced."""

    def done() -> bool:
        texts = replies_to(tg, message_id)
        return len(texts) >= count and all("Translating" not in t for t in texts)

    await tg.wait_for(done, 15)
    return replies_to(tg, message_id)


async def test_button_appears_only_when_the_transcript_is_in_another_language(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    async with bot_factory(**SETTINGS) as bot:
        russian = await transcript_of(bot, tg, api, voice_bytes, RUSSIAN)
        assert translate_data(tg, russian) is not None
        assert "🌐 Translate" in buttons(tg, USER, russian)  # in the reader's language
    async with bot_factory(**SETTINGS) as bot:
        english = await transcript_of(bot, tg, api, voice_bytes + b"\0", ENGLISH)
        assert translate_data(tg, english) is None
    async with bot_factory(chat_model="", **SETTINGS) as bot:
        off = await transcript_of(bot, tg, api, voice_bytes + b"\0\0", RUSSIAN)
        assert translate_data(tg, off) is None


async def test_a_press_posts_the_translation_under_the_transcript_once_and_counts_it(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    async with bot_factory(chat_model="gpt-4.1-mini", **SETTINGS) as bot:
        transcript_id = await transcript_of(bot, tg, api, voice_bytes, RUSSIAN)
        data = translate_data(tg, transcript_id)
        assert data is not None

        await press(bot, tg, USER, transcript_id, data, USER)
        [translation] = await final_translation(tg, transcript_id)
        assert translation == f"🌐 Translation (English)\n[en] {RUSSIAN}"
        (call,) = api.chat_requests
        assert call.model == "gpt-4.1-mini"
        assert "English (language code: en)" in call.messages[0]["content"]
        assert call.messages[-1]["content"] == RUSSIAN
        assert translate_data(tg, transcript_id) is None  # done for its reader: gone

        # Asked again (here with /translate): the cache answers, nothing is paid twice.
        await reply_command(bot, tg, "/translate", transcript_id)
        await tg.wait_for(lambda: len(replies_to(tg, transcript_id)) == 2)
        assert replies_to(tg, transcript_id)[1] == translation
        assert len(api.chat_requests) == 1
        usage = await say(bot, tg, "/usage", USER)
    assert "gpt-4.1-mini" in usage


async def test_translate_command_asks_for_a_given_language(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    async with bot_factory(**SETTINGS) as bot:
        transcript_id = await transcript_of(bot, tg, api, voice_bytes, ENGLISH)
        await reply_command(bot, tg, "/translate vi", transcript_id)
        [translation] = await final_translation(tg, transcript_id)
        assert translation == f"🌐 Translation (Tiếng Việt)\n[vi] {ENGLISH}"
        assert "Vietnamese (language code: vi)" in api.chat_requests[0].messages[0]["content"]

        await reply_command(bot, tg, "/translate zz", transcript_id)
        unknown = (await tg.wait_calls("sendMessage", 3))[-1]
        assert "don't know the language code" in unknown.params["text"]
    assert len(api.chat_requests) == 1


async def test_an_unknown_code_cut_inside_an_html_entity_is_still_answered(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    """The code is shown cut to 16 characters: cut before it is escaped, never inside "&lt;"."""
    async with bot_factory(**SETTINGS) as bot:
        transcript_id = await transcript_of(bot, tg, api, voice_bytes, ENGLISH)
        await reply_command(bot, tg, "/translate aaaaaaaaaaaaaaa<", transcript_id)
        unknown = (await tg.wait_calls("sendMessage", 2))[-1]
        assert unknown.status == 200, unknown.params["text"]
        assert "aaaaaaaaaaaaaaa&lt;" in unknown.params["text"]
    assert api.chat_requests == []


async def test_translate_command_on_a_voice_note_uses_its_transcript(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    async with bot_factory(**SETTINGS) as bot:
        api.set_transcript(voice_bytes, RUSSIAN)
        voice = voice_message(tg, voice_bytes, chat_id=USER)
        assert (await bot.deliver(voice)).status_code == 200
        await tg.wait_calls("editMessageText", 1)
        await reply_command(bot, tg, "/translate de", voice["message"])
        texts = await final_translation(tg, voice["message"]["message_id"], count=2)
        assert texts[-1] == f"🌐 Translation (Deutsch)\n[de] {RUSSIAN}"


async def test_long_transcripts_are_translated_in_parts_that_keep_paragraphs_and_timestamps(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    paragraphs = [
        f"[00:{minute:02d}:00]\n" + " ".join(["Это предложение о проекте."] * 60)
        for minute in range(0, 50, 5)
    ]
    long_text = "\n\n".join(paragraphs)  # about 16,000 characters
    async with bot_factory(**SETTINGS) as bot:
        transcript_id = await transcript_of(bot, tg, api, voice_bytes, long_text)

        # The transcript's last message carries the buttons.
        def with_button() -> list[int]:
            return [m.message_id for m in tg.bot_messages(USER) if translate_data(tg, m.message_id)]

        await tg.wait_for(lambda: bool(with_button()))
        [last] = with_button()
        data = translate_data(tg, last)
        assert data is not None
        await press(bot, tg, USER, last, data, USER)
        await api.wait_chat_calls(3)
        texts = await final_translation(tg, last, count=5)

    sent = [call.messages[-1]["content"] for call in api.chat_requests]
    assert len(sent) >= 3
    assert all(len(part) <= 6000 for part in sent)
    assert "\n\n".join(sent) == long_text  # whole paragraphs, in order, nothing lost
    joined = "\n".join(t.removeprefix("🌐 Translation (English)\n") for t in texts)
    for minute in range(0, 50, 5):
        assert f"[en] [00:{minute:02d}:00]" in joined  # every part heading kept, in order
    assert joined.index("[00:45:00]") > joined.index("[00:05:00]")
    assert transcript_id != last


def test_language_guess_keeps_to_the_readers_language_when_a_short_text_may_be_in_it() -> None:
    assert detect("transcript 3f2a9c1b0e of a voice note", "en") == "en"
    assert detect(RUSSIAN, "en") == "ru"
    assert detect("xin chào các bạn, hôm nay chúng ta nói về dự án mới", "en") == "vi"
    assert detect("ok", "en") is None  # too short to tell


async def test_the_language_the_engine_reports_decides_the_button_when_it_reports_one(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    # Two words: too few for lingua to tell. whisper-1 answers verbose_json, with "language".
    short = "Привет всем"
    assert detect(short) is None
    api.set_transcript(voice_bytes, short)
    async with bot_factory(transcription_models="whisper-1", **SETTINGS) as bot:
        api.language = "russian"
        russian = await forwarded_transcript(bot, tg, voice_bytes)
        assert translate_data(tg, russian) is not None
        # The same file again, answered from the cache: the reported language was kept too.
        again = await forwarded_transcript(bot, tg, voice_bytes)
        assert len(api.requests) == 1
        assert translate_data(tg, again) is not None
        # What the engine says wins over a guess from the text.
        api.language = "english"
        english = await transcript_of(bot, tg, api, voice_bytes + b"\0", RUSSIAN)
        assert detect(RUSSIAN) == "ru"
        assert translate_data(tg, english) is None


async def forwarded_transcript(bot: RunningBot, tg: FakeTelegram, voice: bytes) -> int:
    """The same voice note (one file_unique_id) sent to USER again; its transcript's id."""
    before = len(tg.calls("editMessageText"))
    await forward(bot, tg, voice, USER)
    edit = (await tg.wait_calls("editMessageText", before + 1))[before]
    return int(edit.params["message_id"])


def test_the_engines_words_for_languages_read_as_iso_codes() -> None:
    said = ["english", "Russian", "vi", "pt-BR", "en_US", "chinese", "klingon", "xx", "", None, 7]
    assert [code_of(word) for word in said] == [
        "en",
        "ru",
        "vi",
        "pt",
        "en",
        "zh",
        None,
        None,
        None,
        None,
        None,
    ]


async def test_a_translation_is_shown_as_it_streams_in(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    api.chat_streaming = ChatStreaming(pieces=4, delay=0.7)  # about 2 s, in four pieces
    async with bot_factory() as bot:  # STREAMING on, as by default
        transcript_id = await transcript_of(bot, tg, api, voice_bytes, RUSSIAN)
        await reply_command(bot, tg, "/translate en", transcript_id)

        def headed() -> bool:
            return any(t.startswith("🌐 Translation") for t in replies_to(tg, transcript_id))

        await tg.wait_for(headed, 15)  # the final text: headed, unlike the text so far
        [translation] = replies_to(tg, transcript_id)
        usage = (await say(bot, tg, "/usage", USER)).splitlines()

    made = f"[en] {RUSSIAN}"
    assert translation == f"🌐 Translation (English)\n{made}"
    (call,) = api.chat_requests
    assert call.streamed
    (message,) = [m for m in tg.bot_messages(USER) if m.reply_to == transcript_id]
    so_far = [text for text in message.history if text and text.endswith(" …")]
    assert so_far, message.history  # the text so far, at least once, before the whole
    assert all(made.startswith(text.removesuffix(" …")) for text in so_far)
    assert all(len(text) - 2 < len(made) for text in so_far)
    # The tokens came in the stream's last chunk (stream_options.include_usage).
    assert any(re.match(r"gpt-4o-mini: 1 translation, [1-9]\d* tokens", line) for line in usage)


async def test_a_chat_api_that_does_not_stream_is_asked_plainly_from_then_on(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    api.chat_streaming = ChatStreaming(mode="refuse")
    async with bot_factory() as bot:
        transcript_id = await transcript_of(bot, tg, api, voice_bytes, RUSSIAN)
        await reply_command(bot, tg, "/translate en", transcript_id)
        [first] = await final_translation(tg, transcript_id)
        await reply_command(bot, tg, "/translate vi", transcript_id)
        await final_translation(tg, transcript_id, count=2)
    assert first == f"🌐 Translation (English)\n[en] {RUSSIAN}"
    asked = [(call.status, call.streamed) for call in api.chat_requests]
    assert asked == [(400, True), (200, False), (200, False)]


async def test_a_proxy_answering_stream_requests_whole_still_translates(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    api.chat_streaming = ChatStreaming(mode="json")
    async with bot_factory() as bot:
        transcript_id = await transcript_of(bot, tg, api, voice_bytes, RUSSIAN)
        await reply_command(bot, tg, "/translate en", transcript_id)
        [translation] = await final_translation(tg, transcript_id)
        await reply_command(bot, tg, "/translate vi", transcript_id)
        await final_translation(tg, transcript_id, count=2)
    assert translation == f"🌐 Translation (English)\n[en] {RUSSIAN}"
    assert [call.streamed for call in api.chat_requests] == [True, False]


async def test_translations_count_against_the_per_minute_limit_like_recordings(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    # Each translation is a paid request to the chat model: one person asking for one language
    # after another meets the same limit as one sending recording after recording.
    def refused() -> bool:
        return any("a lot at once" in (m.text or "") for m in tg.bot_messages(USER))

    async with bot_factory(**SETTINGS, user_jobs_per_minute=3) as bot:
        transcript_id = await transcript_of(bot, tg, api, voice_bytes, ENGLISH)  # 1 of 3
        await reply_command(bot, tg, "/translate vi", transcript_id)  # 2 of 3
        await final_translation(tg, transcript_id, count=1)
        await reply_command(bot, tg, "/translate ru", transcript_id)  # 3 of 3
        await final_translation(tg, transcript_id, count=2)
        await reply_command(bot, tg, "/translate de", transcript_id)
        await tg.wait_for(refused, 15)
    assert len(api.chat_requests) == 2
