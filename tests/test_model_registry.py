"""One registry of models: TRANSCRIPTION_MODELS, DEFAULT_MODEL and MODELS_FILE."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from bot.callbacks import Callbacks
from bot.config import Settings, describe_errors
from tests.conftest import BotFactory, send_voice
from tests.fakes import FakeTelegram, FakeTranscriptionAPI
from tests.test_config import run_bot
from tests.test_preferences import say
from tests.test_private_chat import USER
from tests.test_upgrade_button import press_model

BASE: dict[str, Any] = {"telegram_bot_token": "1:abcdef", "openai_api_key": "sk-key"}


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **BASE, **values)


def test_the_four_openai_models_are_known_and_any_other_is_whisper_style() -> None:
    models = settings(
        transcription_models="whisper-large-v3-turbo,gpt-4o-transcribe-diarize"
    ).models
    assert models.offered == ("whisper-large-v3-turbo", "gpt-4o-transcribe-diarize")
    mini, full = models.get("gpt-4o-mini-transcribe"), models.get("gpt-4o-transcribe")
    assert (mini.streaming, mini.response_format, mini.prompt) == (True, "json", True)
    assert (full.price_per_minute, mini.price_per_minute) == (0.006, 0.003)
    diarize = models.get("gpt-4o-transcribe-diarize")
    assert (diarize.response_format, diarize.prompt, diarize.chunking_strategy) == (
        "diarized_json",
        False,
        True,
    )
    assert diarize.speakers
    whisper = models.get("whisper-1")
    assert (whisper.response_format, whisper.streaming) == ("verbose_json", False)
    assert {"srt", "vtt", "text", "json"} <= set(whisper.response_formats)
    other = models.get("whisper-large-v3-turbo")
    assert (other.response_format, other.streaming, other.chunking_strategy) == (
        "verbose_json",
        False,
        False,
    )
    assert other.price_per_minute == 0.0
    assert models.knows("whisper-large-v3-turbo")
    assert not models.knows("gpt-4o-mini")  # a summary model


def test_default_model_is_the_first_offered_unless_set() -> None:
    assert settings().default_model == "gpt-4o-mini-transcribe"
    assert (
        settings(transcription_models="whisper-1, gpt-4o-transcribe").default_model == "whisper-1"
    )
    with pytest.raises(ValidationError) as caught:
        settings(transcription_models="whisper-1", default_model="gpt-4o-transcribe")
    assert describe_errors(caught.value) == ["DEFAULT_MODEL: expects one of TRANSCRIPTION_MODELS"]


def test_upgrade_is_offered_only_to_a_model_that_model_offers() -> None:
    assert settings().models.upgrade_for("gpt-4o-mini-transcribe") == "gpt-4o-transcribe"
    assert settings().models.upgrade_for("gpt-4o-transcribe") is None
    alone = settings(transcription_models="gpt-4o-mini-transcribe").models
    assert alone.upgrade_for("gpt-4o-mini-transcribe") is None


def test_models_file_overrides_and_adds(tmp_path: Path) -> None:
    file = tmp_path / "models.toml"
    file.write_text(
        """
[models.whisper-large-v3-turbo]
label = "Groq turbo (fast)"
price_per_minute = 0.000667
upgrade = "whisper-large-v3"
max_upload_mb = 100

[models.whisper-large-v3]
response_formats = ["json", "text"]
max_audio_seconds = 7200

[models.gpt-4o-transcribe]
price_per_minute = 0.01
"""
    )
    models = settings(
        transcription_models="whisper-large-v3-turbo,whisper-large-v3,gpt-4o-transcribe",
        models_file=str(file),
    ).models
    turbo = models.get("whisper-large-v3-turbo")
    assert (turbo.label, turbo.price_per_minute) == ("Groq turbo (fast)", 0.000667)
    assert turbo.max_upload_bytes == 100 * 1024 * 1024
    assert models.upgrade_for("whisper-large-v3-turbo") == "whisper-large-v3"
    large = models.get("whisper-large-v3")
    assert (large.response_format, large.max_audio_seconds) == ("json", 7200.0)
    full = models.get("gpt-4o-transcribe")
    assert (full.price_per_minute, full.streaming) == (0.01, True)  # the rest stays built in


def test_price_settings_still_win_over_the_registry(tmp_path: Path) -> None:
    file = tmp_path / "models.toml"
    file.write_text("[models.gpt-4o-transcribe]\nprice_per_minute = 0.01\n")
    models = settings(models_file=str(file), price_gpt_4o_transcribe_per_minute=0.5).models
    assert models.price_per_minute("gpt-4o-transcribe") == 0.5
    assert models.price_per_minute("gpt-4o-mini-transcribe") == 0.003


def test_a_wrong_models_file_stops_the_bot_with_one_line_per_problem(tmp_path: Path) -> None:
    file = tmp_path / "models.toml"
    file.write_text(
        """
[models.whisper-1]
price_per_minute = -1
streaming = "yes"
colour = "blue"

