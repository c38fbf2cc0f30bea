"""Admins are told: problems an operator must act on, sent privately to each ADMIN_USER_IDS.

Grouped: the first problem goes out at once, then at most one message per interval, a digest
of everything since. Each admin reads it in the language of their last update, and can turn it
off with /alerts off. What is told: jobs that failed after their retries for a reason the
operator can fix (the API key, the API down, ffmpeg missing, an unexpected error), jobs given
up after crashing, the transcription API down for a while, and Telegram errors other than 429.
No transcript and no secret is ever in an alert.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import html
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from telegram import Bot
from telegram.error import TelegramError

from bot import i18n, texts
from bot.config import Settings
from bot.errors import FfmpegMissing, TranscribotError, UpstreamAuthError, UpstreamUnavailable
from bot.failures import Failure
from bot.store import TRANSIENT_STORE_ERRORS, Store

log = logging.getLogger(__name__)

Kind = Literal["job_failed", "job_given_up", "api_down", "api_back", "telegram_error"]

# Set while an alert is being sent: its own failures are logged, never alerted about (a loop).
_sending_alert: contextvars.ContextVar[bool] = contextvars.ContextVar("alerting", default=False)
# Not the operator's to fix (lower case): a repeated edit that changed nothing; a person who
# blocked the bot or deleted their account; a button pressed so long ago that Telegram no longer
# takes the answer; a group that removed the bot or took away its right to post.
_HARMLESS = (
    "message is not modified",
    "bot was blocked by the user",
    "user is deactivated",
    "query is too old",
    "bot was kicked from",
    "bot is not a member of",
    "not enough rights to send",
    "chat_write_forbidden",
    "have no rights to send",
    "topic_closed",
)
# getFile refusing a person's file (over the 20 MB download limit, or expired): they are told.
_USERS_FILE = ("file is too big", "wrong file_id", "invalid file_id")
_REASON_CHARS = 300
_SENT_KEY = "admin-alerts:sent"  # claimed by the replica that sends, for one interval
# While another replica's message holds the budget: how often to look whether it is free.
_MIN_POLL_SECONDS, _MAX_POLL_SECONDS = 0.05, 10.0


@dataclass(frozen=True)
class Event:
    kind: Kind
    at: float
    job_id: int | None = None
    # For the operator, in English: a failure's stored form and error type ("upstream 3f9a1c
    # (UpstreamAuthError)", the details are in the log line under that reference), or Telegram's
    # description of a refused call. Never an error's own text: it can hold a path or a URL.
    detail: str = ""
    count: int = 0  # attempts (job_given_up), or seconds down (api_down, api_back)


def tells_admin(error: TranscribotError) -> bool:
    """Whether a job's failure is the operator's to fix (not the user's audio)."""
    return isinstance(error, UpstreamAuthError | UpstreamUnavailable | FfmpegMissing)


class AdminAlerts:
    """Collects problems and sends them, grouped, to every admin who has not turned them off."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self._admins = sorted(settings.admin_user_ids)
        self._interval = settings.admin_alert_interval_seconds
        self._down_after = settings.admin_alert_api_down_seconds
        self._store = store
        self._bot: Bot | None = None
        self._pending: list[Event] = []
        self._last_sent: float | None = None
        self._since: float | None = None  # the first event of the pending digest
        self._flush: asyncio.Task[None] | None = None
        self._api_failing_since: float | None = None
        self._api_down_told = False
        self._languages: dict[int, str | None] = {}  # admin -> the language code last stored

    def language_changed(self, admin: int, code: str | None) -> bool:
        """Whether this admin's language differs from the one this process last stored."""
        return admin not in self._languages or self._languages[admin] != code

    def language_stored(self, admin: int, code: str | None) -> None:
        self._languages[admin] = code

    def start(self, bot: Bot) -> None:
        self._bot = bot

    async def stop(self) -> None:
        """Send what is pending now (a shutdown should not swallow the last problems)."""
        if self._flush is not None and not self._flush.done():
            self._flush.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flush
        if self._pending:
            await self._send()

    # what happened

    def job_error(self, job_id: int, error: TranscribotError, failed: Failure) -> None:
        """A job failed with an expected error: told when it is the operator's to fix."""
        if isinstance(error, UpstreamUnavailable):
            self.upstream_failed(error.failing_seconds)
        if tells_admin(error):
            self.job_failed(job_id, failed)

    def chat_model_failed(self, what: str, error: TranscribotError, job_id: int | None) -> None:
        """A summary or a translation failed (its own log line has the details)."""
        if tells_admin(error):
            self._add(Event("job_failed", time.time(), job_id, f"{what}: {type(error).__name__}"))

    def job_failed(self, job_id: int, failed: Failure, attempts: int = 0) -> None:
        detail = _told(failed)
        if attempts:
            detail = f"{detail}; after {attempts} attempts"
        self._add(Event("job_failed", time.time(), job_id, detail))

    def job_given_up(self, job_id: int, attempts: int) -> None:
        self._add(Event("job_given_up", time.time(), job_id, count=attempts))

    def upstream_failed(self, failing_seconds: float) -> None:
        """A job's requests to the API kept failing for `failing_seconds` (its retries)."""
        now = time.time()
        if self._api_failing_since is None:
            self._api_failing_since = now - failing_seconds
        down = now - self._api_failing_since
        if down >= self._down_after and not self._api_down_told:
            self._api_down_told = True
            self._add(Event("api_down", now, count=round(down)))

    def upstream_answered(self) -> None:
        if self._api_down_told and self._api_failing_since is not None:
            down = round(time.time() - self._api_failing_since)
            self._add(Event("api_back", time.time(), count=down))
        self._api_failing_since, self._api_down_told = None, False

    def telegram_error(self, method: str, error: str, description: str) -> None:
        """A Bot API call failed (the metrics' listener); 429s are waited out, not told."""
        if error == "429" or _sending_alert.get():
            return
        said = description.lower()
        if any(harmless in said for harmless in _HARMLESS):
            return
        if method == "getFile" and any(refusal in said for refusal in _USERS_FILE):
            return
        detail = f"{method}: {error} {description}".strip()
        self._add(Event("telegram_error", time.time(), detail=detail[:_REASON_CHARS]))

    # grouping and sending

    def _add(self, event: Event) -> None:
        if not self._admins:
            return
        log.warning("admin alert: %s job=%s %s", event.kind, event.job_id, event.detail)
        self._pending.append(event)
        self._since = self._since or event.at
        if self._flush is None or self._flush.done():
            wait = 0.0
            if self._last_sent is not None:
                wait = max(0.0, self._last_sent + self._interval - time.monotonic())
            # A context of its own: not the job's (its log tag, its count of Bot API calls).
            self._flush = asyncio.get_running_loop().create_task(
                self._send_after(wait), context=contextvars.Context()
            )

    async def _send_after(self, wait: float) -> None:
        """Send what is pending after `wait`; what came in meanwhile, an interval later."""
        while True:
            await asyncio.sleep(wait)
            if not await self._fleets_turn():
                wait = min(max(self._interval / 10, _MIN_POLL_SECONDS), _MAX_POLL_SECONDS)
                continue
            await self._send()
            if not self._pending:
                return
            wait = self._interval

    async def _fleets_turn(self) -> bool:
        """Whether no replica sharing the store sent alerts within the interval (then none
        may for another interval): the budget is the bot's, not each replica's."""
        try:
            return await self._store.claim_once(_SENT_KEY, max(self._interval, 0.001))
        except TRANSIENT_STORE_ERRORS as exc:
            # The store being down is worth telling: this replica keeps to its own budget.
            log.warning("admin alert: cannot share the alert budget: %s", exc)
            return True

    async def _send(self) -> None:
        events, since = self._pending, self._since or time.time()
        self._pending, self._since = [], None
        self._last_sent = time.monotonic()
        if self._bot is None or not events:
            return
        for admin in self._admins:
            await self._tell(admin, events, since)

    async def _tell(self, admin: int, events: list[Event], since: float) -> None:
        try:
            prefs = await self._store.get_prefs("user", admin)
        except TRANSIENT_STORE_ERRORS as exc:
            log.warning("admin alert: cannot read admin %d's settings: %s", admin, exc)
            prefs = None
        if prefs is not None and prefs.alerts is False:
            return
        with i18n.use_language(prefs.ui_language if prefs else None), _alerting():
            text = render(events, since)
            try:
                assert self._bot is not None
                await self._bot.send_message(admin, text)
            except TelegramError as exc:
                log.warning(
                    "admin alert not delivered to %d (%s): the admin must start a private chat "
                    "with the bot first",
                    admin,
                    exc,
                )


@contextlib.contextmanager
def _alerting() -> Iterator[None]:
    token = _sending_alert.set(True)
    try:
        yield
    finally:
        _sending_alert.reset(token)


def render(events: list[Event], since: float) -> str:
    """One message: a single problem as it is, several as counts and the latest few."""
    lines = [_line(e) for e in events]
    if len(events) == 1:
        body = lines[0]
    else:
        minutes = max(1, round((time.time() - since) / 60))
        counts = [texts.alert_count(kind, n) for kind, n in _counts(events)]
        latest = lines[-5:]
        body = "\n".join(
            [
                texts.alert_digest_heading(len(events), minutes),
                *(f"• {c}" for c in counts),
                "",
                texts.alert_latest(),
                *(f"• {line}" for line in latest),
            ]
        )
    return f"{texts.alert_heading()}\n{body}\n\n{texts.alert_footer()}"


def _told(failed: Failure) -> str:
    """What an alert says of a failure: its category, log reference and error type."""
    error_type = failed.detail.partition(":")[0]
    return f"{failed.stored} ({error_type})" if error_type.isidentifier() else failed.stored


def _counts(events: list[Event]) -> list[tuple[Kind, int]]:
    counted: dict[Kind, int] = {}
    for event in events:
        counted[event.kind] = counted.get(event.kind, 0) + 1
    return list(counted.items())


def _line(event: Event) -> str:
    detail = html.escape(event.detail)
    if event.kind == "job_failed":
        if event.job_id is None:
            return texts.alert_request_failed(detail)
        return texts.alert_job_failed(event.job_id, detail)
    if event.kind == "job_given_up":
        return texts.alert_job_given_up(event.job_id or 0, event.count)
    if event.kind == "api_down":
        return texts.alert_api_down(texts.span(event.count))
    if event.kind == "api_back":
        return texts.alert_api_back(texts.span(event.count))
    return texts.alert_telegram_error(detail)
