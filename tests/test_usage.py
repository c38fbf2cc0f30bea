"""/usage: this month's minutes and estimated cost per model; /stats for the bot's admins.
Summaries and translations are counted apart."""

from __future__ import annotations

import re

from tests.conftest import BotFactory, send_voice
from tests.fakes import FakeTelegram, FakeTranscriptionAPI
from tests.test_preferences import say
from tests.test_private_chat import USER
from tests.test_translate import RUSSIAN, final_translation, transcript_of, translate_data
from tests.test_translate import USER as READER
from tests.test_upgrade_button import buttons, press, press_model


async def test_usage_shows_minutes_and_cost_per_model(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    # Prices chosen so that 2 s of audio shows as a round figure.
    async with bot_factory(
        price_gpt_4o_mini_transcribe_per_minute=0.6, price_gpt_4o_transcribe_per_minute=1.2
    ) as bot:
        for _ in range(2):
            await send_voice(bot, tg, voice_bytes, chat_id=USER)  # 2 s each, mini
        await tg.wait_calls("editMessageText", 2)
        await press_model(bot, tg)
        await send_voice(bot, tg, voice_bytes, chat_id=USER)
        await tg.wait_calls("editMessageText", 4)

        lines = (await say(bot, tg, "/usage")).splitlines()
    assert "gpt-4o-mini-transcribe: 4 seconds in 2 recordings, ≈ $0.0400" in lines
    assert "gpt-4o-transcribe: 2 seconds in 1 recording, ≈ $0.0400" in lines
    assert "Total ≈ $0.0800" in lines


async def test_stats_are_for_admins_and_add_up_per_model_and_day(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    async with bot_factory(admin_user_ids=str(USER + 1)) as bot:
        await send_voice(bot, tg, voice_bytes, chat_id=USER)
        await tg.wait_calls("editMessageText", 1)
        assert "for the bot's admins" in await say(bot, tg, "/stats")
        shown = await say(bot, tg, "/stats", user_id=USER + 1)
    assert "done: 1" in shown
    assert "gpt-4o-mini-transcribe: 0.03" in shown
    assert "<b>Minutes by day</b>" in shown
    assert f"{USER}: 1 jobs, 0.0 min" in shown


async def test_summaries_and_translations_are_counted_apart(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    settings = {"streaming": False, "summary_min_words": 5, "admin_user_ids": str(READER)}
    async with bot_factory(**settings) as bot:
        transcript_id = await transcript_of(bot, tg, api, voice_bytes, RUSSIAN)
        translate = translate_data(tg, transcript_id)
        assert translate is not None
        await press(bot, tg, READER, transcript_id, translate, READER)
        await final_translation(tg, transcript_id)
        (summary_button,) = [
            data for label, data in buttons(tg, READER, transcript_id).items() if "Summary" in label
        ]
        await press(bot, tg, READER, transcript_id, summary_button, READER)
        await tg.wait_for(lambda: len(api.chat_requests) == 2)
        await tg.wait_calls("sendMessage", 3)  # translation, summary

        usage = (await say(bot, tg, "/usage", READER)).splitlines()
        stats = (await say(bot, tg, "/stats", READER)).splitlines()
    summary = re.compile(r"gpt-4o-mini: 1 summary, (\d+) tokens, ≈ \$0\.\d{4}$")
    translation = re.compile(r"gpt-4o-mini: 1 translation, (\d+) tokens, ≈ \$0\.\d{4}$")
    assert sum(bool(summary.match(line)) for line in usage) == 1, usage
    assert sum(bool(translation.match(line)) for line in usage) == 1, usage
    section = stats[stats.index("<b>Summaries and translations</b>") + 1 :][:2]
    assert [line.split(",")[0] for line in section] == [
        "gpt-4o-mini: 1 summary",
        "gpt-4o-mini: 1 translation",
    ], stats