[models.gpt-4o-transcribe]
response_formats = ["json", "mp3"]
upgrade = "gpt-5-transcribe"

[engines]
x = 1
"""
    )
    result = run_bot(
        {"TELEGRAM_BOT_TOKEN": "1:abcdef", "OPENAI_API_KEY": "sk-key", "MODELS_FILE": str(file)},
        tmp_path,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if "MODELS_FILE" in line]
    assert lines == [
        "config error: MODELS_FILE: unknown section [engines]: only [models.NAME] tables",
        "config error: MODELS_FILE: [models.whisper-1]: price_per_minute expects a number of "
        "dollars, 0 or more",
        "config error: MODELS_FILE: [models.whisper-1]: streaming expects true or false",
        "config error: MODELS_FILE: [models.whisper-1]: unknown key 'colour' (known: label, "
        "price_per_minute, streaming, prompt, language, response_formats, chunking_strategy, "
        "max_upload_mb, max_audio_seconds, upgrade)",
        "config error: MODELS_FILE: [models.gpt-4o-transcribe]: response_formats expects a list "
        "of json, text, verbose_json, diarized_json, srt, vtt",
        "config error: MODELS_FILE: [models.gpt-4o-transcribe]: upgrade expects a model named "
        'in TRANSCRIPTION_MODELS, or "" for no upgrade button',
    ]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "MODELS_FILE: cannot read"),
        ("[models.whisper-1\nprice = 1", "is not valid TOML"),
        ("models = 3", "MODELS_FILE: models: expects tables such as [models.whisper-1]"),
    ],
)
def test_an_unreadable_models_file_is_one_line(
    tmp_path: Path, content: str | None, expected: str
) -> None:
    file = tmp_path / "models.toml"
    if content is not None:
        file.write_text(content)
    with pytest.raises(ValidationError) as caught:
        settings(models_file=str(file))
    (line,) = describe_errors(caught.value)
    assert expected in line


def test_transcription_models_must_name_each_model_once() -> None:
    for value in ("", " , ", "whisper-1,whisper-1", "a model"):
        with pytest.raises(ValidationError) as caught:
            settings(transcription_models=value)
        (line,) = describe_errors(caught.value)
        assert line.startswith("TRANSCRIPTION_MODELS: expects ")


async def test_model_offers_the_configured_models_in_order_with_their_labels(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, tmp_path: Path
) -> None:
    file = tmp_path / "models.toml"
    file.write_text('[models.gpt-4o-transcribe]\nlabel = "The good one"\n')
    async with bot_factory(
        transcription_models="gpt-4o-transcribe,gpt-4o-mini-transcribe",
        default_model="gpt-4o-mini-transcribe",
        models_file=str(file),
    ) as bot:
        await say(bot, tg, "/model")
        (keyboard,) = [c for c in tg.calls("sendMessage") if "reply_markup" in c.params]
    rows = keyboard.params["reply_markup"]["inline_keyboard"]
    assert [(row[0]["text"], row[0]["callback_data"]) for row in rows] == [
        ("The good one", Callbacks.choose_model("gpt-4o-transcribe")),
        (
            "✅ gpt-4o-mini-transcribe (fast, cheaper)",
            Callbacks.choose_model("gpt-4o-mini-transcribe"),
        ),
    ]


async def test_a_choice_no_longer_offered_falls_back_to_the_default(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    async with bot_factory() as bot:
        await press_model(bot, tg)  # gpt-4o-transcribe, stored for this user
    edits = len(tg.calls("editMessageText"))
    async with bot_factory(transcription_models="gpt-4o-mini-transcribe") as bot:
        await send_voice(bot, tg, voice_bytes, chat_id=USER)
        (request,) = await api.wait_calls(1)
        transcript = (await tg.wait_calls("editMessageText", edits + 1))[edits]
        shown = await say(bot, tg, "/settings")
    assert request.model == "gpt-4o-mini-transcribe"
    assert "transcript" in transcript.params["text"]
    assert "reply_markup" not in transcript.params  # no better model offered: no upgrade button
    assert "Model: <b>gpt-4o-mini-transcribe</b> (default)" in shown


async def test_usage_and_stats_prices_come_from_the_models_file(
    bot_factory: BotFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    voice_bytes: bytes,
    tmp_path: Path,
) -> None:
    file = tmp_path / "models.toml"
    file.write_text("[models.gpt-4o-mini-transcribe]\nprice_per_minute = 0.6\n")
    async with bot_factory(models_file=str(file), admin_user_ids=str(USER)) as bot:
        await send_voice(bot, tg, voice_bytes, chat_id=USER)  # 2 s
        await tg.wait_calls("editMessageText", 1)
        lines = (await say(bot, tg, "/usage")).splitlines()
        stats = (await say(bot, tg, "/stats")).splitlines()
    assert "gpt-4o-mini-transcribe: 2 seconds in 1 recording, ≈ $0.0200" in lines
    assert "gpt-4o-mini-transcribe: 0.03 (≈ $0.0200)" in stats
