"""/start, /help, /model, /autotranscribe, /transcribe, /stats."""

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
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import TelegramError
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, ContextTypes

from bot import policy, texts
from bot.config import MODELS
from bot.handlers.media import accept, media_of
from bot.replies import escape
from bot.services import Services, services_of

log = logging.getLogger(__name__)


def command_menu() -> list[BotCommand]:
    """The menu Telegram shows for the bot's commands, in the current language."""
    return [BotCommand(name, description) for name, description in texts.command_menu()]


_MODEL_PREFIX = "model:"


def _in_group(message: Message) -> bool:
    return message.chat.type in (ChatType.GROUP, ChatType.SUPERGROUP)


async def _is_chat_admin(context: ContextTypes.DEFAULT_TYPE, chat_id: int, user_id: int) -> bool:
    svc = services_of(context)
    if policy.is_admin(svc.settings, user_id):
        return True
    try:
        member = await context.bot.get_chat_member(chat_id, user_id)
    except TelegramError as exc:
        log.warning("getChatMember failed for chat=%s: %s", chat_id, exc)
        return False
    return member.status in (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER)


async def _current_model(svc: Services, message: Message) -> str:
    user_id = message.from_user.id if message.from_user else None
    return await policy.model_for(svc.store, svc.settings, message.chat_id, user_id)


async def _allowed_message(
    update: Update, context: ContextTypes.DEFAULT_TYPE
) -> tuple[Message, Services] | None:
    """The command's message, once its sender is allowed (others get the refusal)."""
    message = update.effective_message
    if message is None:
        return None
    svc = services_of(context)
    user_id = message.from_user.id if message.from_user else None
    if not policy.is_allowed(svc.settings, user_id, message.chat_id):
        await message.reply_text(texts.not_allowed())
        return None
    return message, svc


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    found = await _allowed_message(update, context)
    if found is None:
        return
    message, svc = found
    await message.reply_text(texts.start(await _current_model(svc, message)))


async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    found = await _allowed_message(update, context)
    if found is None:
        return
    message, svc = found
    model = await _current_model(svc, message)
    await message.reply_text(texts.help_text(model, _in_group(message)))


def model_keyboard(current: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    ("✅ " if model == current else "") + texts.model_label(model),
                    callback_data=_MODEL_PREFIX + model,
                )
            ]
            for model in MODELS
        ]
    )


async def model_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    found = await _allowed_message(update, context)
    if found is None:
        return
    message, svc = found
    current = await _current_model(svc, message)
    await message.reply_text(
        texts.model_prompt(current, _in_group(message)), reply_markup=model_keyboard(current)
    )


async def model_chosen(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    if query is None or query.data is None or not query.data.startswith(_MODEL_PREFIX):
        return
    model = query.data.removeprefix(_MODEL_PREFIX)
    message = query.message
    svc = services_of(context)
    if model not in MODELS or not isinstance(message, Message):
        await query.answer()
        return
    user_id = query.from_user.id
    group = _in_group(message)
    if group:
        if not await _is_chat_admin(context, message.chat_id, user_id):
            await query.answer(texts.group_admins_only(), show_alert=True)
            return
        await svc.store.set_chat_model(message.chat_id, model)
    else:
        await svc.store.set_user_model(user_id, model)
    await query.answer()
    await query.edit_message_text(texts.model_set(model, group), reply_markup=model_keyboard(model))


async def autotranscribe(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    found = await _allowed_message(update, context)
    if found is None:
        return
    message, svc = found
    if not _in_group(message):
        await message.reply_text(texts.groups_only())
        return
    args = [a.lower() for a in (context.args or [])]
    if not args or args[0] not in ("on", "off"):
        enabled = await policy.auto_transcribe_on(svc.store, svc.settings, message.chat_id)
        await message.reply_text(texts.auto_transcribe_state(enabled) + "\n" + texts.auto_usage())
        return
    user_id = message.from_user.id if message.from_user else 0
    if not await _is_chat_admin(context, message.chat_id, user_id):
        await message.reply_text(texts.group_admins_only())
        return
    enabled = args[0] == "on"
    await svc.store.set_chat_auto_transcribe(message.chat_id, enabled)
    await message.reply_text(texts.auto_transcribe_state(enabled))


async def transcribe(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Reply /transcribe to a voice note: queue that one (durably, like automatic ones)."""
    message = update.effective_message
    if message is None:
        return
    svc = services_of(context)
    target = message.reply_to_message
    media = media_of(target)
    if target is None or media is None:
        if policy.is_allowed(
            svc.settings, message.from_user.id if message.from_user else None, message.chat_id
        ):
            context.application.create_task(message.reply_text(texts.transcribe_usage()))
        return
    await accept(svc, context, target, message, media, explicit=True)


async def stats(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    svc = services_of(context)
    if message is None:
        return
    if not policy.is_admin(svc.settings, message.from_user.id if message.from_user else None):
        await message.reply_text(texts.admins_only())
        return
    found = await svc.store.stats()
    failures = [f"#{job_id}: {escape(reason)[:200]}" for job_id, reason in found.recent_failures]
    await message.reply_text(texts.stats(found.by_status, found.minutes_by_model, failures))


def handlers() -> list[BaseHandler[Any, Any, Any]]:
    # Commands answer after the webhook has; /transcribe queues a job, so it blocks like media.
    return [
        CommandHandler("start", start, block=False),
        CommandHandler("help", help_command, block=False),
        CommandHandler("model", model_command, block=False),
        CommandHandler("autotranscribe", autotranscribe, block=False),
        CommandHandler("transcribe", transcribe, block=True),
        CommandHandler("stats", stats, block=False),
        CallbackQueryHandler(model_chosen, pattern=f"^{_MODEL_PREFIX}", block=False),
    ]
