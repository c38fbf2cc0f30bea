"""Transcribot: a Telegram bot that turns voice notes into text."""

__version__ = "0.1.0"

import os

# python-telegram-bot 22 gives durations as ints with a deprecation warning unless asked for the
# timedelta it will use in its next major version; our code reads both.
os.environ.setdefault("PTB_TIMEDELTA", "1")
