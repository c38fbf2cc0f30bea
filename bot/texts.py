"""What the bot says to people, in one place; HTML-safe (values are escaped by callers).

Every text is looked up in the current language (bot.i18n) when its function is called: write
new ones as _("... {name} ...").format(name=value), counts with ngettext, and run `make messages`.
"""

from __future__ import annotations

from bot.errors import (
    AudioTooLong,
    ConversionTimeout,
    CorruptAudio,
    FfmpegMissing,
    FileTooBig,
    LinkError,
    LinkNotAllowed,
    LinkNotMedia,
    LinkPrivate,
    LinkTooBig,
    LinkTooSlow,
    QuotaExceeded,
    TranscribotError,
    UnsupportedAudio,
    UpstreamAuthError,
    UpstreamRejected,
    UpstreamUnavailable,
)
from bot.i18n import N_, _, ngettext
from bot.models import ModelSpec

_JOB_STATES = {
    # Translators: the states of jobs, counted in the admins' /stats.
    "queued": N_("queued"),
    "running": N_("running"),
    "done": N_("done"),
    "failed": N_("failed"),
}


def command_menu() -> list[tuple[str, str]]:
    """The commands Telegram lists in its menu, with their descriptions."""
    return [
        ("start", _("What this bot does")),
        ("help", _("How to use it, the current model")),
        ("model", _("Choose the transcription model")),
        ("autotranscribe", _("Groups: transcribe voice notes automatically (on/off)")),
        ("transcribe", _("Reply to a voice note to transcribe it")),
        ("translate", _("Reply to a transcript to translate it (or /translate xx)")),
        ("language", _("Language of your recordings (or auto)")),
        ("prompt", _("Vocabulary hint: names, jargon, spelling")),
        ("quiet", _("Only post finished transcripts (on/off)")),
        ("names", _("Groups: start transcripts with the sender's name (on/off)")),
        ("settings", _("Everything in effect here, and where it comes from")),
        ("usage", _("Your minutes this month and their estimated cost")),
    ]


def model_label(spec: ModelSpec) -> str:
    """The /model button: the operator's label, or the name with its note (built-in models)."""
    if spec.label:
        return spec.label
    return f"{spec.name} ({_(spec.note)})" if spec.note else spec.name


def working() -> str:
    return _("🎙 Transcribing…")


def preparing() -> str:
    return _("🎙 A long recording: cutting it into parts…")


def no_speech() -> str:
    return _("🤷 No speech recognised.")


def full_transcript_caption() -> str:
    return _("The whole transcript as a text file.")


def unexpected() -> str:
    return _("😔 Sorry, something went wrong with this one. Please try again later.")


def not_allowed() -> str:
    return _("Sorry, this bot is private. Ask its owner for access.")


def group_admins_only() -> str:
    return _("Only this group's admins can change that.")


def groups_only() -> str:
    return _("This setting is for groups: add me to one and use it there.")


def auto_usage() -> str:
    return _("Use /autotranscribe on or /autotranscribe off.")


def transcribe_usage() -> str:
    return _("Reply to a voice note or audio with /transcribe to transcribe it.")


def admins_only() -> str:
    return _("That command is for the bot's admins.")


def start(model: str) -> str:
    return _(
        "👋 Send me a voice note, audio or video and I'll reply with its text.\n\n"
        "Model: <b>{model}</b> (change it with /model). /help tells more."
    ).format(model=model)


def help_text(model: str, in_group: bool) -> str:
    where = (
        _(
            "In this group I transcribe voice notes automatically unless an admin turns it off "
            "with /autotranscribe off; then reply /transcribe to a voice note to transcribe it."
        )
        if in_group
        else _("Add me to a group to transcribe its voice notes automatically.")
    )
    about = _(
        "<b>Transcribot</b> turns voice notes, audio and video into text.\n\n"
        "Current model: <b>{model}</b>\n"
        "/model – choose the transcription model\n"
        "/autotranscribe on|off – groups: transcribe voice notes automatically (admins)\n"
        "/transcribe – reply to a voice note to transcribe it"
    ).format(model=model)
    more = _(
        "/language – the language of your recordings (a hint for the model)\n"
        "/prompt – names and words to spell right\n"
        "/quiet on|off – only the finished transcript, no progress\n"
        "/settings – what is in effect here, and where it comes from\n"
        "/usage – your minutes this month and what they cost"
    )
    return f"{about}\n{more}\n\n{where}"


