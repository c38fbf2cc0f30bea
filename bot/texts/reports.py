"""Usage and statistics: /usage for everyone, /stats for the admins."""

from __future__ import annotations

from bot.i18n import N_, _, ngettext
from bot.texts.common import span


def usage_report(since: str, rows: list[tuple[str, str, float]], total: float) -> str:
    """rows: (model, amount already worded, estimated USD)."""
    lines = [_("<b>Your usage this month</b> (since {date}, UTC)").format(date=since)]
    if not rows:
        lines.append(_("Nothing yet."))
    lines.extend(
        _("{model}: {amount}, ≈ ${cost}").format(model=m, amount=a, cost=f"{c:.4f}")
        for m, a, c in rows
    )
    if rows:
        lines.append(_("Total ≈ ${cost}").format(cost=f"{total:.4f}"))
    lines.append(_("Costs are estimated from list prices. Answers from the cache are free."))
    return "\n".join(lines)


def audio_amount(seconds: float, count: int) -> str:
    notes = ngettext("{n} recording", "{n} recordings", count).format(n=count)
    return _("{duration} in {notes}").format(duration=span(seconds), notes=notes)


def tokens_amount(kind: str, count: int, tokens: int) -> str:
    """What a chat model was paid for: summaries, translations (kind, from bot.store.UsageKind),
    or both, recorded before they were told apart."""
    if kind == "summary":
        made = ngettext("{n} summary", "{n} summaries", count).format(n=count)
    elif kind == "translation":
        made = ngettext("{n} translation", "{n} translations", count).format(n=count)
    else:
        return _("summaries and translations, {tokens} tokens").format(tokens=tokens)
    # Translators: {made} is "3 summaries" or "1 translation".
    return _("{made}, {tokens} tokens").format(made=made, tokens=tokens)


_JOB_STATES = {
    # Translators: the states of jobs, counted in the admins' /stats.
    "queued": N_("queued"),
    "running": N_("running"),
    "done": N_("done"),
    "failed": N_("failed"),
}


def stats_report(
    by_status: dict[str, int],
    minutes: dict[str, float],
    by_day: dict[str, dict[str, float]],
    top_chats: list[tuple[int, int, float]],
    failures: list[str],
    costs: dict[str, float] | None = None,
    chat_rows: list[tuple[str, str, float]] | None = None,
) -> str:
    """costs: estimated USD per model, at the model registry's prices; chat_rows: summaries and
    translations as (model, amount worded, estimated USD)."""
    lines = [_("<b>Jobs</b>")]
    lines.extend(f"{_(label)}: {by_status.get(status, 0)}" for status, label in _JOB_STATES.items())
    lines.append("\n" + _("<b>Audio minutes by model</b>"))
    lines.extend(
        f"{model}: {value:.2f}" + (f" (≈ ${costs[model]:.4f})" if costs and model in costs else "")
        for model, value in sorted(minutes.items())
    )
    if not minutes:
        lines.append(_("none yet"))
    if by_day:
        lines.append("\n" + _("<b>Minutes by day</b>"))
        for day, models in by_day.items():
            per_model = ", ".join(f"{m} {v:.1f}" for m, v in sorted(models.items()))
            lines.append(f"{day}: {per_model}")
    if chat_rows:
        lines.append("\n" + _("<b>Summaries and translations</b>"))
        lines.extend(f"{model}: {amount} (≈ ${usd:.4f})" for model, amount, usd in chat_rows)
    if top_chats:
        lines.append("\n" + _("<b>Top chats</b>"))
        lines.extend(
            _("{chat}: {jobs} jobs, {minutes} min").format(
                chat=chat, jobs=jobs, minutes=f"{mins:.1f}"
            )
            for chat, jobs, mins in top_chats
        )
    if failures:
        lines.append("\n" + _("<b>Recent failures</b>"))
        lines.extend(failures)
    return "\n".join(lines)


# Why jobs failed, for the admins' /stats: a category (bot.failures) and the log reference.
_FAILURE_CATEGORIES = {
    # Translators: kinds of failure in /stats, e.g. "#42: transcription API, log ref. 3f9a1c".
    "audio": N_("the audio file"),
    "link": N_("the link"),
    "upstream": N_("transcription API"),
    "telegram": N_("Telegram"),
    "forbidden": N_("the bot may not write to the chat"),
    "crashed": N_("the job's worker crashed"),
    "unexpected": N_("unexpected error"),
}


def failure_line(job_id: int, category: str | None, ref: str) -> str:
    """One failed job in /stats; its details are in the log line with the same reference."""
    if category is None or category not in _FAILURE_CATEGORIES:
        return _("#{job}: details in the log").format(job=job_id)
    # Translators: {ref} is a code such as 3f9a1c that the admin searches the bot's log for.
    return _("#{job}: {category}, log ref. {ref}").format(
        job=job_id, category=_(_FAILURE_CATEGORIES[category]), ref=ref
    )
