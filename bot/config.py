"""Settings: the only place the environment (and `.env`) is read."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AliasChoices,
    AnyHttpUrl,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Re-exported: the settings' database locations live in bot.locations.
from bot.locations import RedisLocation as RedisLocation
from bot.locations import SentinelAddress as SentinelAddress
from bot.locations import SqliteLocation as SqliteLocation
from bot.locations import database_location as database_location
from bot.locations import redact_url as redact_url
from bot.models import MAX_NAME_BYTES, ModelsFileError, Registry, build_registry

# Telegram: "1-256 characters. Only characters A-Z, a-z, 0-9, _ and - are allowed."
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")

IdList = Annotated[frozenset[int], NoDecode]
NameList = Annotated[tuple[str, ...], NoDecode]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
NetworkList = Annotated[frozenset[Network], NoDecode]

# Every secret is scrubbed from the logs by its value; one this short could not be told from
# the words around it (and is no secret), so the settings refuse it.
MIN_SECRET_LENGTH = 6
_TOKEN_SHAPE = re.compile(rf"^\d+:\S{{{MIN_SECRET_LENGTH},}}$")


class Settings(BaseSettings):
    """Every setting of the bot, from the environment or a `.env` file."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
    )

    telegram_bot_token: SecretStr
    telegram_api_url: AnyHttpUrl = AnyHttpUrl("https://api.telegram.org")
    telegram_local_mode: bool = False
    openai_api_key: SecretStr
    openai_base_url: AnyHttpUrl = AnyHttpUrl("https://api.openai.com/v1")
    # The models /model offers, in order; DEFAULT_MODEL is one of them (the first if unset).
    transcription_models: NameList = ("gpt-4o-mini-transcribe", "gpt-4o-transcribe")
    default_model: str = ""
    models_file: Path | None = None  # TOML: per-model overrides and additions (bot/models.py)

    webhook_url: AnyHttpUrl | None = None
    webhook_secret: SecretStr | None = None
    listen_host: str = "0.0.0.0"  # noqa: S104 - a server in a container listens on all interfaces
    listen_port: int = Field(default=8080, ge=0, le=65535)
    # /metrics on a listener of its own, private by default; with METRICS_TOKEN it also answers
    # on LISTEN_PORT, to `Authorization: Bearer <token>` only (and asks for it here too).
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9464, ge=0, le=65535)
    metrics_token: SecretStr | None = None

    database_url: str = "sqlite:///data/bot.sqlite3"
    admin_user_ids: IdList = frozenset()
    auto_transcribe_groups: bool = True
    quiet_groups_by_default: bool = False
    cache_transcripts_hours: float = Field(default=24.0, ge=0)
    # USD per audio minute for /usage estimates; unset: the registry's list price.
    price_gpt_4o_transcribe_per_minute: float | None = Field(default=None, ge=0)
    price_gpt_4o_mini_transcribe_per_minute: float | None = Field(default=None, ge=0)

    allowed_user_ids: IdList = frozenset()
    allowed_chat_ids: IdList = frozenset()
    user_jobs_per_minute: int = Field(default=10, ge=0)
    user_daily_audio_seconds: int = Field(default=0, ge=0)

    # Jobs in flight per process; unset: what half of the memory allows (bot/capacity.py).
    max_concurrent_jobs: int | None = Field(default=None, ge=1, le=10_000)
    job_lease_seconds: float = Field(default=60.0, gt=0)
    job_max_attempts: int = Field(default=3, ge=1)
    job_retention_days: float = Field(default=7.0, ge=0)
    shutdown_grace_seconds: float = Field(default=25.0, ge=0)

    max_audio_seconds: int = Field(default=3 * 3600, ge=1)
    upstream_max_attempts: int = Field(default=5, ge=1)
    upstream_retry_seconds: float = Field(default=120.0, gt=0)
    # The API key's own limits (its tier's), for every replica together; 0 = none.
    upstream_requests_per_minute: int = Field(default=0, ge=0)
    upstream_concurrent_requests: int = Field(default=0, ge=0)
    streaming: bool = True  # show the text as it arrives, with the models that stream

    # The chat model ({base}/chat/completions) for summaries and translations; "" turns both
    # off. SUMMARY_MODEL is its former name, still read when CHAT_MODEL is not set.
    chat_model: str = Field(
        default="gpt-4o-mini", validation_alias=AliasChoices("chat_model", "summary_model")
    )
    summary_min_words: int = Field(default=150, ge=0)
    summary_input_price_per_million: float = Field(default=0.15, ge=0)
    summary_output_price_per_million: float = Field(default=0.60, ge=0)

    # Telegram's guidance: ~30 messages/s overall, 20/min per group, ~1/s in one chat (short
    # bursts allowed), for the whole bot: every replica shares them through Redis. 0 = no limit.
    telegram_rate_per_second: float = Field(default=30.0, ge=0)
    telegram_group_rate_per_minute: float = Field(default=20.0, ge=0)
    telegram_chat_rate_per_second: float = Field(default=1.0, ge=0)
    telegram_chat_burst: int = Field(default=20, ge=1)
    # A private chat's note not transcribed within this many seconds gets a "Transcribing…"
    # placeholder (then live text); sooner, the transcript is the one message. 0 = at once.
    placeholder_after_seconds: float = Field(default=1.5, ge=0)
    # Progress in the placeholder ("Downloading 38 %", "Transcribing part 3 of 8, about 2 min
    # left"): edited at most once in this many seconds in private chats, and in groups.
    progress_edit_seconds: float = Field(default=5.0, gt=0)
    progress_group_edit_seconds: float = Field(default=15.0, gt=0)

    # Recordings from links (bot.links); LINK_MAX_MB=0 turns links off.
    link_max_mb: int = Field(default=500, ge=0)
    link_auto_private: bool = True  # in private chats a link alone is enough; groups: /transcribe
    link_timeout_seconds: float = Field(default=900.0, gt=0)  # the whole download
    link_idle_seconds: float = Field(default=30.0, gt=0)  # the longest wait for the next bytes
    # Only for tests and home networks: links may then reach private addresses.
    link_allow_private_networks: bool = False
    link_allowed_networks: NetworkList = frozenset()  # private networks allowed one by one

    # Admin alerts (bot/alerts.py): at most one message per interval; the API down this long.
    admin_alert_interval_seconds: float = Field(default=300.0, ge=0)
    admin_alert_api_down_seconds: float = Field(default=300.0, ge=0)

    # Errors to Sentry (bot/tracking.py), scrubbed like the logs; unset: nothing is sent.
    sentry_dsn: SecretStr | None = None
    sentry_environment: str = "production"

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    # Libraries' loggers that log at DEBUG (e.g. "telegram.ext"); the others stay at
    # INFO even with LOG_LEVEL=DEBUG: python-telegram-bot's DEBUG lines carry transcripts.
    debug_loggers: NameList = ()

    _models: Registry = PrivateAttr()

    @field_validator("admin_user_ids", "allowed_user_ids", "allowed_chat_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: Any) -> Any:
        if isinstance(value, str):
            parts = [p.strip() for p in value.replace(";", ",").split(",")]
            return frozenset(int(p) for p in parts if p)
        if isinstance(value, int):
            return frozenset({value})
        return value

    @field_validator("transcription_models", "debug_loggers", mode="before")
    @classmethod
    def _split_names(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(p.strip() for p in value.split(",") if p.strip())
        return value

    @field_validator("transcription_models")
    @classmethod
    def _check_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("at least one model name, comma-separated")
        if len(set(value)) != len(value):
            raise ValueError("each model once")
        if any(len(name.encode()) > MAX_NAME_BYTES or " " in name for name in value):
            raise ValueError(f"model names without spaces, {MAX_NAME_BYTES} bytes at most")
        return value

    @field_validator("default_model", mode="before")
    @classmethod
    def _strip_model(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value

    @field_validator("default_model")
    @classmethod
    def _check_default_model(cls, value: str, info: ValidationInfo) -> str:
        offered = info.data.get("transcription_models")
        if value and offered and value not in offered:
            raise ValueError("one of TRANSCRIPTION_MODELS")
        return value

    @field_validator("models_file")
    @classmethod
    def _check_models_file(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        offered = info.data.get("transcription_models")
        if value is not None and offered:
            build_registry(offered, value)  # ModelsFileError: one line per problem
        return value

    @field_validator("link_allowed_networks", mode="before")
    @classmethod
    def _split_networks(cls, value: Any) -> Any:
        if isinstance(value, str):
            parts = [p.strip() for p in value.replace(";", ",").split(",")]
            return frozenset(ipaddress.ip_network(p, strict=False) for p in parts if p)
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("chat_model", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        location = database_location(value)
        passwords = location.passwords if isinstance(location, RedisLocation) else []
        if any(len(password) < MIN_SECRET_LENGTH for password in passwords):
            raise ValueError(
                f"a Redis password of at least {MIN_SECRET_LENGTH} characters (a shorter one "
                "cannot be kept out of the logs)"
            )
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _check_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _SECRET_RE.match(value.get_secret_value()):
            raise ValueError("1-256 characters of A-Z, a-z, 0-9, _ and - (Telegram's rule)")
        _check_length(value)
        return value

    @field_validator("openai_api_key", "metrics_token")
    @classmethod
    def _check_key(cls, value: SecretStr | None) -> SecretStr | None:
        _check_length(value)
        return value

    @field_validator("telegram_bot_token")
    @classmethod
    def _check_token(cls, value: SecretStr) -> SecretStr:
        if not _TOKEN_SHAPE.match(value.get_secret_value()):
            raise ValueError("the token as @BotFather gives it: <bot id>:<secret>")
        return value

    @model_validator(mode="after")
    def _build_models(self) -> Settings:
        offered = self.transcription_models
        self.default_model = self.default_model or offered[0]
        prices = {
            "gpt-4o-transcribe": self.price_gpt_4o_transcribe_per_minute,
            "gpt-4o-mini-transcribe": self.price_gpt_4o_mini_transcribe_per_minute,
        }
        self._models = build_registry(
            offered,
            self.models_file,
            {name: price for name, price in prices.items() if price is not None},
        )
        return self

    @property
    def models(self) -> Registry:
        """Every transcription model's name, price and abilities (bot/models.py)."""
        return self._models

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> Settings:
        if self.webhook_url is not None and self.webhook_secret is None:
            raise ValueError("WEBHOOK_SECRET is required when WEBHOOK_URL is set")
        return self

    @property
    def summary_model(self) -> str:
        """The chat model under its former name (SUMMARY_MODEL)."""
        return self.chat_model

    @property
    def webhook_path(self) -> str:
        """The path the aiohttp server answers webhook deliveries on."""
        if self.webhook_url is None:
            return "/webhook"
        return urlsplit(str(self.webhook_url)).path or "/"

    @property
    def api_root(self) -> str:
        return str(self.telegram_api_url).rstrip("/")

    @property
    def openai_root(self) -> str:
        return str(self.openai_base_url).rstrip("/")


def _check_length(value: SecretStr | None) -> None:
    if value is not None and len(value.get_secret_value()) < MIN_SECRET_LENGTH:
        raise ValueError(
            f"at least {MIN_SECRET_LENGTH} characters (a shorter one cannot be kept out of logs)"
        )


def describe_errors(error: ValidationError) -> list[str]:
    """One line per problem, naming the variable and what it expects; no values echoed."""
    lines: list[str] = []
    for item in error.errors(include_url=False, include_input=False):
        cause = item.get("ctx", {}).get("error")
        if isinstance(cause, ModelsFileError):
            lines.extend(f"MODELS_FILE: {problem}" for problem in cause.problems)
            continue
        loc = [str(part) for part in item["loc"] if not str(part).isdigit()]
        name = loc[0].upper() if loc else "CONFIGURATION"
        message = str(item["msg"])
        if item["type"] == "missing":
            message = "is required but not set"
        elif message.startswith("Value error, "):
            message = "expects " + message.removeprefix("Value error, ")
        elif message.startswith("Assertion failed, "):
            message = message.removeprefix("Assertion failed, ")
        else:
            message = "expects " + message[0].lower() + message[1:]
        if name == "CONFIGURATION" and "WEBHOOK_SECRET is required" in message:
            name, message = "WEBHOOK_SECRET", "is required when WEBHOOK_URL is set"
        lines.append(f"{name}: {message}")
    return lines


def load_settings(**overrides: Any) -> Settings:
    """Read the settings; raises ValidationError (see describe_errors)."""
    return Settings(**overrides)
