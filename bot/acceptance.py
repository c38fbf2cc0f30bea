"""Accepting an update: its blocking handlers ran and what they stored is durable."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from telegram import Update
from telegram.ext import Application, ApplicationHandlerStop

from bot.logs import request_context
from bot.services import Context
from bot.store import TRANSIENT_STORE_ERRORS, Store, UpdateBeingHandled
from bot.web import BadUpdate

log = logging.getLogger(__name__)


class Acceptor:
    """Runs updates through the Application and says which are accepted.

    PTB hands a handler's exception to the error handlers rather than to the caller of
    process_update: this class registers the error handler that notes a store failure of an
    update it is accepting, so that accept() can answer False (the webhook 503, polling
    keeps its offset) and Telegram delivers the update again.
    """

    def __init__(self, application: Application[Any, Any, Any, Any, Any, Any], store: Store):
        self._application = application
        self._store = store
        # Update id -> the store failures noted while its blocking handlers run, per accept().
        self._failures: dict[int, list[list[BaseException]]] = {}
        application.add_error_handler(self._on_error)

    async def accept_json(self, data: dict[str, object]) -> bool:
        """accept() for a webhook body; BadUpdate when it is JSON but not an Update."""
        try:
            update = Update.de_json(data, self._application.bot)
        except Exception as exc:
            raise BadUpdate(f"{type(exc).__name__}: {exc}") from exc
        return await self.accept(update)

    async def accept(self, update: Update) -> bool:
        """Handle the update's blocking part (queue a job); True once it is durably accepted."""
        with request_context(f"upd-{update.update_id}"):
            failures = await self._process(update)
            if failures:
                with contextlib.suppress(*TRANSIENT_STORE_ERRORS):
                    await self._store.forget_update(update.update_id)
                return False
            try:
                await self._store.confirm_update(update.update_id)
            except TRANSIENT_STORE_ERRORS:
                log.exception("update %d not accepted: its seen mark failed", update.update_id)
                return False
            return True

    async def _process(self, update: Update) -> list[BaseException]:
        """The store failures of the update's blocking handlers (none: all went well)."""
        failures: list[BaseException] = []
        waiting = self._failures.setdefault(update.update_id, [])
        waiting.append(failures)
        try:
            await self._application.process_update(update)
        finally:
            waiting.remove(failures)
            if not waiting:
                del self._failures[update.update_id]
        return failures

    async def _on_error(self, update: object, context: Context) -> None:
        error = context.error
        waiting = self._failures.get(update.update_id) if isinstance(update, Update) else None
        # Only a failure while accept() still waits can change its answer; a later one (a
        # non-blocking handler's) is logged like any other.
        if waiting and isinstance(update, Update) and isinstance(error, TRANSIENT_STORE_ERRORS):
            for failures in waiting:
                failures.append(error)
            if isinstance(error, UpdateBeingHandled):
                log.info("update %d is being handled by another replica: 503", update.update_id)
            else:
                log.error("update %d not accepted: the store failed: %s", update.update_id, error)
            raise ApplicationHandlerStop  # the other handlers need not try: the store is down
        log.error("error while handling an update", exc_info=error)
