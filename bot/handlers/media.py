"""Voice notes, audio and video in: turn each into a durable job (nothing else happens here)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from telegram import (
    Audio,
    Document,
    Message,
    MessageOriginChannel,
    MessageOriginChat,
    MessageOriginHiddenUser,
    MessageOriginUser,
    ReplyParameters,
    Update,
    Video,
    VideoNote,
    Voice,
)
from telegram.ext import MessageHandler, filters

from bot import policy, seconds, texts
from bot.errors import Refusal
from bot.handlers.common import in_group, sender_id, settings_here
from bot.handlers.throttle import first_in_a_minute
from bot.services import Context, Services, services_of
from bot.store import MediaKind, NewJob

log = logging.getLogger(__name__)

# Recordings sent "as a file" often arrive as application/octet-stream (or application/ogg):
# the name tells then. What the file really is, ffprobe decides later.
_MEDIA_EXTENSIONS = frozenset(
    {"mp3", "m4a", "aac", "wav", "flac", "ogg", "oga", "opus", "amr", "wma", "aiff", "aif"}
    | {"caf", "mka", "weba", "webm", "mkv", "mp4", "mov", "m4v", "3gp"}
)
_MEDIA_MIME_TYPES = frozenset({"application/ogg", "application/x-ogg"})


@dataclass(frozen=True)
class Media:
    kind: MediaKind
    file_id: str
    file_unique_id: str
    duration: float | None
    file_size: int | None
    file_name: str | None
    mime_type: str | None


def media_of(message: Message | None) -> Media | None:
    """The transcribable file in a message, if it has one."""
    if message is None:
        return None
    if message.voice:
        return _media("voice", message.voice, message.voice.mime_type)
    if message.audio:
        a = message.audio
        return _media("audio", a, a.mime_type, a.file_name)
    if message.video_note:
        return _media("video_note", message.video_note, "video/mp4")
    if message.video:
        w = message.video
        return _media("video", w, w.mime_type, w.file_name)
    doc = message.document
    # A GIF comes as an mp4 animation, with `document` set too: no sound to transcribe.
    if doc and not message.animation and _is_media_document(doc.mime_type, doc.file_name):
        return _media("document", doc, doc.mime_type, doc.file_name)
    return None


_TelegramFile = Voice | Audio | VideoNote | Video | Document


def _media(
    kind: MediaKind, file: _TelegramFile, mime_type: str | None, file_name: str | None = None
) -> Media:
    duration = getattr(file, "duration", None)  # documents have none
    return Media(
        kind,
        file.file_id,
        file.file_unique_id,
        None if duration is None else seconds(duration),
        file.file_size,
        file_name,
        mime_type,
    )


def _is_media_document(mime_type: str | None, file_name: str | None) -> bool:
    mime = (mime_type or "").lower()
    if mime.startswith(("audio/", "video/")) or mime in _MEDIA_MIME_TYPES:
        return True
    _, dot, extension = (file_name or "").rpartition(".")
    return bool(dot) and extension.lower() in _MEDIA_EXTENSIONS


class _Transcribable(filters.MessageFilter):
    """Messages media_of finds a file to transcribe in."""

    def filter(self, message: Message) -> bool:
        return media_of(message) is not None


MEDIA_FILTER = _Transcribable(name="transcribable media")


async def on_media(update: Update, context: Context) -> None:
    message = update.effective_message
    media = media_of(message)
    if message is None or media is None:
        return
    svc = services_of(context)
    now = await settings_here(svc, message)
    if in_group(message) and not now.auto_transcribe.value:
        return
    await accept(
        svc, context, message, message, media, update_id=update.update_id, explicit=False, now=now
    )


async def accept(
    svc: Services,
    context: Context,
    target: Message,
    request: Message,
    media: Media,
    *,
    update_id: int,
    explicit: bool,
    now: policy.Effective | None = None,
) -> None:
    """Queue `target` for transcription on behalf of the sender of `request`.

    `now`: the settings in effect for them, when the caller has read them already.
    """
    if now is None:
        now = await settings_here(svc, request)  # in the target's chat: /transcribe replies there
    job = _new_job(target, request, media, now, explicit=explicit)
    as_chat = request.sender_chat is not None
    subject = policy.limit_subject(job.user_id, job.chat_id, as_chat=as_chat)
    limits = policy.limits_for(svc.settings, job.user_id, subject, job.duration, job.file_size)
    # One atomic step: the update's seen mark, the limits, the job and its quota reservation.
    accepted = await svc.store.accept_job(update_id, job, limits)
    refusal = policy.refusal(accepted, svc.settings)
    if refusal is not None:
        await _refuse(svc, context, request, refusal, tell=explicit or not now.quiet.value)
    elif accepted.outcome == "queued":
        svc.dispatcher.wake()
    elif accepted.outcome == "exists":
        log.info("chat=%s message=%s is queued already", job.chat_id, job.message_id)


def _new_job(
    target: Message, request: Message, media: Media, now: policy.Effective, *, explicit: bool
) -> NewJob:
    """The job for `target`'s media, asked for by the sender of `request`, with the settings
    in effect for them."""
    user = request.from_user
    group = in_group(target)
    return NewJob(
        chat_id=target.chat_id,
        message_id=target.message_id,
        user_id=sender_id(request),
        chat_type=str(target.chat.type),
        kind=media.kind,
        file_id=media.file_id,
        file_unique_id=media.file_unique_id,
        model=now.model_name,
        duration=media.duration,
        file_size=media.file_size,
        file_name=media.file_name,
        mime_type=media.mime_type,
        language_code=user.language_code if user else None,
        explicit=explicit,
        language=_text(now.language.value),
        prompt=_text(now.prompt.value),
        quiet=bool(now.quiet.value),
        sender_name=sender_name(target) if group and now.sender_names.value else None,
    )


def sender_name(message: Message) -> str | None:
    """Who said it: the original author of a forwarded note, else the sender."""
    origin = message.forward_origin
    if isinstance(origin, MessageOriginUser):
        return origin.sender_user.first_name
    if isinstance(origin, MessageOriginHiddenUser):
        return origin.sender_user_name
    if isinstance(origin, MessageOriginChat):
        return origin.sender_chat.title or None
    if isinstance(origin, MessageOriginChannel):
        return origin.chat.title or None
    if message.from_user is not None:
        return message.from_user.first_name
    if message.sender_chat is not None:
        return message.sender_chat.title or None
    return None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


async def _refuse(
    svc: Services,
    context: Context,
    request: Message,
    refusal: Refusal,
    *,
    tell: bool,
) -> None:
    """Log every refusal; tell the asker once a minute at most (a quiet chat hears only of what
    it asked for)."""
    told = tell and await first_in_a_minute(svc.store, "refusal", request)
    log.info(
        "refused chat=%s user=%s: %s (%s)",
        request.chat_id,
        request.from_user.id if request.from_user else None,
        refusal,
        "told" if told else "not told",
    )
    if told:
        reply_later(context, request, texts.refusal(refusal))


def reply_later(context: Context, message: Message, text: str) -> None:
    """Send a refusal without holding up the webhook's answer."""
    context.application.create_task(
        message.reply_text(
            text,
            reply_parameters=ReplyParameters(message.message_id, allow_sending_without_reply=True),
        ),
        name="refusal",
    )


def handler() -> MessageHandler[Any, Any]:
    # block=True: the job is in the store before the webhook answers (or polling moves on).
    return MessageHandler(MEDIA_FILTER & ~filters.UpdateType.EDITED, on_media, block=True)
