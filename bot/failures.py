"""Why a job failed, as the store keeps it: a category and a reference, never the raw error.

Error messages carry what must not reach a chat: file paths (in local mode the bot token is a
directory name), URLs, the API's own words. The store (and so /stats) gets `audio 3f9a1c`;
the job's log line, scrubbed like every line, has the details under the same reference.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Literal, get_args

from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter

from bot.errors import LinkError, TranscribotError, UpstreamError

Category = Literal["audio", "link", "upstream", "telegram", "forbidden", "crashed", "unexpected"]
CATEGORIES: tuple[Category, ...] = get_args(Category)
_BY_NAME: dict[str, Category] = {category: category for category in CATEGORIES}


@dataclass(frozen=True)
class Failure:
    """One failed (or retried) run: what kind, a reference to find its log line, the details."""

    category: Category
    ref: str
    detail: str

    @property
    def stored(self) -> str:
        """What the store keeps and /stats shows: `upstream 3f9a1c`."""
        return f"{self.category} {self.ref}"

    @property
    def logged(self) -> str:
        """The reason in the job's log line: the stored form, then the details."""
        return f"{self.stored}: {self.detail}"


def failure(category: Category, detail: str) -> Failure:
    return Failure(category, secrets.token_hex(3), detail)


def failure_of(error: BaseException) -> Failure:
    """The category an exception falls in, with its type and message as the details."""
    return failure(_category(error), f"{type(error).__name__}: {error}")


def _category(error: BaseException) -> Category:
    if isinstance(error, UpstreamError):
        return "upstream"
    if isinstance(error, LinkError):
        return "link"
    if isinstance(error, TranscribotError):  # AudioError, and whatever the input was wrong in
        return "audio"
    if isinstance(error, Forbidden):
        return "forbidden"
    if isinstance(error, BadRequest | RetryAfter | NetworkError):
        return "telegram"
    return "unexpected"


def parse_stored(reason: str) -> tuple[Category | None, str]:
    """(category, ref) of a stored reason; (None, "") for anything else (older rows: raw text,
    never shown)."""
    name, _, ref = reason.partition(" ")
    category = _BY_NAME.get(name)
    if category is None or len(ref) != 6 or not ref.isalnum():
        return None, ""
    return category, ref
