"""Long polling: getUpdates, the offset moved on only once an update is durably accepted."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from telegram import Bot, Update
from telegram.error import (
    Conflict,
    EndPointNotFound,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)

from bot import seconds

log = logging.getLogger(__name__)

POLL_TIMEOUT = 25  # seconds Telegram holds a getUpdates open when there is nothing new
_FIRST_RETRY_SECONDS = 1.0
_MAX_RETRY_SECONDS = 30.0
_PAUSE_AFTER_REFUSAL_SECONDS = 1.0  # an update not accepted (store down) comes again


class PollingStopped(Exception):
    """getUpdates cannot work with these settings; the message says why, in one line."""


class Poller:
    """Fetches updates and hands each to `accept`; retries what may pass, stops on the rest."""

    def __init__(
        self,
        bot: Bot,
        accept: Callable[[Update], Awaitable[bool]],
        allowed_updates: Sequence[str],
    ) -> None:
        self._bot = bot
        self._accept = accept
        self._allowed_updates = list(allowed_updates)
        self._offset: int | None = None
        self._delay = _FIRST_RETRY_SECONDS
        self.failing = False  # the last getUpdates failed: no updates come in now

    async def run(self) -> None:
        """Poll until cancelled; PollingStopped when retrying cannot help."""
        while True:
            updates = await self._fetch()
            for update in updates:
                if not await self._accept(update):
                    await asyncio.sleep(_PAUSE_AFTER_REFUSAL_SECONDS)
                    break  # the same update comes again with the next getUpdates
                self._offset = update.update_id + 1

    async def _fetch(self) -> tuple[Update, ...]:
        try:
            updates = await self._bot.get_updates(
                offset=self._offset, timeout=POLL_TIMEOUT, allowed_updates=self._allowed_updates
            )
        except InvalidToken as exc:
            raise PollingStopped(_invalid_token(exc)) from exc
        except EndPointNotFound as exc:
            raise PollingStopped(
                f"TELEGRAM_API_URL: getUpdates is not found there ({exc})"
            ) from exc
        except RetryAfter as exc:
            await asyncio.sleep(seconds(exc.retry_after))
            return ()
        except Conflict as exc:
            log.error(
                "Telegram says 409 Conflict (%s): %s. Only one instance may poll; several "
                "replicas need webhook mode (WEBHOOK_URL, the same WEBHOOK_SECRET on each).",
                exc,
                "a webhook is set for this bot (an instance in webhook mode set it)"
                if "webhook" in str(exc).lower()
                else "another process is polling with this token",
            )
            await self._back_off()
            return ()
        except TelegramError as exc:
            # NetworkError (timeouts, 5xx), or an answer that is not the Bot API's JSON (a
            # proxy's or captive portal's HTML page): the next try may pass.
            kind = "failed" if isinstance(exc, NetworkError) else "bad answer"
            log.warning("getUpdates: %s: %s; retrying in %.0f s", kind, exc, self._delay)
            await self._back_off()
            return ()
        self.failing = False
        self._delay = _FIRST_RETRY_SECONDS
        return updates

    async def _back_off(self) -> None:
        self.failing = True
        await asyncio.sleep(self._delay)
        self._delay = min(self._delay * 2, _MAX_RETRY_SECONDS)


def _invalid_token(exc: InvalidToken) -> str:
    # PTB raises InvalidToken for 401 (a token Telegram does not know) and for 404 (a malformed
    # token, or a TELEGRAM_API_URL that is not a Bot API server).
    if "not found" in str(exc).lower():
        return "TELEGRAM_API_URL or TELEGRAM_BOT_TOKEN: the Bot API answers 404 Not Found"
    return "TELEGRAM_BOT_TOKEN: Telegram does not accept this token any more (401 Unauthorized)"
