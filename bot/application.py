"""python-telegram-bot's Application as this bot uses it: its HTTP client, rate limiter and
defaults, and the handlers in their groups (the order every update goes through)."""

from __future__ import annotations

import logging
from typing import Any

from telegram import LinkPreviewOptions, Update
from telegram.constants import ParseMode
from telegram.ext import Application, ApplicationHandlerStop, Defaults, TypeHandler

from bot import i18n
from bot.config import Settings
from bot.flood import build_limiter
from bot.handlers import (
    access,
    alerts,
    buttons,
    commands,
    links,
    media,
    preferences,
    translate,
    usage,
)
from bot.metrics import Metrics
from bot.services import CONTEXT_TYPES, Context, services_of
from bot.telegram_http import AiohttpRequest

log = logging.getLogger(__name__)

ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]


def build_application(
    settings: Settings, metrics: Metrics
) -> Application[Any, Any, Any, Any, Any, Any]:
    """PTB's Application with our HTTP client, rate limits and handlers; nothing started.

    Updates never pass through PTB's update queue (the web route and the poller hand each to
    Acceptor), so PTB's concurrent_updates setting would change nothing here: blocking
    handlers run while the delivery waits, the others (block=False) as tasks beside it.
    """
    root = settings.api_root
    builder = (
        Application.builder()
        .context_types(CONTEXT_TYPES)
        .token(settings.telegram_bot_token.get_secret_value())
        .base_url(f"{root}/bot")
        .base_file_url(f"{root}/file/bot")
        .local_mode(settings.telegram_local_mode)
        .updater(None)
        .request(_api_request(metrics))
        .get_updates_request(AiohttpRequest(metrics, connection_pool_size=2, read_timeout=10.0))
        .defaults(
            Defaults(
                parse_mode=ParseMode.HTML,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
        )
    )
    builder = builder.rate_limiter(build_limiter(settings))  # type: ignore[arg-type]
    application = builder.build()
    _add_handlers(application)
    return application


def _api_request(metrics: Metrics) -> AiohttpRequest:
    """Every Bot API call but getUpdates: many at once, uploads given two minutes."""
    return AiohttpRequest(
        metrics,
        connection_pool_size=256,
        pool_timeout=30.0,
        connect_timeout=10.0,
        read_timeout=30.0,
        write_timeout=30.0,
        media_write_timeout=120.0,
    )


def _add_handlers(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    # Before any feature: the sender's language, once per update, then who may use the bot.
    application.add_handler(alerts.language_handler(), group=-4)
    application.add_handler(TypeHandler(Update, _use_senders_language), group=-3)
    application.add_handler(TypeHandler(Update, _drop_duplicates), group=-2)
    application.add_handler(access.handler(), group=-1)
    application.add_handler(media.handler())
    application.add_handler(links.handler())
    for handler in [
        *commands.handlers(),
        *preferences.handlers(),
        *usage.handlers(),
        *translate.handlers(),
        *alerts.handlers(),
        *buttons.handlers(),  # last: it answers the buttons no other handler knows
    ]:
        application.add_handler(handler)


async def _use_senders_language(update: Update, context: Context) -> None:
    """Answer in the sender's language: later handlers, and tasks they start, copy this context."""
    user = update.effective_user
    i18n.set_language(user.language_code if user else None)


async def _drop_duplicates(update: Update, context: Context) -> None:
    """Telegram redelivers an update after a slow or failed answer: do it once."""
    if not await services_of(context).store.claim_update(update.update_id):
        log.info("update %d seen before: ignored", update.update_id)
        raise ApplicationHandlerStop
