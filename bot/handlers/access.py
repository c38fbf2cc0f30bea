"""The allow lists, checked once for every update before any other handler sees it."""

from __future__ import annotations

import logging
from collections.abc import Coroutine
from typing import Any

from telegram import Message, MessageEntity, ReplyParameters, Update
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop, TypeHandler

from bot import policy, texts
from bot.handlers.throttle import first_in_a_minute
from bot.services import Context, services_of

log = logging.getLogger(__name__)


async def only_allowed(update: Update, context: Context) -> None:
    """Stop every update from someone not on ALLOWED_USER_IDS / ALLOWED_CHAT_IDS.

    Media, commands, /transcribe and every button pass here: later handlers assume access.
    A button press is answered, a private message told; in groups only a command is answered
    (a stranger's voice note there is none of the bot's business).
    """
    settings = services_of(context).settings
    user = update.effective_user
    chat = update.effective_chat
    user_id = user.id if user else None
    chat_id = chat.id if chat else user_id
    if chat_id is None or policy.is_allowed(settings, user_id, chat_id):
        return
    query = update.callback_query
    message = update.effective_message
    told = "not told"
    if query is not None:  # an answer to a button press is no message: not counted
        _later(context, query.answer(texts.not_allowed(), show_alert=True))
        told = "answered"
    elif message is not None and (
        message.chat.type == ChatType.PRIVATE or _is_command_for(message, context.bot.username)
    ):
        told = await _tell_once(context, message)
    log.info("refused chat=%s user=%s: not on the allow lists (%s)", chat_id, user_id, told)
    raise ApplicationHandlerStop


async def _tell_once(context: Context, message: Message) -> str:
    """The not-allowed text, once a minute for each person in each chat; then silence."""
    if not await first_in_a_minute(services_of(context).store, "refusal", message):
        return "told within the last minute: silent"
    reply_to = ReplyParameters(message.message_id, allow_sending_without_reply=True)
    _later(context, message.reply_text(texts.not_allowed(), reply_parameters=reply_to))
    return "told"


def handler() -> TypeHandler[Update, Any, None]:
    return TypeHandler(Update, only_allowed)


def _is_command_for(message: Message, username: str) -> bool:
    """A /command at the start of the text, for this bot (or for no bot in particular)."""
    entities = message.entities
    text = message.text or ""
    if not entities or entities[0].type != MessageEntity.BOT_COMMAND or entities[0].offset != 0:
        return False
    _, at, addressee = text[: entities[0].length].partition("@")
    return not at or addressee.lower() == username.lower()


def _later(context: Context, answer: Coroutine[Any, Any, object]) -> None:
    """The refusal goes out beside the webhook's answer, not before it."""
    context.application.create_task(_quietly(answer), name="refusal")


async def _quietly(answer: Coroutine[Any, Any, object]) -> None:
    try:
        await answer
    except TelegramError as exc:
        log.info("a refusal could not be sent: %s", exc)
