"""At most one refusal (and one /help) a minute for each person in each chat, fleet-wide.

Each message the bot sends counts against Telegram's budgets (30/s overall, 20/min in a
group): a user who spams must not spend them for everyone. Past the first answer in a
minute the bot says nothing, and logs each message it did not answer.
"""

from __future__ import annotations

from telegram import Message

from bot.handlers.common import sender_id
from bot.store import Store

TELL_EVERY_SECONDS = 60.0


def asker(message: Message) -> str:
    """Whom an answer would be for: a sender in a chat (anonymous admins and channels post
    under a user id shared by every group: they count as their chat)."""
    return f"{message.chat_id}:{sender_id(message)}"


async def first_in_a_minute(store: Store, kind: str, message: Message) -> bool:
    """True for the first `kind` of answer to this asker in a minute; replicas share the
    store's claim, so they agree."""
    return await store.claim_once(f"told:{kind}:{asker(message)}", TELL_EVERY_SECONDS)
