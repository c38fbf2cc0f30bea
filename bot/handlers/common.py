"""What every command handler needs: who is asking, may they, are they a group admin."""

from __future__ import annotations

import logging

from telegram import Message, Update
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot import policy, texts
from bot.services import Services, services_of

log = logging.getLogger(__name__)


def in_group(message: Message) -> bool:
    return message.chat.type in (ChatType.GROUP, ChatType.SUPERGROUP)


def user_id_of(message: Message) -> int | None:
    return message.from_user.id if message.from_user else None


async def is_chat_admin(context: ContextTypes.DEFAULT_TYPE, chat_id: int, user_id: int) -> bool:
    svc = services_of(context)
    if policy.is_admin(svc.settings, user_id):
        return True
    try:
        member = await context.bot.get_chat_member(chat_id, user_id)
    except TelegramError as exc:
        log.warning("getChatMember failed for chat=%s: %s", chat_id, exc)
        return False
    return member.status in (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER)


async def allowed_message(
    update: Update, context: ContextTypes.DEFAULT_TYPE
) -> tuple[Message, Services] | None:
    """The command's message, once its sender is allowed (others get the refusal)."""
    message = update.effective_message
    if message is None:
        return None
    svc = services_of(context)
    if not policy.is_allowed(svc.settings, user_id_of(message), message.chat_id):
        await message.reply_text(texts.not_allowed())
        return None
    return message, svc
