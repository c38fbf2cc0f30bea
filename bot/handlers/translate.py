"""Translations: the Translate button under a transcript, and /translate [xx] as a reply."""

from __future__ import annotations

import functools
import logging
from typing import Any

from telegram import Message, Update
from telegram.error import TelegramError
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, ExtBot

from bot import language, policy, texts
from bot.callbacks import Translate, pattern
from bot.errors import TranscribotError
from bot.flood import NoRoom, Urgency
from bot.handlers.buttons import later, pressed, quietly, under, without_button
from bot.handlers.common import settings_here, user_id_of
from bot.handlers.media import media_of
from bot.live import LiveText, interval_for
from bot.replies import escape
from bot.services import Context, Services, services_of
from bot.store import Job
from bot.transcript_cache import cache_key
from bot.translations import language_name, translation_htmls

log = logging.getLogger(__name__)

_FALLBACK_LANGUAGE = "en"


async def button(update: Update, context: Context) -> None:
    """Translate the transcript into the presser's language, posted as a reply to it."""
    found = await pressed(update, context, Translate)
    if found is None:
        return
    query, message, job, svc = found
    user_id = query.from_user.id
    code = language.reader_language(query.from_user.language_code) or _FALLBACK_LANGUAGE
    refusal = await policy.accept_request(svc.store, svc.settings, user_id)
    if refusal is not None:
        later(context, query.answer(texts.refusal(refusal), show_alert=True))
        return
    text = await svc.summaries.whole_text(job, message.text)
    if text is None:
        later(context, query.answer(texts.translation_text_gone(), show_alert=True))
        return
    later(context, query.answer(texts.translating()))
    if code == language.reader_language(job.language_code):
        # The button is the reader's: it goes once it has done its work for them.
        keyboard = without_button(message.reply_markup, Translate)
        later(context, query.edit_message_reply_markup(keyboard))
    await post(svc, message, text, code, user_id, job.chat_type)


async def command(update: Update, context: Context) -> None:
    """/translate [xx], as a reply to a transcript or to a transcribed recording."""
    message = update.effective_message
    if message is None:
        return
    svc = services_of(context)
    if not svc.settings.chat_model:
        await message.reply_text(texts.translations_off())
        return
    args = context.args or []
    code = args[0].lower() if args else language.reader_language(_sender_language(message))
    code = code or _FALLBACK_LANGUAGE
    if language_name(code) is None:
        await message.reply_text(texts.translate_unknown_language(escape(code[:16])))
        return
    target = message.reply_to_message
    text = await _text_of(svc, target, message) if target is not None else None
    if target is None or text is None:
        needs = target is not None and media_of(target) is not None
        await message.reply_text(
            texts.translate_needs_transcript() if needs else texts.translate_usage()
        )
        return
    user_id = user_id_of(message) or 0
    refusal = await policy.accept_request(svc.store, svc.settings, user_id)
    if refusal is not None:
        await message.reply_text(texts.refusal(refusal))
        return
    await post(svc, target, text, code, user_id, message.chat.type)


async def post(
    svc: Services, under_message: Message, text: str, code: str, user_id: int, chat_type: str
) -> None:
    """The translation as replies to `under_message`: shown part by part while it is made."""
    translations = svc.translations
    cached = await translations.cached(text, code)
    if cached is not None:
        await _send_all(under_message, translation_htmls(cached, code))
        return
    if not await translations.claim(text, code):
        await quietly(under_message.reply_text(texts.translation_under_way()))
        return
    placeholder = await under_message.reply_text(
        texts.translating(), reply_parameters=under(under_message)
    )
    show = functools.partial(_edit, placeholder, live=True)
    live = LiveText(show, interval_for(chat_type))
    try:
        translated = await translations.make(
            text, code, user_id, under_message.chat_id, on_part=live.update
        )
    except TranscribotError as exc:
        await live.finish()
        log.warning("translation into %s failed: %s: %s", code, type(exc).__name__, exc)
        svc.alerts.chat_model_failed("translation", exc, None)
        await _edit(placeholder, texts.translation_failed(exc))
        return
    await live.finish()
    htmls = translation_htmls(translated, code)
    await _edit(placeholder, htmls[0])
    await _send_all(under_message, htmls[1:])


async def _text_of(svc: Services, target: Message, request: Message) -> str | None:
    """The transcript a /translate reply points at: the bot's message, or a recording's."""
    if target.from_user is not None and target.from_user.id == request.get_bot().id:
        return _shown_text(target.text)
    media = media_of(target)
    if media is None:
        return None
    now = await settings_here(svc, request)
    probe = Job(
        chat_id=target.chat_id,
        message_id=target.message_id,
        user_id=user_id_of(request) or 0,
        chat_type=str(target.chat.type),
        kind=media.kind,
        file_id=media.file_id,
        file_unique_id=media.file_unique_id,
        model=now.model_name,
        language=now.language.value if isinstance(now.language.value, str) else None,
        prompt=now.prompt.value if isinstance(now.prompt.value, str) else None,
    )
    return await svc.store.get_transcript(cache_key(probe))


def _shown_text(shown: str | None) -> str | None:
    """A transcript message's text without the sender's name above it."""
    if not shown:
        return None
    first, newline, rest = shown.partition("\n")
    return rest if newline and first.startswith("👤 ") else shown


def _sender_language(message: Message) -> str | None:
    return message.from_user.language_code if message.from_user else None


async def _edit(placeholder: Message, html: str, *, live: bool = False) -> None:
    """live: the text so far, sent only when the chat's windows have room to spare for the
    final text (WHEN_FREE: never queued, skipped otherwise)."""
    try:
        bot = placeholder.get_bot()
        if live and isinstance(bot, ExtBot):
            await bot.edit_message_text(
                html,
                chat_id=placeholder.chat_id,
                message_id=placeholder.message_id,
                rate_limit_args=Urgency.WHEN_FREE,
            )
        else:
            await placeholder.edit_text(html)
    except NoRoom:
        pass  # the next text so far, or the final one, comes later
    except TelegramError as exc:
        log.info("a translation's message could not be edited: %s", exc)


async def _send_all(under_message: Message, htmls: list[str]) -> None:
    for html in htmls:
        await quietly(under_message.reply_text(html, reply_parameters=under(under_message)))


def handlers() -> list[BaseHandler[Any, Any, Any]]:
    # Translations take seconds: they run beside the webhook's answer.
    return [
        CommandHandler("translate", command, block=False),
        CallbackQueryHandler(button, pattern=pattern(Translate), block=False),
    ]
