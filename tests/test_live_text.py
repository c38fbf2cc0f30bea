"""The live text: throttled, latest-only, never after the end, always one valid message."""

from __future__ import annotations

import asyncio
import html
import itertools
import time

from bot.live import LiveText, live_html
from bot.replies import MESSAGE_LIMIT, utf16_len


class Shown:
    """A `show` that records what it was given and when, taking `seconds` per edit."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = seconds
        self.items: list[tuple[float, str]] = []
        self.started = asyncio.Event()
        self.finished_at: float | None = None

    async def __call__(self, text: str) -> None:
        self.started.set()
        await asyncio.sleep(self.seconds)
        self.items.append((time.monotonic(), text))
        self.finished_at = time.monotonic()


async def test_texts_faster_than_the_interval_are_skipped_not_queued() -> None:
    shown = Shown()
    created = time.monotonic()
    live = LiveText(shown, interval=0.3)
    for n in range(1, 41):
        await live.update(f"word {n}")
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.5)
    await live.finish()

    times = [created] + [at for at, _ in shown.items]
    assert 2 <= len(shown.items) <= 5
    assert all(b - a >= 0.29 for a, b in itertools.pairwise(times))
    assert shown.items[-1][1] == "word 40 …"  # the latest text, not a queued older one


async def test_finish_waits_for_the_edit_under_way_and_nothing_comes_after() -> None:
    shown = Shown(seconds=0.3)
    live = LiveText(shown, interval=0.0)
    await live.update("first")
    await asyncio.wait_for(shown.started.wait(), 2)
    await live.finish()
    finished = time.monotonic()
    await live.update("too late")
    await asyncio.sleep(0.4)

    assert [text for _, text in shown.items] == ["first …"]
    assert shown.finished_at is not None
    assert shown.finished_at <= finished


async def test_a_text_that_is_done_within_the_interval_is_never_shown() -> None:
    shown = Shown()
    live = LiveText(shown, interval=1.0)
    await live.update("all at once")
    await live.finish()
    assert shown.items == []


def test_live_html_is_escaped_and_fits_one_message() -> None:
    text = "1 < 2 & 😀 " * 1000  # escaping grows it; the emoji counts 2 UTF-16 units
    result = live_html(text)
    visible = html.unescape(result)
    assert utf16_len(visible) <= MESSAGE_LIMIT
    assert visible.startswith("…1 < 2")  # the end of the text, from a word's start
    assert visible.endswith("😀 …")
    assert "&lt;" in result
    assert live_html("  short <b>  ") == "short &lt;b&gt; …"
