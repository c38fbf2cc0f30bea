"""The data behind inline buttons: one typed class per button, in Telegram's 64 bytes.

Wire format: `VERSION:kind:fields`. Buttons about a job carry a tag, an HMAC of the button's
kind and the job (its id, chat and message) under a key derived from the bot token: a press
cannot name another job (a guessed id, or an id reused after pruning) and still pass.
Anything else (an older version's button, a forged one) fails to unpack and is answered
politely by the catch-all handler.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:  # annotations only: bot.models (which the settings import) imports this
    from bot.config import Settings
    from bot.store import Job

VERSION = "1"
# Telegram: "callback_data: Data to be sent in a callback query to the bot, 1-64 bytes".
MAX_BYTES = 64
_TAG_BYTES = 12  # 96 bits: not worth guessing a press at a time


class StaleButton(ValueError):
    """Not a button of this version: older, unknown, malformed, or forged."""


@dataclass(frozen=True)
class Upgrade:
    """Transcribe a finished job again with the better model."""

    kind: ClassVar[str] = "up"
    job_id: int
    tag: str


@dataclass(frozen=True)
class Summary:
    """Summarise a finished job's transcript."""

    kind: ClassVar[str] = "sum"
    job_id: int
    tag: str


@dataclass(frozen=True)
class Subtitles:
    """Send a finished job's segments as an .srt file."""

    kind: ClassVar[str] = "srt"
    job_id: int
    tag: str


@dataclass(frozen=True)
class Translate:
    """Translate a finished job's transcript into the presser's language."""

    kind: ClassVar[str] = "tr"
    job_id: int
    tag: str


@dataclass(frozen=True)
class ChooseModel:
    """Set the chat's (or the person's) transcription model."""

    kind: ClassVar[str] = "model"
    model: str


JobButton = Upgrade | Summary | Subtitles | Translate
Button = Upgrade | Summary | Subtitles | Translate | ChooseModel
_JOB_BUTTONS: dict[str, type[JobButton]] = {
    "up": Upgrade,
    "sum": Summary,
    "srt": Subtitles,
    "tr": Translate,
}
_MODEL_NAME = re.compile(r"\S{1,64}")


def prefix(button: type[Button]) -> str:
    """What the data of every button of this kind starts with."""
    return f"{VERSION}:{button.kind}:"


def pattern(button: type[Button]) -> str:
    """The regular expression a CallbackQueryHandler uses to pick this kind of button."""
    return "^" + re.escape(prefix(button))


class Callbacks:
    """Packs and unpacks buttons; the key makes job buttons unforgeable."""

    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(b"transcribot callback data\0" + secret.encode()).digest()

    @classmethod
    def of(cls, settings: Settings) -> Callbacks:
        """The key derives from the bot token: every replica makes and checks the same tags."""
        return cls(settings.telegram_bot_token.get_secret_value())

    def for_job(self, button: type[JobButton], job: Job) -> str:
        """The callback data of `button` under `job`'s transcript."""
        return _checked(f"{prefix(button)}{job.id}:{self._tag(button.kind, job)}")

    @staticmethod
    def choose_model(model: str) -> str:
        if not _MODEL_NAME.fullmatch(model):
            raise ValueError(f"a model name that does not fit a button: {model!r}")
        return _checked(prefix(ChooseModel) + model)

    @staticmethod
    def unpack(data: str | None) -> Button:
        """The button the data describes; StaleButton when it is none of this version's."""
        version, _, rest = (data or "").partition(":")
        kind, _, fields = rest.partition(":")
        if version != VERSION:
            raise StaleButton(f"version {version[:8]!r}")
        if kind == ChooseModel.kind and _MODEL_NAME.fullmatch(fields):
            return ChooseModel(fields)
        job_button = _JOB_BUTTONS.get(kind)
        number, _, tag = fields.partition(":")
        if job_button is None or not (number.isascii() and number.isdigit()) or not tag:
            raise StaleButton(f"kind {kind[:8]!r}")
        return job_button(int(number), tag)

    def belongs(self, button: JobButton, job: Job) -> bool:
        """True when the button was made for this very job (not a forged or reused id)."""
        return job.id == button.job_id and hmac.compare_digest(
            button.tag, self._tag(button.kind, job)
        )

    def _tag(self, kind: str, job: Job) -> str:
        message = f"{kind}:{job.id}:{job.chat_id}:{job.message_id}".encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()[:_TAG_BYTES]
        return base64.urlsafe_b64encode(digest).decode()


def _checked(data: str) -> str:
    if len(data.encode()) > MAX_BYTES:
        raise ValueError(f"callback data over {MAX_BYTES} bytes: {data!r}")
    return data


# The longest model name a /model button can carry.
MAX_MODEL_NAME_BYTES = MAX_BYTES - len(prefix(ChooseModel))
