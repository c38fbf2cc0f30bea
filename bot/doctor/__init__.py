"""python -m bot check: every part of a deployment checked once, one line each, ✓ or ✗."""

from __future__ import annotations

import asyncio

import httpx

from bot.config import Settings
from bot.doctor.local import check_database, check_ffmpeg
from bot.doctor.remote import (
    ANSWER_SECONDS,
    check_admins,
    check_telegram,
    check_transcription_api,
    check_webhook,
)
from bot.doctor.result import Result

__all__ = ["Result", "run_checks"]

_TIMEOUT = httpx.Timeout(ANSWER_SECONDS, connect=5.0)


async def run_checks(settings: Settings) -> list[Result]:
    """Every check, in the order an operator would fix them; none raises.

    The checks run at once: hosts that do not answer cost one timeout, not one each.
    """
    async with httpx.AsyncClient(timeout=_TIMEOUT) as http:
        telegram, api, tools, database = await asyncio.gather(
            _telegram_checks(http, settings),
            check_transcription_api(http, settings),
            asyncio.to_thread(check_ffmpeg),
            check_database(settings.database_url),
        )
    return [*telegram, api, *tools, database]


async def _telegram_checks(http: httpx.AsyncClient, settings: Settings) -> list[Result]:
    token = await check_telegram(http, settings)
    if not token.ok:
        return [token]
    # Asked for with the same token.
    webhook, admins = await asyncio.gather(
        check_webhook(http, settings), check_admins(http, settings)
    )
    return [token, webhook] if admins is None else [token, webhook, admins]
