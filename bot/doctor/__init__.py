"""python -m bot check: every part of a deployment checked once, one line each, ✓ or ✗."""

from __future__ import annotations

import httpx

from bot.config import Settings
from bot.doctor.local import check_database, check_ffmpeg
from bot.doctor.remote import check_telegram, check_transcription_api, check_webhook
from bot.doctor.result import Result

__all__ = ["Result", "run_checks"]

_TIMEOUT = httpx.Timeout(10.0, connect=5.0)


async def run_checks(settings: Settings) -> list[Result]:
    """Every check, in the order an operator would fix them; none raises."""
    async with httpx.AsyncClient(timeout=_TIMEOUT) as http:
        results = [await check_telegram(http, settings)]
        if results[0].ok:  # the webhook is asked for with the same token
            results.append(await check_webhook(http, settings))
        results.append(await check_transcription_api(http, settings))
    results += check_ffmpeg()
    results.append(await check_database(settings.database_url))
    return results
