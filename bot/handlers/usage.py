"""/usage for everyone, /stats for the bot's admins: minutes, tokens and estimated cost."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from telegram import Update
from telegram.ext import BaseHandler, CommandHandler

from bot import policy, texts
from bot.config import Settings
from bot.failures import parse_stored
from bot.handlers.common import command_message, user_id_of
from bot.replies import escape
from bot.services import Context, services_of
from bot.store import UsageKind, UsageTotal


def month_start(now: float) -> float:
    """00:00 UTC on the first of this month."""
    today = datetime.fromtimestamp(now, UTC)
    return today.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()


def cost(settings: Settings, total: UsageTotal) -> float:
    """Estimated USD: transcription by the minute, summaries and translations by the token."""
    if total.kind is UsageKind.TRANSCRIPTION:
        return total.audio_seconds / 60 * settings.models.price_per_minute(total.model)
    return (
        total.input_tokens * settings.summary_input_price_per_million
        + total.output_tokens * settings.summary_output_price_per_million
    ) / 1_000_000


def usage_row(settings: Settings, total: UsageTotal) -> tuple[str, str, float]:
    """(model, what it paid for worded, estimated USD)."""
    if total.kind is UsageKind.TRANSCRIPTION:
        amount = texts.audio_amount(total.audio_seconds, total.count)
    else:
        amount = texts.tokens_amount(
            total.kind, total.count, total.input_tokens + total.output_tokens
        )
    return escape(total.model), amount, cost(settings, total)


async def usage(update: Update, context: Context) -> None:
    found = command_message(update, context)
    if found is None:
        return
    message, svc = found
    since = month_start(time.time())
    totals = await svc.store.usage_since(user_id_of(message) or 0, since)
    rows = [usage_row(svc.settings, total) for total in totals]
    day = datetime.fromtimestamp(since, UTC).date().isoformat()
    await message.reply_text(texts.usage_report(day, rows, sum(r[2] for r in rows)))


async def stats(update: Update, context: Context) -> None:
    message = update.effective_message
    svc = services_of(context)
    if message is None:
        return
    if not policy.is_admin(svc.settings, user_id_of(message)):
        await message.reply_text(texts.admins_only())
        return
    found = await svc.store.stats()
    # Only the category and the log reference: raw errors can hold paths, URLs, the token.
    failures = [
        texts.failure_line(job_id, *parse_stored(reason))
        for job_id, reason in found.recent_failures
    ]
    models = svc.settings.models
    costs = {m: mins * models.price_per_minute(m) for m, mins in found.minutes_by_model.items()}
    await message.reply_text(
        texts.stats_report(
            found.by_status,
            found.minutes_by_model,
            found.minutes_by_day,
            found.top_chats,
            failures,
            costs,
            [usage_row(svc.settings, total) for total in found.chat_usage],
        )
    )


def handlers() -> list[BaseHandler[Any, Any, Any]]:
    return [
        CommandHandler("usage", usage, block=False),
        CommandHandler("stats", stats, block=False),
    ]
