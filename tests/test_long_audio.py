"""Recordings longer than the API takes: cut near silences into parts under both of its limits,
the parts transcribed a few at a time, the texts joined in the recording's order.

How order is proven: the 2-hour recording is eight 15-minute sections, each a different steady
pitch (tone and silence in turns). The fake API answers each part with a text made from its
bytes' hash and keeps the bytes; the test decodes the start of every part it received and reads
its pitch, which says where in the recording the part begins (two parts never start in the same
section: a part is at least 80% of 1400 s long). The reply must list the parts' texts sorted by
that position, whatever order they reached the API in.
"""

from __future__ import annotations

import itertools
import re
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import API_KEY, BotFactory, RunningBot
from tests.fakes import FakeTelegram, FakeTranscriptionAPI
from tests.media_fixtures import (
    MediaLibrary,
    child_processes,
    edge_peaks,
    eventually,
    needs_media_tools,
    outcome,
    reply_to,
    send,
    start_frequency,
)

pytestmark = needs_media_tools

PITCHES = [300, 450, 600, 750, 900, 1050, 1200, 1350]  # Hz, one per section
SECTION_SECONDS = 900  # 8 x 15 minutes: 2 hours
HOURS_2 = len(PITCHES) * SECTION_SECONDS
API_MAX_BYTES = 25 * 1024 * 1024
API_MAX_SECONDS = 1500
QUIET = 300  # peak sample (of 32767) in a silence after lossy coding; the tones reach ~4000
_PROGRESS = re.compile(r"Transcribing part (\d+) of (\d+)")
_STAGES = ["Downloading", "Converting…", "Transcribing"]
EDIT_SECONDS = 1.5  # PROGRESS_EDIT_SECONDS here: shorter than the default 5 s


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> MediaLibrary:
    return MediaLibrary(tmp_path_factory.mktemp("media"))


@pytest.fixture(scope="session")
def two_hours(media: MediaLibrary) -> bytes:
    """12 MB of ogg/opus at 16 kbit/s: under the cloud's 20 MB, over the API's 1500 s."""
    return media.sectioned(PITCHES, SECTION_SECONDS).read_bytes()


@pytest.fixture
async def api() -> AsyncIterator[FakeTranscriptionAPI]:
    """The fake API, measuring each upload with ffprobe and keeping its bytes."""
    async with FakeTranscriptionAPI(API_KEY, check_duration=True, keep_uploads=True) as fake:
        yield fake


# [mm:ss], or [h:mm:ss] past an hour.
_HEADED = re.compile(r"\[(?:(\d+):)?(\d\d):(\d\d)\]\n([^\n]*)")


async def send_two_hours(bot: RunningBot, tg: FakeTelegram, data: bytes) -> int:
    return await send(
        bot,
        tg,
        data,
        "audio",
        suffix=".ogg",
        duration=HOURS_2,
        mime_type="audio/ogg",
        file_name="lecture.ogg",
    )


async def test_two_hour_recording_is_split_under_the_api_limits_and_joined_in_order(
    bot: RunningBot,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    two_hours: bytes,
    tmp_path: Path,
) -> None:
    message_id = await send_two_hours(bot, tg, two_hours)

    text = await outcome(tg, message_id, timeout=60)

    parts = api.requests
    assert len(parts) >= HOURS_2 / API_MAX_SECONDS
    assert all(part.ok for part in parts), [(p.status, p.error_code) for p in parts]
    assert all(part.size <= API_MAX_BYTES for part in parts)
    assert all(part.duration_seconds is not None for part in parts)
    assert all(part.duration_seconds <= API_MAX_SECONDS for part in parts)  # type: ignore[operator]
    # Each part's opus stream starts with its codec's lead-in (a few hundred ms, decoded away).
    covered = sum(part.duration_seconds or 0 for part in parts)
    assert covered == pytest.approx(HOURS_2, abs=0.5 * len(parts))

    pitches = {part.sha256: start_frequency(part.data, tmp_path) for part in parts}
    sections = [round((pitch - PITCHES[0]) / 150) for pitch in sorted(pitches.values())]
    assert sections == sorted(set(sections)), "two parts start in one section"
    in_recording_order = sorted(parts, key=lambda part: pitches[part.sha256])
    # Each part is headed by where it starts in the recording.
    sections_shown = _HEADED.findall(text)
    assert [body for *_, body in sections_shown] == [p.text for p in in_recording_order]
    starts = [int(h or 0) * 3600 + int(m) * 60 + int(s) for h, m, s, _ in sections_shown]
    assert starts[0] == 0
    expected = [
        sum(p.duration_seconds or 0 for p in in_recording_order[:i]) for i in range(len(parts))
    ]
    assert starts == pytest.approx(expected, abs=1 + 0.5 * len(parts))

    # Cut in the silences between tones: no part ends or begins in the middle of a sound.
    edges = [edge_peaks(part.data, tmp_path) for part in in_recording_order]
    assert all(end < QUIET for _, end in edges[:-1]), edges
    assert all(start < QUIET for start, _ in edges[1:]), edges


async def test_placeholder_shows_progress_on_long_work(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, two_hours: bytes
) -> None:
    # Four parts at once, a second each: the first four are done well before the rest, and
    # the parts alone outlast an interval, however fast ffmpeg cuts (on an idle machine it
    # cut two hours within the default 5 s, and no note was shown).
    api.delay = 1.0

    async with bot_factory(progress_edit_seconds=EDIT_SECONDS) as bot:
        message_id = await send_two_hours(bot, tg, two_hours)
        final = await outcome(tg, message_id, timeout=60)
    placeholder = reply_to(tg, message_id)
    assert placeholder is not None
    shown = placeholder.history
    assert shown[0] == "🎙 Transcribing…"
    notes = [text or "" for text in shown[1:]]
    assert notes, "cutting and transcribing take seconds: at least that is shown"
    # Downloading, converting, transcribing: in that order, each part counted out of all.
    stages = [_STAGES.index(text.split()[1]) for text in notes]
    assert stages == sorted(stages), notes
    parts = [tuple(map(int, m.groups())) for t in notes if (m := _PROGRESS.search(t))]
    assert all(total == len(api.requests) for _, total in parts), notes
    assert [part for part, _ in parts] == sorted(part for part, _ in parts)
    # At most one edit every PROGRESS_EDIT_SECONDS, counted from the placeholder.
    times = [c.at for c in tg.calls("sendMessage") + tg.calls("editMessageText") if c.ok]
    gaps = [later - earlier for earlier, later in itertools.pairwise(sorted(times)[:-1])]
    assert all(gap >= EDIT_SECONDS - 0.05 for gap in gaps), gaps
    assert final.startswith("[00:00]\ntranscript ")


async def test_cancelled_long_job_leaves_no_ffmpeg_and_no_files(
    bot_factory: BotFactory,
    tg: FakeTelegram,
    two_hours: bytes,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    async with bot_factory(shutdown_grace_seconds=0) as bot:
        await send_two_hours(bot, tg, two_hours)
        # Waited for by itself, not by the "Converting…" note: that note is sent only when the
        # chat has room to spare right after its placeholder, so it may never come.
        await eventually(lambda: bool(child_processes()), timeout=15)  # ffmpeg at work on it

        await bot.shutdown()  # the job is cancelled mid-way

        assert child_processes() == set()
        assert list(temp.iterdir()) == []
