"""A job's messages: the placeholder, progress, the transcript (with its buttons), errors."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputFile, ReplyParameters
from telegram.error import BadRequest, TelegramError
from telegram.ext import ExtBot

from bot import language, segments, texts
from bot.callbacks import Callbacks, Subtitles, Summary, Translate, Upgrade
from bot.config import Settings
from bot.flood import Urgency
from bot.leases import ensure_still_ours
from bot.replies import ATTACH_AFTER_MESSAGES, MESSAGE_LIMIT, escape, split_for_telegram, utf16_len
from bot.segments import Transcribed
from bot.store import Job, LeaseLost, Store, StoreUnavailable
from bot.store.outlast import outlasting_outages

log = logging.getLogger(__name__)

# Kinds of media a subtitles file makes sense for.
SUBTITLED_KINDS = frozenset({"video", "video_note"})


def shows_progress(job: Job) -> bool:
    """Quiet chats see only the transcript; an upgrade keeps the old one until the new is in."""
    return not job.quiet and not job.replaces


def heading(job: Job) -> str:
    """What heads a transcript in HTML: who said it, in groups that want names."""
    return f"👤 <b>{escape(job.sender_name)}</b>\n" if job.sender_name else ""


def without_heading(job: Job, shown: str) -> str:
    """A transcript message's text as Telegram gives it back (entities parsed), less heading()."""
    return shown.removeprefix(f"👤 {job.sender_name}\n") if job.sender_name else shown


def whole_text_kept(settings: Settings, messages: int) -> bool:
    """Whether the whole transcript can be found later: in the cache, or in its one message."""
    return settings.cache_transcripts_hours > 0 or messages == 1


def transcript_keyboard(
    job: Job,
    result: Transcribed,
    settings: Settings,
    messages: int = 1,
    spoken: str | None = None,
) -> InlineKeyboardMarkup | None:
    """The buttons under a transcript: the registry's better model, a summary for long ones,
    subtitles for videos with timed segments, a translation when it is `spoken` in another
    language than its reader's.

    A summary or a translation needs the whole text later: from the cache, or from the one
    message holding it; subtitles need the segments, from the cache.
    """
    callbacks = Callbacks.of(settings)
    row = []
    text = result.text
    better = settings.models.upgrade_for(job.model)
    if better is not None:
        data = callbacks.for_job(Upgrade, job)
        row.append(InlineKeyboardButton(texts.upgrade_button(better), callback_data=data))
    if (
        settings.summary_model
        and whole_text_kept(settings, messages)
        and len(text.split()) > settings.summary_min_words
    ):
        data = callbacks.for_job(Summary, job)
        row.append(InlineKeyboardButton(texts.summary_button(), callback_data=data))
    if settings.cache_transcripts_hours > 0 and result.segments and job.kind in SUBTITLED_KINDS:
        data = callbacks.for_job(Subtitles, job)
        row.append(InlineKeyboardButton(texts.subtitles_button(), callback_data=data))
    reader = language.reader_language(job.language_code)
    if (
        settings.chat_model
        and whole_text_kept(settings, messages)
        and language.needs_translation(spoken, reader)
    ):
        data = callbacks.for_job(Translate, job)
        row.append(InlineKeyboardButton(texts.translate_button(), callback_data=data))
    return InlineKeyboardMarkup([[button] for button in row]) if row else None


