"""What the bot tells Telegram at start: its command menu and, in webhook mode, its webhook."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence

from telegram import Bot
from telegram.error import TelegramError

from bot import i18n
from bot.config import Settings
from bot.handlers import commands
from bot.store import Store

log = logging.getLogger(__name__)

# Replicas starting together: one of them registers the webhook and the command menu.
_REGISTER_ONCE_SECONDS = 60.0


async def set_commands(bot: Bot) -> bool:
    """The English menu for everyone, and one for the users of each other language."""
    registered = True
    for language in i18n.LANGUAGES:
        with i18n.use_language(language):
            menu = commands.command_menu()
        code = None if language == i18n.SOURCE_LANGUAGE else language
        try:
            await bot.set_my_commands(menu, language_code=code)
        except TelegramError as exc:  # a menu is a nicety: never a reason not to start
            log.warning("could not register the command menu (%s): %s", language, exc)
            registered = False
    return registered


async def register_webhook(
    bot: Bot, store: Store, settings: Settings, allowed_updates: Sequence[str]
) -> None:
    """setMyCommands and setWebhook, by one replica when several start together.

    Both calls are idempotent, but a whole fleet making them at once earns 429s: the
    first replica to claim these settings (for a minute) makes them; a failure gives the
    claim back, so the next replica or restart tries again.
    """
    url = str(settings.webhook_url)
    assert settings.webhook_secret is not None  # the settings require one with a webhook
    secret = settings.webhook_secret.get_secret_value()
    key = "telegram-registration:" + _digest(url, secret, list(allowed_updates), _english_menu())
    if not await store.claim_once(key, _REGISTER_ONCE_SECONDS):
        log.info(
            "webhook mode: another replica registered the webhook just now; serving %s",
            settings.webhook_path,
        )
        return
    menu_set = await set_commands(bot)
    webhook_set = await _set_webhook(bot, settings, secret, allowed_updates)
    if not (menu_set and webhook_set):
        await store.release_claim(key)


async def _set_webhook(
    bot: Bot, settings: Settings, secret: str, allowed_updates: Sequence[str]
) -> bool:
    try:
        await bot.set_webhook(
            url=str(settings.webhook_url),
            secret_token=secret,
            allowed_updates=list(allowed_updates),
            max_connections=100,
        )
    except TelegramError as exc:
        # Serve anyway: the webhook may already be set (e.g. by another replica), and a
        # bot that exits here would be restarted into the same error.
        log.error(
            "setWebhook failed (%s): check WEBHOOK_URL (https, port 443/80/88/8443). "
            "Serving %s anyway; Telegram delivers only once the webhook is set.",
            exc,
            settings.webhook_path,
        )
        return False
    log.info("webhook mode: Telegram delivers to %s", settings.webhook_path)
    return True


def _english_menu() -> list[tuple[str, str]]:
    with i18n.use_language(i18n.SOURCE_LANGUAGE):
        return [(c.command, c.description) for c in commands.command_menu()]


def _digest(*values: object) -> str:
    """A short fingerprint of settings (the secret in it cannot be read back)."""
    text = json.dumps(values, default=str, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
