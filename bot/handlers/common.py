"""What command handlers share: the message, who is asking, whether they are a group admin."""

from __future__ import annotations

import logging

from telegram import Message, Update
from telegram.constants import ChatMemberStatus
from telegram.error import TelegramError

from bot import policy
from bot.services import Context, Services, services_of

log = logging.getLogger(__name__)


def in_group(message: Message) -> bool:
    return policy.is_group(message.chat.type)


def user_id_of(message: Message) -> int | None:
    return message.from_user.id if message.from_user else None


def sender_id(message: Message) -> int:
    """Whom limits, quota and usage count against: the sender. A chat that posts as itself
    (anonymous group admins, channels) shares one user id with every other such chat
    (GroupAnonymousBot, Channel_Bot): it counts as its own chat."""
    if message.sender_chat is not None:
        return message.sender_chat.id
    return message.from_user.id if message.from_user else 0


async def settings_here(svc: Services, message: Message) -> policy.Effective:
    """The settings in effect for the message's sender in its chat."""
    return await policy.effective(
        svc.store, svc.settings, message.chat_id, user_id_of(message), group=in_group(message)
    )


async def is_chat_admin(context: Context, chat_id: int, user_id: int) -> bool:
    svc = services_of(context)
    if policy.is_admin(svc.settings, user_id):
        return True
    try:
        member = await context.bot.get_chat_member(chat_id, user_id)
    except TelegramError as exc:
        log.warning("getChatMember failed for chat=%s: %s", chat_id, exc)
        return False
    return member.status in (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER)


def command_message(update: Update, context: Context) -> tuple[Message, Services] | None:
    """The command's message and the services (its sender passed the allow lists already)."""
    message = update.effective_message
    if message is None:
        return None
    return message, services_of(context)
