"""A long job's progress in its placeholder (bot.progress): every note starts with 🎙, as the
placeholder itself does ("🎙 Transcribing…", texts.working)."""

from __future__ import annotations

from bot.i18n import _, ngettext


def downloading(received: int, total: int | None) -> str:
    if total:
        percent = min(100, received * 100 // total)
        return _("🎙 Downloading {percent} %").format(percent=percent)
    megabytes = received / (1024 * 1024)
    amount = f"{megabytes:.1f}" if megabytes < 10 else f"{megabytes:.0f}"  # 0.4 MB, 12 MB
    return _("🎙 Downloading… {megabytes} MB so far").format(megabytes=amount)


def converting() -> str:
    return _("🎙 Converting…")


def transcribing(part: int, total: int, seconds_left: float | None) -> str:
    """ "Transcribing part 3 of 8, about 2 min left"; without a time until one is measured."""
    if seconds_left is None:
        return _("🎙 Transcribing part {part} of {total}…").format(part=part, total=total)
    left = time_left(seconds_left)
    if total == 1:
        # Translators: {left} is a time left such as "about 2 min left".
        return _("🎙 Transcribing, {left}").format(left=left)
    # Translators: {left} is a time left such as "about 2 min left".
    return _("🎙 Transcribing part {part} of {total}, {left}").format(
        part=part, total=total, left=left
    )


def time_left(seconds: float) -> str:
    """Whole minutes from 50 s on; below that tens of seconds, rounded up."""
    if seconds >= 50:
        minutes = max(1, round(seconds / 60))
        return ngettext("about {n} min left", "about {n} min left", minutes).format(n=minutes)
    tens = max(10, -(-int(seconds) // 10) * 10)
    return ngettext("about {n} s left", "about {n} s left", tens).format(n=tens)
