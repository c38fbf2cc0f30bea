"""Links to recordings in: private chats by themselves, groups with /transcribe (see commands)."""

from __future__ import annotations

import logging
from typing import Any

from telegram import Message, Update
from telegram.ext import MessageHandler, filters

from bot import links, texts
from bot.errors import LinkError
from bot.handlers.media import Media, accept, reply_later
from bot.handlers.throttle import first_in_a_minute
from bot.link_download import AddressPolicy
from bot.services import Context, Services, services_of

log = logging.getLogger(__name__)


def link_media(url: str, chat_id: int) -> Media:
    """A link as a job's file: the URL where Telegram's file id would be."""
    key = links.link_key(url, chat_id)
    return Media(links.KIND, url, key, None, None, links.file_name_of(url), None)


async def accept_link(
    svc: Services,
    context: Context,
    target: Message,
    request: Message,
    url: str,
    *,
    update_id: int,
    explicit: bool,
) -> None:
    """Queue the recording behind `url` (in `target`) for the sender of `request`.

    What can be refused without fetching (not http(s), a private address written as a
    number) is refused here; the rest is checked when the job downloads it.
    """
    settings = svc.settings
    url = links.direct_url(url)
    try:
        AddressPolicy(
            settings.link_allow_private_networks, settings.link_allowed_networks
        ).check_url(url)
    except LinkError as exc:
        told = await first_in_a_minute(svc.store, "refusal", request)  # like any refusal
        said = "told" if told else "silent"
        log.info("chat=%s: link refused: %s (%s)", target.chat_id, exc, said)
        if told:
            reply_later(context, request, texts.for_error(exc))
        return
    media = link_media(url, target.chat_id)
    await accept(svc, context, target, request, media, update_id=update_id, explicit=explicit)


async def on_link(update: Update, context: Context) -> None:
    message = update.effective_message
    url = links.link_in(message)
    if message is None or url is None:
        return
    svc = services_of(context)
    if svc.settings.link_max_mb <= 0 or not svc.settings.link_auto_private:
        return
    await accept_link(
        svc, context, message, message, url, update_id=update.update_id, explicit=False
    )


class _HasLink(filters.MessageFilter):
    def filter(self, message: Message) -> bool:
        return links.link_in(message) is not None


def handler() -> MessageHandler[Any, Any]:
    # Private chats only: in groups a link is everyday talk, transcribed when asked for.
    # block=True: the job is in the store before the webhook answers, as for files.
    return MessageHandler(
        filters.ChatType.PRIVATE
        & _HasLink(name="has a link")
        & ~filters.COMMAND
        & ~filters.UpdateType.EDITED,
        on_link,
        block=True,
    )