def model_prompt(model: str, for_group: bool) -> str:
    if for_group:
        text = _("Choose the transcription model for this group. Now: <b>{model}</b>")
    else:
        text = _("Choose the transcription model for you. Now: <b>{model}</b>")
    return text.format(model=model)


def model_set(model: str, for_group: bool) -> str:
    if for_group:
        text = _("✅ Model for this group: <b>{model}</b>")
    else:
        text = _("✅ Model for you: <b>{model}</b>")
    return text.format(model=model)


def auto_transcribe_state(enabled: bool) -> str:
    if enabled:
        return _("✅ I'll transcribe voice notes in this group automatically.")
    return _("⏸ Automatic transcription is off here. Reply /transcribe to a voice note to ask.")


def rate_limited(seconds: int) -> str:
    return _("⏳ You're sending a lot at once. Try again in {seconds} s.").format(
        seconds=max(seconds, 1)
    )


def quota_used(limit_seconds: int, resets_in_seconds: int) -> str:
    minutes = limit_seconds // 60
    wait = max(resets_in_seconds, 60) // 60 * 60  # whole minutes, at least one
    # Translators: {wait} is a duration such as "5 h 3 min" or "42 minutes".
    return ngettext(
        "⏳ You've used today's {minutes} minute of audio. It resets at 00:00 UTC (in {wait}).",
        "⏳ You've used today's {minutes} minutes of audio. It resets at 00:00 UTC (in {wait}).",
        minutes,
    ).format(minutes=minutes, wait=span(wait))


def part_progress(done: int, total: int) -> str:
    return ngettext(
        "🎙 Transcribing a long recording… {done} of {total} part done",
        "🎙 Transcribing a long recording… {done} of {total} parts done",
        total,
    ).format(done=done, total=total)


