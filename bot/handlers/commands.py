"""/start, /help, /model (and its buttons), /autotranscribe, /transcribe."""

from __future__ import annotations

import logging
from typing import Any

from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler

from bot import links, policy, texts
from bot.callbacks import Callbacks, ChooseModel, StaleButton, pattern
from bot.handlers.common import (
    command_message,
    in_group,
    is_chat_admin,
    settings_here,
    user_id_of,
)
from bot.handlers.links import accept_link
from bot.handlers.media import accept, media_of
from bot.handlers.throttle import first_in_a_minute
from bot.models import Registry
from bot.services import Context, Services, services_of

log = logging.getLogger(__name__)


def command_menu() -> list[BotCommand]:
    """The menu Telegram shows for the bot's commands, in the current language."""
    return [BotCommand(name, description) for name, description in texts.command_menu()]


async def _current_model(svc: Services, message: Message) -> str:
    return (await settings_here(svc, message)).model_name


async def start(update: Update, context: Context) -> None:
    found = await _once_a_minute(update, context, "start")
    if found is None:
        return
    message, svc = found
    await message.reply_text(texts.start(await _current_model(svc, message)))


async def help_command(update: Update, context: Context) -> None:
    found = await _once_a_minute(update, context, "help")
    if found is None:
        return
    message, svc = found
    model = await _current_model(svc, message)
    user_id = user_id_of(message)
    admin = user_id is not None and policy.is_admin(svc.settings, user_id)
    await message.reply_text(texts.help_text(model, in_group(message), for_admin=admin))


async def _once_a_minute(
    update: Update, context: Context, command: str
) -> tuple[Message, Services] | None:
    """/start and /help, answered once a minute for each person in each chat: they cost a
    message from Telegram's budgets each, and are what a spammer sends."""
    found = command_message(update, context)
    if found is None:
        return None
    message, svc = found
    if not await first_in_a_minute(svc.store, command, message):
        log.info("/%s again within a minute in chat=%s: silent", command, message.chat_id)
        return None
    return found


def model_keyboard(models: Registry, current: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    ("✅ " if model == current else "") + texts.model_label(models.get(model)),
                    callback_data=Callbacks.choose_model(model),
                )
            ]
            for model in models.offered
        ]
    )


async def model_command(update: Update, context: Context) -> None:
    found = command_message(update, context)
    if found is None:
        return
    message, svc = found
    current = await _current_model(svc, message)
    await message.reply_text(
        texts.model_prompt(current, in_group(message)),
        reply_markup=model_keyboard(svc.settings.models, current),
    )


async def model_chosen(update: Update, context: Context) -> None:
    query = update.callback_query
    if query is None:
        return
    try:
        button = Callbacks.unpack(query.data)
    except StaleButton:
        button = None
    message = query.message
    svc = services_of(context)
    if (
        not isinstance(button, ChooseModel)
        or button.model not in svc.settings.models.offered
        or not isinstance(message, Message)
    ):
        await query.answer(texts.button_expired(), show_alert=True)
        return
    model = button.model
    user_id = query.from_user.id
    group = in_group(message)
    if group:
        if not await is_chat_admin(context, message.chat_id, user_id):
            await query.answer(texts.group_admins_only(), show_alert=True)
            return
        await svc.store.set_pref("chat", message.chat_id, "model", model)
    else:
        await svc.store.set_pref("user", user_id, "model", model)
    await query.answer()
    await query.edit_message_text(
        texts.model_set(model, group), reply_markup=model_keyboard(svc.settings.models, model)
    )


async def autotranscribe(update: Update, context: Context) -> None:
    found = command_message(update, context)
    if found is None:
        return
    message, svc = found
    if not in_group(message):
        await message.reply_text(texts.groups_only())
        return
    args = [a.lower() for a in (context.args or [])]
    if not args or args[0] not in ("on", "off"):
        now = await settings_here(svc, message)
        state = texts.auto_transcribe_state(bool(now.auto_transcribe.value))
        await message.reply_text(state + "\n" + texts.auto_usage())
        return
    if not await is_chat_admin(context, message.chat_id, user_id_of(message) or 0):
        await message.reply_text(texts.group_admins_only())
        return
    enabled = args[0] == "on"
    await svc.store.set_pref("chat", message.chat_id, "auto_transcribe", enabled)
    await message.reply_text(texts.auto_transcribe_state(enabled))


async def transcribe(update: Update, context: Context) -> None:
    """Reply /transcribe to a voice note: queue that one (durably, like automatic ones)."""
    message = update.effective_message
    if message is None:
        return
    svc = services_of(context)
    target = message.reply_to_message
    media = media_of(target)
    if media is None and svc.settings.link_max_mb > 0:
        # A link in the message replied to, or after the command itself.
        with_link = target if target is not None and links.link_in(target) else message
        url = links.link_in(with_link)
        if url is not None:
            await accept_link(
                svc, context, with_link, message, url, update_id=update.update_id, explicit=True
            )
            return
    if target is None or media is None:
        context.application.create_task(message.reply_text(texts.transcribe_usage()))
        return
    await accept(svc, context, target, message, media, update_id=update.update_id, explicit=True)


def handlers() -> list[BaseHandler[Any, Any, Any]]:
    # Commands answer after the webhook has; /transcribe queues a job, so it blocks like media.
    return [
        CommandHandler("start", start, block=False),
        CommandHandler("help", help_command, block=False),
        CommandHandler("model", model_command, block=False),
        CommandHandler("autotranscribe", autotranscribe, block=False),
        CommandHandler("transcribe", transcribe, block=True),
        CallbackQueryHandler(model_chosen, pattern=pattern(ChooseModel), block=False),
    ]
