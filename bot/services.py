"""The objects built once at start and handed to handlers and workers."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from telegram.ext import CallbackContext, ContextTypes, ExtBot

from bot.alerts import AdminAlerts
from bot.callbacks import Callbacks
from bot.config import Settings
from bot.metrics import Metrics
from bot.store import Store
from bot.summaries import Summaries
from bot.summarizer import Summarizer
from bot.transcriber import Transcriber
from bot.translations import Translations

if TYPE_CHECKING:
    from bot.jobs import Dispatcher


@dataclass
class Services:
    settings: Settings
    store: Store
    transcriber: Transcriber
    summarizer: Summarizer
    dispatcher: Dispatcher
    metrics: Metrics
    alerts: AdminAlerts

    @functools.cached_property
    def callbacks(self) -> Callbacks:
        return Callbacks.of(self.settings)

    @functools.cached_property
    def summaries(self) -> Summaries:
        return Summaries(self.store, self.summarizer, self.settings)

    @functools.cached_property
    def translations(self) -> Translations:
        return Translations(self.store, self.summarizer, self.settings)


class BotData:
    """PTB's bot_data for this bot: the Services, attached once at start."""

    services: Services


# What every handler gets: PTB's context, with our bot_data (ContextTypes(bot_data=BotData)).
Context = CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], BotData]
CONTEXT_TYPES = ContextTypes(bot_data=BotData)


def services_of(context: Context) -> Services:
    return context.bot_data.services


def attach(bot_data: BotData, services: Services) -> None:
    bot_data.services = services
