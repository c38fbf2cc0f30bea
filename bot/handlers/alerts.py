"""/alerts on|off for the bot's admins, and each admin's language remembered for the alerts."""

from __future__ import annotations

import logging
from typing import Any

from telegram import Update
from telegram.ext import BaseHandler, CommandHandler, TypeHandler

from bot import policy, texts
from bot.handlers.common import user_id_of
from bot.services import Context, services_of
from bot.store import TRANSIENT_STORE_ERRORS

log = logging.getLogger(__name__)


async def alerts(update: Update, context: Context) -> None:
    message = update.effective_message
    svc = services_of(context)
    if message is None:
        return
    user_id = user_id_of(message)
    if user_id is None or not policy.is_admin(svc.settings, user_id):
        await message.reply_text(texts.admins_only())
        return
    choice = (context.args or [""])[0].lower()
    if choice in ("on", "off"):
        # None, not True: "on" is the default, and a cleared preference says so.
        await svc.store.set_pref("user", user_id, "alerts", None if choice == "on" else False)
        await message.reply_text(texts.alerts_now(choice == "on"))
    elif not choice:
        prefs = await svc.store.get_prefs("user", user_id)
        await message.reply_text(texts.alerts_now(prefs.alerts is not False))
    else:
        await message.reply_text(texts.alerts_usage())


async def remember_admin_language(update: Update, context: Context) -> None:
    """An admin's alerts come in the language of their last update: keep it when it changes."""
    user = update.effective_user
    svc = services_of(context)
    if user is None or not policy.is_admin(svc.settings, user.id):
        return
    code = user.language_code
    if not svc.alerts.language_changed(user.id, code):
        return
    try:
        await svc.store.set_pref("user", user.id, "ui_language", code)
    except TRANSIENT_STORE_ERRORS as exc:  # a nicety: never a reason to refuse the update
        log.warning("could not remember admin %d's language: %s", user.id, exc)
        return
    svc.alerts.language_stored(user.id, code)


def handlers() -> list[BaseHandler[Any, Any, Any]]:
    return [CommandHandler("alerts", alerts, block=False)]


def language_handler() -> BaseHandler[Any, Any, Any]:
    """Before every other handler (group -4), for every update."""
    return TypeHandler(Update, remember_admin_language)