def for_error(error: TranscribotError) -> str:
    """The one short message a user sees for an error we expected."""
    if isinstance(error, LinkError):
        return link_error(error)
    if isinstance(error, FileTooBig):
        return _(
            "📦 This file is too big for me: Telegram lets bots download up to {megabytes} MB. "
            "Send a shorter recording, or a compressed one (a voice note or an mp3)."
        ).format(megabytes=error.limit // (1024 * 1024))
    if isinstance(error, QuotaExceeded):
        return quota_used(error.limit, error.resets_in)
    if isinstance(error, AudioTooLong):
        # Translators: {limit} is a duration such as "3 hours" or "1 h 30 min".
        return _(
            "⏱ That recording is too long: I take up to {limit}. Please send a shorter one."
        ).format(limit=span(error.limit))
    if isinstance(error, FfmpegMissing):
        return _(
            "🛠 This file needs converting, and the bot's server can't do that right now "
            "(ffmpeg is missing). A voice note works."
        )
    if isinstance(error, ConversionTimeout):
        return _(
            "⏱ Converting this file took too long. Try a shorter recording, or a voice note "
            "or an mp3."
        )
    if isinstance(error, UnsupportedAudio):
        return _("🔇 I couldn't find any audio in that file.")
    if isinstance(error, CorruptAudio):
        return _("🔇 I couldn't read that file: it seems damaged, or it isn't audio.")
    if isinstance(error, UpstreamAuthError):
        return _("🛠 The transcription service refused the bot's credentials. The admin is told.")
    if isinstance(error, UpstreamRejected):
        return _("🔇 The transcription service couldn't process this audio.")
    if isinstance(error, UpstreamUnavailable):
        return _("🌩 The transcription service is not answering right now. Please try again later.")
    return unexpected()


def span(seconds: float) -> str:
    """A duration as people say it: "45 seconds", "1 minute", "1 h 30 min", "3 hours"."""
    total = max(1, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if not hours and not minutes:
        return ngettext("{n} second", "{n} seconds", secs).format(n=secs)
    if not secs and not minutes:
        return ngettext("{n} hour", "{n} hours", hours).format(n=hours)
    if not secs and not hours:
        return ngettext("{n} minute", "{n} minutes", minutes).format(n=minutes)
    # Translators: the short units of a mixed duration: "1 h 30 min", "2 min 5 s".
    units = ((hours, _("{n} h")), (minutes, _("{n} min")), (secs, _("{n} s")))
    return " ".join(unit.format(n=n) for n, unit in units if n)


# Settings: /language, /prompt, /quiet, /names, /settings. Catalogue-ready: every text goes
# through `_` when it is used, with named {placeholders}.


def _whose(for_group: bool) -> str:
    return _("this group") if for_group else _("you")


def language_state(code: str | None, for_group: bool) -> str:
    if code is None:
        return _("Recording language for {whose}: detected from the audio.").format(
            whose=_whose(for_group)
        )
    return _("Recording language for {whose}: <b>{code}</b>.").format(
        whose=_whose(for_group), code=code
    )


def language_usage() -> str:
    return _(
        "Tell me the language of your recordings to make transcripts more accurate: "
        "/language vi, /language en, /language ru… (a two-letter ISO 639-1 code), "
        "or /language auto to let the model detect it."
    )


def language_unknown(code: str) -> str:
    return _("I don't know the language code <b>{code}</b>. {usage}").format(
        code=code, usage=language_usage()
    )


def prompt_state(prompt: str | None, for_group: bool) -> str:
    if prompt is None:
        return _("No vocabulary hint for {whose}.").format(whose=_whose(for_group))
    return _("Vocabulary hint for {whose}: <i>{prompt}</i>").format(
        whose=_whose(for_group), prompt=prompt
    )


def prompt_usage(limit: int) -> str:
    return _(
        "A vocabulary hint helps with names, jargon and spelling: "
        "/prompt Kubernetes, Nguyễn, PostgreSQL (up to {limit} characters). "
        "/prompt off removes it."
    ).format(limit=limit)


def prompt_too_long(limit: int) -> str:
    return _("That hint is too long: {limit} characters at most.").format(limit=limit)


def quiet_state(enabled: bool) -> str:
    if enabled:
        return _("🤫 Quiet mode is on: I only post the finished transcript here.")
    return _("🔔 Quiet mode is off: I show progress while I work.")


def quiet_usage() -> str:
    return _("Use /quiet on or /quiet off.")


def names_state(enabled: bool) -> str:
    if enabled:
        return _("👤 Transcripts here start with the sender's name.")
    return _("Transcripts here don't start with the sender's name.")


def names_usage() -> str:
    return _("Use /names on or /names off.")


def settings_overview(rows: list[tuple[str, str, str]], for_group: bool) -> str:
    """rows: (what, value, where it comes from), all HTML-safe already."""
    lines = [_("<b>Settings in effect here</b>")]
    lines.extend(
        _("{what}: <b>{value}</b> ({source})").format(what=w, value=v, source=s) for w, v, s in rows
    )
    if for_group:
        lines.append(
            _("Change them with /model, /language, /prompt, /quiet, /names, /autotranscribe.")
        )
    else:
        lines.append(_("Change them with /model, /language, /prompt, /quiet."))
    return "\n".join(lines)


def source_label(source: str) -> str:
    return {
        "group": _("this group's"),
        "user": _("yours"),
        "default": _("default"),
    }.get(source, source)


def setting_label(name: str) -> str:
    return {
        "model": _("Model"),
        "language": _("Language"),
        "prompt": _("Vocabulary hint"),
        "quiet": _("Quiet mode"),
        "auto_transcribe": _("Automatic transcription"),
        "sender_names": _("Sender names"),
    }[name]


def on_off(value: bool) -> str:
    return _("on") if value else _("off")


def auto_detect() -> str:
    return _("detected")


def none_set() -> str:
    return _("none")


# Usage and statistics: /usage, /stats.


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


def tokens_amount(input_tokens: int, output_tokens: int) -> str:
    return _("summaries and translations, {tokens} tokens").format(
        tokens=input_tokens + output_tokens
    )


def stats_report(
    by_status: dict[str, int],
    minutes: dict[str, float],
    by_day: dict[str, dict[str, float]],
    top_chats: list[tuple[int, int, float]],
    failures: list[str],
    costs: dict[str, float] | None = None,
) -> str:
    """costs: estimated USD per model, at the model registry's prices."""
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


# Buttons under a transcript.


def upgrade_button(model: str) -> str:
    return _("✨ Transcribe with {model}").format(model=model)


def summary_button() -> str:
    return _("📝 Summary")


def button_expired() -> str:
    return _("This button has expired.")


def upgrade_not_yours() -> str:
    return _("Only the person who asked for this transcript, or an admin, can do that.")


def upgrading(model: str) -> str:
    return _("Transcribing again with {model}…").format(model=model)


def summarizing() -> str:
    return _("📝 Summarising…")


def summary_made_already() -> str:
    return _("The summary is already there (or on its way).")


def summary_heading() -> str:
    return _("📝 <b>Summary</b>")


def summary_failed(error: TranscribotError) -> str:
    if isinstance(error, UpstreamUnavailable):
        return _("🌩 The summary service is not answering right now. Try the button again later.")
    if isinstance(error, UpstreamAuthError):
        return _("🛠 The summary service refused the bot's credentials. The admin is told.")
    return _("😔 I couldn't summarise this transcript. Try the button again later.")


def summary_text_gone() -> str:
    return _("The whole transcript is no longer kept, so I can't summarise it.")


def upgrade_under_way() -> str:
    return _("That one is done with the better model already, or on its way.")


# --- recordings from a link ---


def link_error(error: LinkError) -> str:
    """Why a link was not transcribed."""
    if isinstance(error, LinkNotAllowed):
        return link_not_allowed()
    if isinstance(error, LinkPrivate):
        return _(
            "🔒 That link points into a private network. I only fetch recordings from the "
            "public internet."
        )
    if isinstance(error, LinkTooBig):
        return _("📦 The file behind that link is too big: I take up to {megabytes} MB.").format(
            megabytes=error.limit // (1024 * 1024)
        )
    if isinstance(error, LinkTooSlow):
        return _("⏱ The server behind that link was too slow. Please try again later.")
    if isinstance(error, LinkNotMedia):
        return _(
            "🔗 That link leads to a web page, not to an audio or video file. Send a direct "
            "download link (Google Drive, Dropbox and OneDrive share links work too)."
        )
    return _("🔗 I couldn't download the file behind that link.")


def link_not_allowed() -> str:
    return _("🔗 I can only fetch recordings from http:// and https:// links.")


# Engines: speakers and subtitles.


def speaker(label: str) -> str:
    # Translators: heads a speaker's turn in a transcript: "Speaker A", "Speaker B".
    return _("Speaker {label}").format(label=label)


def subtitles_button() -> str:
    return _("🎬 Subtitles")


def subtitles_gone() -> str:
    return _("The timed transcript is no longer kept, so I can't make subtitles.")


def subtitles_caption() -> str:
    return _("Subtitles (.srt) from the transcript's timestamps.")


# --- translations ---


def translate_button() -> str:
    # Translators: the button under a transcript in another language than the reader's.
    return _("🌐 Translate")


def translating() -> str:
    return _("🌐 Translating…")


def translation_heading(language: str) -> str:
    # Translators: {language} is the language's own name, e.g. "русский".
    return _("🌐 <b>Translation ({language})</b>").format(language=language)


def translation_under_way() -> str:
    return _("That translation is on its way.")


def translation_failed(error: TranscribotError) -> str:
    if isinstance(error, UpstreamUnavailable):
        return _("🌩 The translation service is not answering right now. Please try again later.")
    if isinstance(error, UpstreamAuthError):
        return _("🛠 The translation service refused the bot's credentials. The admin is told.")
    return _("😔 I couldn't translate this transcript. Please try again later.")


def translation_text_gone() -> str:
    return _("The whole transcript is no longer kept, so I can't translate it.")


def translate_usage() -> str:
    return _(
        "Reply to a transcript (or a transcribed voice note) with /translate to translate it "
        "into your language, or with /translate xx for another one (a two-letter code such as "
        "en, ru, vi)."
    )


def translate_unknown_language(code: str) -> str:
    return _("I don't know the language code <b>{code}</b>. {usage}").format(
        code=code, usage=translate_usage()
    )


def translate_needs_transcript() -> str:
    return _("Transcribe it first (reply /transcribe to it), then /translate.")


def translations_off() -> str:
    return _("Translations are turned off on this bot.")
