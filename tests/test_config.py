"""Settings: clear one-line errors, no traceback, no secret echoed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from bot.config import RedisLocation, Settings, database_location, describe_errors, redact_url
from tests.conftest import API_KEY, TOKEN


def run_bot(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ["PATH"], "HOME": str(cwd)}
    return subprocess.run(
        [sys.executable, "-m", "bot"],
        env={**base, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_missing_settings_stop_the_bot_with_one_line_each(tmp_path: Path) -> None:
    result = run_bot({}, tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "TELEGRAM_BOT_TOKEN: is required but not set" in result.stderr
    assert "OPENAI_API_KEY: is required but not set" in result.stderr
    assert ".env.example" in result.stderr


def test_invalid_values_name_the_variable_and_hide_the_value(tmp_path: Path) -> None:
    result = run_bot(
        {
            "TELEGRAM_BOT_TOKEN": "123:secret-token-value",
            "OPENAI_API_KEY": "sk-very-secret",
            "DEFAULT_MODEL": "whisper-9",
            "LISTEN_PORT": "eighty",
            "DATABASE_URL": "postgres://x",
            "WEBHOOK_URL": "https://bot.example.com/hook",
            "ADMIN_USER_IDS": "12,abc",
        },
        tmp_path,
    )
    assert result.returncode == 2
    err = result.stderr
    assert "Traceback" not in err
    for name in ("DEFAULT_MODEL", "LISTEN_PORT", "DATABASE_URL", "ADMIN_USER_IDS"):
        assert f"{name}: " in err
    assert "secret-token-value" not in err
    assert "sk-very-secret" not in err


def test_webhook_url_needs_a_secret() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(
            _env_file=None,
            telegram_bot_token=TOKEN,
            openai_api_key=API_KEY,
            webhook_url="https://bot.example.com/hook",
        )
    assert describe_errors(caught.value) == ["WEBHOOK_SECRET: is required when WEBHOOK_URL is set"]


def test_comma_separated_ids_and_defaults() -> None:
    settings = Settings(
        _env_file=None,
        telegram_bot_token=TOKEN,
        openai_api_key=API_KEY,
        admin_user_ids="1, 2,3",
    )
    assert settings.admin_user_ids == frozenset({1, 2, 3})
    assert settings.default_model == "gpt-4o-mini-transcribe"
    assert settings.database_url == "sqlite:///data/bot.sqlite3"
    assert settings.auto_transcribe_groups is True
    assert settings.webhook_path == "/webhook"


def test_env_file_is_read(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text(
        f"TELEGRAM_BOT_TOKEN={TOKEN}\nOPENAI_API_KEY={API_KEY}\nDEFAULT_MODEL=gpt-4o-transcribe\n"
    )
    settings = Settings(_env_file=env)
    assert settings.default_model == "gpt-4o-transcribe"


def test_streaming_and_summary_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = Settings(_env_file=None, telegram_bot_token=TOKEN, openai_api_key=API_KEY)
    assert defaults.streaming is True
    assert (defaults.summary_model, defaults.summary_min_words) == ("gpt-4o-mini", 150)
    assert defaults.summary_input_price_per_million == 0.15
    assert defaults.summary_output_price_per_million == 0.60

    monkeypatch.setenv("STREAMING", "false")
    monkeypatch.setenv("SUMMARY_MODEL", "")  # summaries off
    monkeypatch.setenv("SUMMARY_MIN_WORDS", "80")
    changed = Settings(_env_file=None, telegram_bot_token=TOKEN, openai_api_key=API_KEY)
    assert (changed.streaming, changed.summary_model, changed.summary_min_words) == (False, "", 80)


def test_redis_urls_are_accepted_and_a_bad_one_is_named() -> None:
    for url in ("redis://localhost:6379/0", "rediss://:pw-123456@redis.example.com:6380/2"):
        settings = Settings(
            _env_file=None, telegram_bot_token=TOKEN, openai_api_key=API_KEY, database_url=url
        )
        assert settings.database_url == url
    with pytest.raises(ValidationError) as caught:
        Settings(
            _env_file=None,
            telegram_bot_token=TOKEN,
            openai_api_key=API_KEY,
            database_url="redis://localhost:6379/zero",
        )
    (line,) = describe_errors(caught.value)
    assert line.startswith("DATABASE_URL: expects redis://")


def test_unreachable_redis_stops_the_bot_naming_database_url_without_the_password(
    tmp_path: Path,
) -> None:
    from tests.conftest import free_port

    result = run_bot(
        {
            "TELEGRAM_BOT_TOKEN": "123:secret-token-value",
            "OPENAI_API_KEY": "sk-very-secret",
            "DATABASE_URL": f"redis://:pass-w0rd-secret@127.0.0.1:{free_port()}/0",
        },
        tmp_path,
    )
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("startup error: DATABASE_URL: cannot reach Redis at redis://:***@")
    assert "pass-w0rd-secret" not in result.stderr


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("telegram_bot_token", "12345:abc"),
        ("telegram_bot_token", "not-a-token"),
        ("openai_api_key", "k3y"),
        ("webhook_secret", "abc"),
        ("database_url", "redis://:pw@localhost:6379/0"),
        ("database_url", "redis://localhost:6379/0?password=pw"),
        ("database_url", "redis+sentinel://:pw@s1:26379/master"),
        ("database_url", "redis+sentinel://s1:26379/master?sentinel_password=pw"),
    ],
)
def test_secrets_too_short_to_keep_out_of_the_logs_are_refused(setting: str, value: str) -> None:
    values: dict[str, Any] = {
        "telegram_bot_token": TOKEN,
        "openai_api_key": API_KEY,
        setting: value,
    }
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None, **values)
    (line,) = describe_errors(caught.value)
    assert line.startswith(setting.upper() + ": expects ")
    assert value not in line


def test_a_redis_password_in_the_query_is_known_and_redacted() -> None:
    url = "redis://redis.internal:6379/0?password=s3cret-pass&socket_timeout=5"
    location = database_location(url)
    assert isinstance(location, RedisLocation)
    assert location.password == "s3cret-pass"
    assert redact_url(url) == "redis://redis.internal:6379/0?password=***&socket_timeout=5"
    assert redact_url("redis://user:s3cret-pass@h:1/0") == "redis://user:***@h:1/0"


def test_the_sentinels_own_password_is_known_and_redacted() -> None:
    url = "redis+sentinel://:master-pass@s1:26379,s2:26379/mymaster/0?sentinel_password=sent-pass"
    location = database_location(url)
    assert isinstance(location, RedisLocation)
    assert location.passwords == ["master-pass", "sent-pass"]
    assert redact_url(url) == (
        "redis+sentinel://:***@s1:26379,s2:26379/mymaster/0?sentinel_password=***"
    )
