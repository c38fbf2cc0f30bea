"""Transcription models: what each is called, costs, and how it must be asked, in one registry.

The bot knows OpenAI's four speech-to-text models; any other name is taken for a Whisper-style
engine (Groq, speaches, whisper.cpp...): `verbose_json` with segments, no streaming. MODELS_FILE
(TOML) overrides or adds, per model. Everything else asks the registry (`Settings.models`).
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.callbacks import MAX_MODEL_NAME_BYTES
from bot.i18n import N_

RESPONSE_FORMATS = ("json", "text", "verbose_json", "diarized_json", "srt", "vtt")
# The richest answer first: speakers, then timestamps, then the plain text.
_PREFERRED_FORMATS = ("diarized_json", "verbose_json", "json", "text")
_MB = 1024 * 1024
# A /model button carries the name in Telegram's 64 bytes of callback data.
MAX_NAME_BYTES = MAX_MODEL_NAME_BYTES


@dataclass(frozen=True)
class ModelSpec:
    """One model and what it understands; the defaults describe a Whisper-style engine."""

    name: str
    price_per_minute: float = 0.0  # USD per audio minute, for /usage and /stats estimates
    streaming: bool = False  # answers stream=true with transcript.text.delta events
    prompt: bool = True  # takes a vocabulary hint
    language: bool = True  # takes a language hint (ISO 639-1)
    response_formats: tuple[str, ...] = ("json", "text", "verbose_json", "srt", "vtt")
    chunking_strategy: bool = False  # needs chunking_strategy=auto for audio over 30 s
    max_upload_bytes: int = 25 * _MB  # the largest file one request takes
    max_audio_seconds: float = 3600.0  # the longest audio one request takes
    upgrade: str | None = None  # the better model the upgrade button offers
    label: str | None = None  # the operator's own text for the /model button
    note: str = ""  # built-in models: a few words after the name, translated (N_)

    @property
    def response_format(self) -> str:
        """What to ask for: the richest answer the model gives."""
        for name in _PREFERRED_FORMATS:
            if name in self.response_formats:
                return name
        return "json"

    @property
    def speakers(self) -> bool:
        return self.response_format == "diarized_json"

    @property
    def part_limits(self) -> tuple[int, float]:
        """The largest part the bot sends (bytes, seconds): the model's limits less a margin
        for the multipart envelope and for rounding in the engine's own duration count."""
        return (
            max(self.max_upload_bytes - _MB, self.max_upload_bytes // 2),
            self.max_audio_seconds * 14 / 15,
        )


_OPENAI = ModelSpec(
    name="",
    streaming=True,
    response_formats=("json", "text"),
    max_audio_seconds=1500.0,  # users' reports of the API's errors; not documented
)
BUILT_IN: dict[str, ModelSpec] = {
    "gpt-4o-mini-transcribe": dataclasses.replace(
        _OPENAI,
        name="gpt-4o-mini-transcribe",
        price_per_minute=0.003,
        upgrade="gpt-4o-transcribe",
        # Translators: the model buttons read "gpt-4o-mini-transcribe (fast, cheaper)".
        note=N_("fast, cheaper"),
    ),
    "gpt-4o-transcribe": dataclasses.replace(
        _OPENAI, name="gpt-4o-transcribe", price_per_minute=0.006, note=N_("more accurate")
    ),
    "gpt-4o-transcribe-diarize": dataclasses.replace(
        _OPENAI,
        name="gpt-4o-transcribe-diarize",
        price_per_minute=0.006,
        # It streams segment events, but the live text would lack the speakers: asked whole.
        streaming=False,
        prompt=False,  # "Prompt is not supported for diarization models" (400)
        response_formats=("json", "text", "diarized_json"),
        chunking_strategy=True,  # required over 30 s of audio
        note=N_("who said what"),
    ),
    "whisper-1": ModelSpec(
        name="whisper-1", price_per_minute=0.006, note=N_("timestamps, subtitles")
    ),
}


class ModelsFileError(ValueError):
    """MODELS_FILE could not be used; one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Registry:
    """The models /model offers (in order) and what the bot knows of every model."""

    offered: tuple[str, ...]
    specs: Mapping[str, ModelSpec] = field(default_factory=dict)

    def get(self, name: str) -> ModelSpec:
        return self.specs.get(name) or ModelSpec(name=name)

    def knows(self, name: str) -> bool:
        """A transcription model (built in, in MODELS_FILE or offered), not a summary model."""
        return name in self.specs or name in self.offered

    def upgrade_for(self, name: str) -> str | None:
        """The model the upgrade button offers after `name`: only one that /model offers too."""
        better = self.get(name).upgrade
        return better if better in self.offered and better != name else None

    def price_per_minute(self, name: str) -> float:
        return self.get(name).price_per_minute


def build_registry(
    offered: Iterable[str],
    models_file: Path | None = None,
    prices: Mapping[str, float] | None = None,
) -> Registry:
    """The registry: built-ins, then MODELS_FILE, then price settings; raises ModelsFileError."""
    offered = tuple(offered)
    specs = dict(BUILT_IN)
    if models_file is not None:
        specs.update(_read_models_file(models_file, offered, specs))
    for name, price in (prices or {}).items():  # the PRICE_..._PER_MINUTE settings win
        spec = specs.get(name) or ModelSpec(name=name)
        specs[name] = dataclasses.replace(spec, price_per_minute=price)
    for name in offered:
        specs.setdefault(name, ModelSpec(name=name))
    return Registry(offered, specs)


_KEYS: dict[str, str] = {
    "label": "a text",
    "price_per_minute": "a number of dollars, 0 or more",
    "streaming": "true or false",
    "prompt": "true or false",
    "language": "true or false",
    "response_formats": "a list of " + ", ".join(RESPONSE_FORMATS),
    "chunking_strategy": "true or false",
    "max_upload_mb": "a number of megabytes above 0",
    "max_audio_seconds": "a number of seconds above 0",
    "upgrade": 'a model named in TRANSCRIPTION_MODELS, or "" for no upgrade button',
}


def _read_models_file(
    path: Path, offered: tuple[str, ...], known: Mapping[str, ModelSpec]
) -> dict[str, ModelSpec]:
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except OSError as exc:
        raise ModelsFileError([f"cannot read {path}: {exc.strerror or exc}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ModelsFileError([f"{path} is not valid TOML: {exc}"]) from None
    problems = [
        f"unknown section [{key}]: only [models.NAME] tables" for key in document if key != "models"
    ]
    tables = document.get("models", {})
    if not isinstance(tables, dict):
        raise ModelsFileError([*problems, "models: expects tables such as [models.whisper-1]"])
    specs: dict[str, ModelSpec] = {}
    for name, table in tables.items():
        where = f"[models.{name}]"
        if not isinstance(table, dict):
            problems.append(f"{where}: expects a table of settings")
            continue
        changes = _changes(where, table, offered, problems)
        if changes is not None:
            specs[name] = dataclasses.replace(known.get(name) or ModelSpec(name=name), **changes)
        if len(name.encode()) > MAX_NAME_BYTES:
            problems.append(f"{where}: a model name must be {MAX_NAME_BYTES} bytes at most")
    if problems:
        raise ModelsFileError(problems)
    return specs


def _changes(
    where: str, table: dict[str, Any], offered: tuple[str, ...], problems: list[str]
) -> dict[str, Any] | None:
    """The ModelSpec fields one table sets; None (problems noted) when any value is wrong."""
    changes: dict[str, Any] = {}
    before = len(problems)
    for key, value in table.items():
        if key not in _KEYS:
            problems.append(f"{where}: unknown key {key!r} (known: {', '.join(_KEYS)})")
            continue
        checked = _checked(key, value, offered)
        if checked is _WRONG:
            problems.append(f"{where}: {key} expects {_KEYS[key]}")
        else:
            changes.update(checked)
    name = where.removeprefix("[models.").removesuffix("]")
    if changes.get("upgrade") == name:
        problems.append(f"{where}: upgrade names the model itself")
    return changes if len(problems) == before else None


_WRONG: dict[str, Any] = {}


def _checked(key: str, value: Any, offered: tuple[str, ...]) -> dict[str, Any]:
    """{field: value} for one key of a model's table, or _WRONG."""
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if key == "label":
        return {"label": value.strip()} if isinstance(value, str) and value.strip() else _WRONG
    if key in ("streaming", "prompt", "language", "chunking_strategy"):
        return {key: value} if isinstance(value, bool) else _WRONG
    if key == "price_per_minute":
        return {key: float(value)} if is_number and value >= 0 else _WRONG
    if key == "max_upload_mb":
        return {"max_upload_bytes": int(value * _MB)} if is_number and value > 0 else _WRONG
    if key == "max_audio_seconds":
        return {key: float(value)} if is_number and value > 0 else _WRONG
    if key == "response_formats":
        if not isinstance(value, list) or not value:
            return _WRONG
        if any(item not in RESPONSE_FORMATS for item in value):
            return _WRONG
        return {key: tuple(value)}
    # upgrade
    if value == "":
        return {"upgrade": None}
    return {"upgrade": value} if isinstance(value, str) and value in offered else _WRONG
