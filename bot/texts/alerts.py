"""Admin alerts (bot/alerts.py) and /alerts: what the bot's admins are told in private."""

from __future__ import annotations

from bot.i18n import _, ngettext


def alert_heading() -> str:
    return _("🚨 <b>Transcribot needs attention</b>")


def alert_footer() -> str:
    return _("<i>/alerts off stops these messages.</i>")


def alert_digest_heading(count: int, minutes: int) -> str:
    # Translators: {n} problems; "{minutes} min" stays short.
    return ngettext(
        "{n} problem in the last {minutes} min:", "{n} problems in the last {minutes} min:", count
    ).format(n=count, minutes=minutes)


def alert_latest() -> str:
    return _("Latest:")


def alert_count(kind: str, count: int) -> str:
    if kind == "job_failed":
        return ngettext("{n} job failed", "{n} jobs failed", count).format(n=count)
    if kind == "job_given_up":
        return ngettext(
            "{n} job given up after crashes", "{n} jobs given up after crashes", count
        ).format(n=count)
    if kind == "telegram_error":
        return ngettext("{n} Telegram error", "{n} Telegram errors", count).format(n=count)
    return ngettext(
        "{n} change in the transcription API", "{n} changes in the transcription API", count
    ).format(n=count)


def alert_job_failed(job_id: int, reason: str) -> str:
    return _("Job {job} failed after its retries: {reason}").format(job=job_id, reason=reason)


def alert_request_failed(reason: str) -> str:
    # Translators: {reason} is e.g. "translation: UpstreamAuthError".
    return _("A request failed: {reason}").format(reason=reason)


def alert_job_given_up(job_id: int, attempts: int) -> str:
    return ngettext(
        "Job {job} was given up: its {n} attempt ended in a crash or was cut off.",
        "Job {job} was given up: its {n} attempts ended in a crash or were cut off.",
        attempts,
    ).format(job=job_id, n=attempts)


def alert_api_down(span: str) -> str:
    return _(
        "The transcription API has not answered for {span}. Voice notes fail until it is back."
    ).format(span=span)


def alert_api_back(span: str) -> str:
    return _("The transcription API answers again (it was down for {span}).").format(span=span)


def alert_telegram_error(detail: str) -> str:
    return _("Telegram refused a call: {detail}").format(detail=detail)


def alerts_now(on: bool) -> str:
    if on:
        return _("🔔 Alerts are on: I message you here when something needs attention.")
    return _("🔕 Alerts are off. /alerts on turns them back on.")


def alerts_usage() -> str:
    return _("Use /alerts on or /alerts off.")
