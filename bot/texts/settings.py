"""Settings: /language, /prompt, /quiet, /names, /settings, and the words of their overview."""

from __future__ import annotations

from bot.i18n import _


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