class Replies:
    """Sends and edits a job's messages; a retried job reuses what it sent before."""

    def __init__(self, bot: ExtBot[Any], store: Store, settings: Settings) -> None:
        self._bot = bot
        self._store = store
        self._settings = settings

    def _reply_to(self, job: Job) -> ReplyParameters:
        return ReplyParameters(job.message_id, allow_sending_without_reply=True)

    async def placeholder(self, job: Job) -> int | None:
        """The message the job's progress and transcript go in, sent once; None when quiet."""
        if job.placeholder_id is not None:
            return job.placeholder_id
        if job.replaces:
            return job.replaces[0]
        if job.quiet:
            return None
        await ensure_still_ours()  # a worker that stalled past its lease posts nothing
        # WHEN_FREE: a placeholder is a courtesy; when Telegram's windows have no room to spare
        # it is not sent (NoRoom) and the transcript comes as the one message, later.
        message = await self._bot.send_message(
            job.chat_id,
            texts.working(),
            reply_parameters=self._reply_to(job),
            rate_limit_args=Urgency.WHEN_FREE,
        )
        try:
            await self._store.set_placeholder(job, message.message_id)
        except Exception as exc:
            # Not recorded (the job was taken over meanwhile, or the store is down): no one
            # could find this message again, and it would say "Transcribing…" for ever.
            with contextlib.suppress(TelegramError):
                await self._bot.delete_message(job.chat_id, message.message_id)
            if isinstance(exc, StoreUnavailable):
                log.warning("job=%d: no placeholder: the store is unavailable", job.id)
                return None  # the transcript comes as the one message
            raise
        return message.message_id

    async def live(self, job: Job, placeholder: int, html: str) -> None:
        """The text so far, or a progress note, in the placeholder; an edit Telegram refuses
        is skipped."""
        # Unlike edit(), never a new message: a deleted placeholder would get one per edit.
        # WHEN_FREE: sent only when the chat's windows have room to spare for the final text,
        # never queued (NoRoom, a TelegramError, skips it).
        try:
            # A worker that stalled past its lease edits nothing: the one that took the job
            # over may have put the transcript in this very message.
            await ensure_still_ours()
        except LeaseLost:
            return  # the job's own next step says so (LeaseLost), not a progress note
        with contextlib.suppress(TelegramError):
            await self._bot.edit_message_text(
                html,
                chat_id=job.chat_id,
                message_id=placeholder,
                rate_limit_args=Urgency.WHEN_FREE,
            )

    async def edit(
        self,
        job: Job,
        message_id: int,
        html: str,
        markup: InlineKeyboardMarkup | None = None,
    ) -> int:
        """Edit one of the job's messages (sent anew if it was deleted); its id."""
        try:
            await self._bot.edit_message_text(
                html, chat_id=job.chat_id, message_id=message_id, reply_markup=markup
            )
        except BadRequest as exc:
            text = str(exc).lower()
            if "not modified" in text:
                return message_id  # a retried job delivering the same text again
            if "not found" in text:
                return await self._send(job, html, markup)
            raise
        return message_id

    async def _send(self, job: Job, html: str, markup: InlineKeyboardMarkup | None = None) -> int:
        message = await self._bot.send_message(
            job.chat_id, html, reply_parameters=self._reply_to(job), reply_markup=markup
        )
        return message.message_id

    async def tell(self, job: Job, placeholder: int | None, html: str) -> None:
        """A failure, told where the user looks; quiet chats hear only of what they asked for."""
        if job.quiet and not job.explicit:
            return
        try:
            if placeholder is not None and not job.replaces and not job.quiet:
                await self.edit(job, placeholder, html)
            else:
                await self._send(job, html)
        except TelegramError as exc:
            log.warning("job=%d: could not tell the user: %s", job.id, exc)

    async def _spoken(self, job: Job, result: Transcribed, text: str) -> str | None:
        """The transcript's language, when a Translate button may depend on it."""
        reader = language.reader_language(job.language_code)
        if not self._settings.chat_model or reader is None:
            return None
        return await language.spoken_language(text, job.language, reader, result.language)

    async def _still_ours(self, job: Job) -> None:
        """Raise LeaseLost before a new message is posted by a worker whose job was taken over
        (it stalled past its lease): an edit of a known message is harmless twice, a second
        message is not. A fenced write of what is recorded already."""
        await self._store.record_sent(job, job.sent_digest or "", job.sent_ids, job.file_sent)

    async def transcript(
        self, job: Job, placeholder: int | None, result: Transcribed
    ) -> tuple[int, ...]:
        """The transcript in as many messages as it takes (ids returned), headed by who said it;
        with segments, in paragraphs headed by speaker or time.

        Each message sent is recorded: a retry (Telegram failed on a later part, or on the
        .txt) goes on where this one stopped instead of sending the earlier parts again.
        """
        text = segments.layout(result, texts.speaker)
        htmls, markup, attach = await self._messages(job, result, text)
        digest = _digest(htmls, attach)
        resumed = job.sent_digest == digest
        # Messages to rewrite in place: an upgrade's, or an earlier attempt's (other text).
        earlier = list(job.replaces) or list(job.sent_ids) or _listed(placeholder)
        sent = list(job.sent_ids) if resumed else []
        ids = await self._send_all(job, htmls, markup, earlier, digest, sent)
        if attach and not (resumed and job.file_sent):
            await self._bot.send_document(
                job.chat_id,
                InputFile(text.encode("utf-8"), filename="transcript.txt"),
                caption=texts.full_transcript_caption(),
                reply_parameters=self._reply_to(job),
            )
            await outlasting_outages(
                functools.partial(self._store.record_sent, job, digest, ids, True),
                f"job={job.id}: the .txt sent",
            )
        return ids

    async def _messages(
        self, job: Job, result: Transcribed, text: str
    ) -> tuple[list[str], InlineKeyboardMarkup | None, bool]:
        """Each message's HTML, the buttons under the last, and whether a .txt goes too."""
        head = heading(job)
        room = MESSAGE_LIMIT - (utf16_len(job.sender_name or "") + 4 if head else 0)
        pieces = split_for_telegram(text, room)
        if not pieces:
            return [head + texts.no_speech()], None, False
        htmls = [head + escape(pieces[0]), *(escape(p) for p in pieces[1:])]
        spoken = await self._spoken(job, result, text)
        markup = transcript_keyboard(job, result, self._settings, len(pieces), spoken)
        return htmls, markup, len(pieces) > ATTACH_AFTER_MESSAGES

    async def _send_all(
        self,
        job: Job,
        htmls: list[str],
        markup: InlineKeyboardMarkup | None,
        earlier: list[int],
        digest: str,
        ids: list[int],
    ) -> tuple[int, ...]:
        """The messages from where `ids` (already sent) stops: edited over `earlier` ones while
        there are some, then sent (each recorded); earlier ones left over are deleted."""
        if len(htmls) > max(len(ids), len(earlier)):
            await self._still_ours(job)
        for index in range(len(ids), len(htmls)):
            keyboard = markup if index == len(htmls) - 1 else None
            if index < len(earlier):
                ids.append(await self.edit(job, earlier[index], htmls[index], keyboard))
                continue
            ids.append(await self._send(job, htmls[index], keyboard))
            # Sent: recorded through a store outage, or the next attempt sends it again.
            sent = tuple(ids)
            await outlasting_outages(
                functools.partial(self._store.record_sent, job, digest, sent, False),
                f"job={job.id}: a message sent",
            )
            if index == 0:
                # A quiet job's first message stands in for the placeholder.
                await outlasting_outages(
                    functools.partial(self._store.set_placeholder, job, ids[0]),
                    f"job={job.id}: its first message",
                )
        for surplus in earlier[len(htmls) :]:  # an upgrade (or a retry) that came out shorter
            with contextlib.suppress(TelegramError):
                await self._bot.delete_message(job.chat_id, surplus)
        return tuple(ids)


def _digest(htmls: list[str], attach: bool) -> str:
    """Names what is delivered: a retry with the same text goes on from where it stopped."""
    return hashlib.sha256("\0".join([*htmls, str(attach)]).encode()).hexdigest()[:32]


def _listed(message_id: int | None) -> list[int]:
    return [] if message_id is None else [message_id]
