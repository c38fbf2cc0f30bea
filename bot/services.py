"""The objects built once at start and handed to handlers and workers."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.callbacks import Callbacks
from bot.config import Settings
from bot.metrics import Metrics
from bot.store import Store
from bot.summaries import Summaries
from bot.summarizer import Summarizer
from bot.transcriber import Transcriber

if TYPE_CHECKING:
    from telegram.ext import CallbackContext

    from bot.jobs import Dispatcher


@dataclass
class Services:
    settings: Settings
    store: Store
    transcriber: Transcriber
    summarizer: Summarizer
    dispatcher: Dispatcher
    metrics: Metrics

    @functools.cached_property
    def callbacks(self) -> Callbacks:
        return Callbacks.of(self.settings)

    @functools.cached_property
    def summaries(self) -> Summaries:
        return Summaries(self.store, self.summarizer, self.settings)


_KEY = "services"


def services_of(context: CallbackContext[Any, Any, Any, Any]) -> Services:
    found = context.bot_data[_KEY]
    assert isinstance(found, Services)
    return found


def attach(bot_data: dict[Any, Any], services: Services) -> None:
    bot_data[_KEY] = services
