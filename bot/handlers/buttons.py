"""The buttons under a transcript: upgrade to the better model, summarise, subtitles."""

from __future__ import annotations

import logging
from typing import Any

from telegram import (
    CallbackQuery,
    InlineKeyboardMarkup,
    InputFile,
    Message,
    ReplyParameters,
    Update,
)
from telegram.error import TelegramError
from telegram.ext import BaseHandler, CallbackQueryHandler

from bot import policy, segments, texts
from bot.callbacks import (
    Callbacks,
    JobButton,
    StaleButton,
    Subtitles,
    Summary,
    Upgrade,
    pattern,
    prefix,
)
from bot.errors import TranscribotError
from bot.handlers.common import is_chat_admin
from bot.services import Context, Services, services_of
from bot.store import Job, JobStatus, NewJob
from bot.store.codec import NEW_JOB_FIELDS
from bot.transcript_cache import cache_key, cached_transcript

log = logging.getLogger(__name__)


def without_button(
    markup: InlineKeyboardMarkup | None, button: type[JobButton]
) -> InlineKeyboardMarkup:
    """The keyboard less the buttons of this kind (maybe none left)."""
    rows = [
        [b for b in row if not str(b.callback_data or "").startswith(prefix(button))]
        for row in (markup.inline_keyboard if markup else ())
    ]
    return InlineKeyboardMarkup([row for row in rows if row])


async def pressed(
    update: Update, context: Context, kind: type[JobButton]
) -> tuple[CallbackQuery, Message, Job, Services] | None:
    """The press, the transcript message and its job; None (press answered) when stale.

    Stale: the job is gone, or the button was not made for it (forged, or an id reused).
    """
    query = update.callback_query
    if query is None:
        return None
    svc = services_of(context)
    message = query.message
    job = None
    try:
        button = Callbacks.unpack(query.data)
    except StaleButton:
        button = None
    if isinstance(button, kind):
        job = await svc.store.get_job(button.job_id)
        if job is not None and not svc.callbacks.belongs(button, job):
            log.warning("a %s button that was not made for job=%d refused", kind.kind, job.id)
            job = None
    if job is None or not isinstance(message, Message) or job.chat_id != message.chat_id:
        later(context, query.answer(texts.button_expired(), show_alert=True))
        return None
    return query, message, job, svc


async def stale(update: Update, context: Context) -> None:
    """A button no handler knows: an older version's, or made up. Answered, nothing done."""
    query = update.callback_query
    if query is not None:
        log.info("a button of no known kind pressed: %r", (query.data or "")[:16])
        await quietly(query.answer(texts.button_expired(), show_alert=True))


def later(context: Context, coroutine: Any) -> None:
    """Telegram calls that need not hold up the webhook's answer."""
    context.application.create_task(quietly(coroutine), name="button-reply")


async def quietly(coroutine: Any) -> None:
    try:
        await coroutine
    except TelegramError as exc:
        log.info("a button's answer failed: %s", exc)


async def _may_upgrade(context: Context, job: Job, user_id: int) -> bool:
    if user_id == job.user_id:
        return True
    if policy.is_group(job.chat_type):
        return await is_chat_admin(context, job.chat_id, user_id)
    return policy.is_admin(services_of(context).settings, user_id)


