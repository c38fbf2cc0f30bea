"""Transcribot: a Telegram bot that turns voice notes into text."""

__version__ = "0.1.0"

import datetime as _dt
import os

# python-telegram-bot 22 gives durations (Voice.duration, RetryAfter.retry_after...) as ints with
# a deprecation warning unless asked for the timedelta its next major version uses. It reads this
# each time it makes one, so it is set before any Update exists; seconds() reads what it gives.
os.environ.setdefault("PTB_TIMEDELTA", "1")


def seconds(duration: int | float | _dt.timedelta) -> float:
    """A duration PTB gives: a timedelta (PTB_TIMEDELTA), or seconds if an operator unset it."""
    if isinstance(duration, _dt.timedelta):
        return duration.total_seconds()
    return float(duration)