async def upgrade(update: Update, context: Context) -> None:
    """Re-run a mini transcript with the full model; the new text replaces the old in place."""
    found = await pressed(update, context, Upgrade)
    if found is None:
        return
    query, message, job, svc = found
    user_id = query.from_user.id
    if not await _may_upgrade(context, job, user_id):
        later(context, query.answer(texts.upgrade_not_yours(), show_alert=True))
        return
    better = svc.settings.models.upgrade_for(job.model)
    if job.status != JobStatus.DONE or better is None:
        later(context, query.answer(texts.button_expired(), show_alert=True))
        return
    values = {name: getattr(job, name) for name in NEW_JOB_FIELDS}
    values.update(
        model=better,
        user_id=user_id,
        explicit=True,
        replaces=job.reply_ids or (message.message_id,),
    )
    subject = policy.limit_subject(user_id, job.chat_id)
    limits = policy.limits_for(svc.settings, user_id, subject, job.duration, job.file_size)
    accepted = await svc.store.accept_job(update.update_id, NewJob(**values), limits)
    refusal = policy.refusal(accepted, svc.settings)
    if refusal is not None:
        later(context, query.answer(texts.refusal(refusal), show_alert=True))
        return
    if accepted.outcome != "queued":
        # Done with that model already, or under way: nothing to start.
        later(context, query.answer(texts.upgrade_under_way()))
    else:
        svc.dispatcher.wake()
        log.info("job=%d: upgrade to %s asked by user=%s", job.id, better, user_id)
        later(context, query.answer(texts.upgrading(better)))
    keyboard = without_button(message.reply_markup, Upgrade)
    later(context, query.edit_message_reply_markup(reply_markup=keyboard))


async def summary(update: Update, context: Context) -> None:
    """A short summary of a long transcript, posted once as a reply to it."""
    found = await pressed(update, context, Summary)
    if found is None:
        return
    query, message, job, svc = found
    text = await svc.summaries.whole_text(job, message.text)
    if text is None:
        later(context, query.answer(texts.summary_text_gone(), show_alert=True))
        return
    if not await svc.summaries.claim(job):
        await quietly(query.answer(texts.summary_made_already()))
        return
    keyboard = message.reply_markup
    await quietly(query.answer(texts.summarizing()))
    await quietly(query.edit_message_reply_markup(without_button(keyboard, Summary)))
    try:
        htmls = await svc.summaries.make(job, text, query.from_user.id)
    except BaseException as exc:
        # Whatever went wrong (the API, the store, a shutdown), the button comes back.
        await quietly(query.edit_message_reply_markup(keyboard))
        if not isinstance(exc, Exception):
            raise
        if isinstance(exc, TranscribotError):
            log.warning("job=%d: summary failed: %s: %s", job.id, type(exc).__name__, exc)
            told = texts.summary_failed(exc)
            svc.alerts.chat_model_failed("summary", exc, job.id)
        else:
            log.exception("job=%d: summary failed unexpectedly", job.id)
            told = texts.unexpected()
        await quietly(message.reply_text(told, reply_parameters=under(message)))
        return
    for html in htmls:
        await quietly(message.reply_text(html, reply_parameters=under(message)))


def under(message: Message) -> ReplyParameters:
    return ReplyParameters(message.message_id, allow_sending_without_reply=True)


async def subtitles(update: Update, context: Context) -> None:
    """The transcript's segments as an .srt file, sent as a reply to the transcript."""
    found = await pressed(update, context, Subtitles)
    if found is None:
        return
    query, message, job, svc = found
    kept = await cached_transcript(svc.store, svc.settings, cache_key(job))
    if kept is None or not kept.segments:
        later(context, query.answer(texts.subtitles_gone(), show_alert=True))
        return
    later(context, query.answer())
    srt = segments.to_srt(kept.segments, texts.speaker)
    await quietly(
        message.reply_document(
            InputFile(srt.encode("utf-8"), filename="subtitles.srt"),
            caption=texts.subtitles_caption(),
            reply_parameters=under(message),
        )
    )
    log.info("job=%d: subtitles sent (%d cues)", job.id, len(kept.segments))


def handlers() -> list[BaseHandler[Any, Any, Any]]:
    # The upgrade queues a job: it blocks like media, so the job is stored before the answer.
    # A summary takes seconds: it runs beside the webhook's answer. The last one answers any
    # button the handlers before it did not take: register these after all the others.
    return [
        CallbackQueryHandler(upgrade, pattern=pattern(Upgrade), block=True),
        CallbackQueryHandler(summary, pattern=pattern(Summary), block=False),
        CallbackQueryHandler(subtitles, pattern=pattern(Subtitles), block=False),
        CallbackQueryHandler(stale, block=False),
    ]
