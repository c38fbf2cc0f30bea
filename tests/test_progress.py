"""Progress with the time left, in a long job's placeholder: "Downloading 38 %", "Converting…",
"Transcribing part 3 of 8, about 2 min left", edited at most once per interval.

A Whisper-style model with a 70 s request limit (MODELS_FILE) cuts a recording into parts of
about 65 s: a tone WAV (slow enough to convert to be seen converting), or 280 s of ogg/opus
(cut without re-encoding, quickly) into five. The fake API takes a set time per part (its
`delay`): the engine's speed the bot measures.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot import i18n, texts
from bot.config import Settings
from bot.progress import EngineSpeeds, time_left
from tests.conftest import BotFactory, RunningBot, next_message_id, next_update_id
from tests.fakes import FakeTelegram, FakeTranscriptionAPI, media_update, text_update
from tests.fakes.file_server import FakeFileServer
from tests.fakes.telegram_models import Call
from tests.media_fixtures import USER, MediaLibrary, needs_media_tools, reply_to, send

MODEL = "whisper-large-v3-turbo"
SHORT_PARTS = f"[models.{MODEL}]\nmax_audio_seconds = 70\n"  # parts of at most ~65 s
PART_SECONDS = 2.0  # the fake engine's time for one part
GROUP = -100424242
_PART = re.compile(r"^🎙 Transcribing part (\d) of (\d)(…|, about (\d+) (s|min) left)$")
_PERCENT = re.compile(r"^🎙 Downloading (\d+) %$")
_SO_FAR = re.compile(r"^🎙 Downloading… (\d+(?:\.\d)?) MB so far$")


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> MediaLibrary:
    return MediaLibrary(tmp_path_factory.mktemp("media"))


@pytest.fixture
async def files() -> AsyncIterator[FakeFileServer]:
    async with FakeFileServer() as server:
        yield server


def short_parts(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    """Settings: the model with short parts, every transcript fresh (no cache)."""
    models = tmp_path / "models.toml"
    models.write_text(SHORT_PARTS)
    return {
        "transcription_models": MODEL,
        "models_file": str(models),
        "cache_transcripts_hours": 0,
        **overrides,
    }


async def send_audio(
    bot: RunningBot, tg: FakeTelegram, data: bytes, seconds: int, suffix: str = ".ogg"
) -> int:
    return await send(bot, tg, data, "audio", suffix=suffix, duration=seconds)


def edits_of(tg: FakeTelegram, chat_id: int, message_id: int) -> list[Call]:
    return [
        call
        for call in tg.calls("editMessageText")
        if call.ok
        and call.params.get("chat_id") == chat_id
        and call.params.get("message_id") == message_id
    ]


async def finished(tg: FakeTelegram, chat_id: int, message_id: int) -> list[Call]:
    """The placeholder's edits, once the last of them is not a progress note."""

    def done() -> bool:
        placeholder = reply_to_in(tg, chat_id, message_id)
        text = placeholder.text or "🎙" if placeholder is not None else "🎙"
        return not text.startswith("🎙") and not text.endswith(" …")  # nor the text so far

    await tg.wait_for(done, timeout=60)
    placeholder = reply_to_in(tg, chat_id, message_id)
    assert placeholder is not None
    return edits_of(tg, chat_id, placeholder.message_id)


def reply_to_in(tg: FakeTelegram, chat_id: int, message_id: int) -> Any:
    return next((m for m in tg.bot_messages(chat_id) if m.reply_to == message_id), None)


def notes(edits: list[Call]) -> list[str]:
    """The progress notes shown, in order (the last edit is the transcript)."""
    return [str(call.params["text"]) for call in edits[:-1]]


def parts_shown(shown: list[str]) -> list[tuple[int, int, str | None]]:
    found = [_PART.match(text) for text in shown]
    return [(int(m[1]), int(m[2]), m[4] and f"{m[4]} {m[5]}") for m in found if m]


# --- over HTTP -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sectioned(media: MediaLibrary) -> bytes:
    """280 s of ogg/opus with a silence every 20 s: cut into five parts, without re-encoding."""
    return media.sectioned([300, 450], 140).read_bytes()


@needs_media_tools
async def test_a_recording_to_convert_shows_converting_then_its_parts_then_the_transcript(
    bot_factory: BotFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    media: MediaLibrary,
    tmp_path: Path,
) -> None:
    api.delay = 1.0
    data = media.tone_wav(300).read_bytes()
    async with bot_factory(**short_parts(tmp_path, progress_edit_seconds=0.05)) as bot:
        message_id = await send_audio(bot, tg, data, 300, ".wav")
        edits = await finished(tg, USER, message_id)

    placeholder = reply_to(tg, message_id)
    assert placeholder is not None
    assert placeholder.history[0] == "🎙 Transcribing…"
    shown = [text for text in notes(edits) if not _PERCENT.match(text)]  # a download may show
    # ffmpeg takes about a second of CPU over 300 s of WAV; then five parts, four at once.
    assert shown[:2] == ["🎙 Converting…", "🎙 Transcribing part 1 of 5…"]
    assert len(api.requests) == 5
    assert edits[-1].params["text"].startswith("[00:00]\ntranscript ")


@needs_media_tools
async def test_the_time_left_is_measured_then_shown_and_comes_true(
    bot_factory: BotFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    sectioned: bytes,
    tmp_path: Path,
) -> None:
    api.delay = PART_SECONDS
    async with bot_factory(**short_parts(tmp_path, progress_edit_seconds=0.2)) as bot:
        first = await finished(tg, USER, await send_audio(bot, tg, sectioned, 280))
        second = await finished(tg, USER, await send_audio(bot, tg, sectioned, 280))

    # The bot's first long job: no time before a part of it is done, then the time left.
    parts = parts_shown(notes(first))
    assert parts[0] == (1, 5, None)
    assert parts[-1][0] > 1, notes(first)
    assert parts[-1][2] == "10 s", notes(first)
    assert all(left is None for part, _, left in parts if part == 1)
    assert len(api.requests) == 10
    # Measured on the first job's parts, the second's time is shown from its first note.
    timed = [call for call in second[:-1] if parts_shown([str(call.params["text"])])]
    assert parts_shown(notes(second))[0] == (1, 5, "10 s"), notes(second)
    # Five parts, four at a time: two rounds of PART_SECONDS, each note under "about 10 s".
    assert {left for _, _, left in parts_shown(notes(second))} == {"10 s"}
    for call in timed:
        assert second[-1].at - call.at <= 10 + 1  # it came true (a little slack for the bot)


@needs_media_tools
async def test_progress_is_edited_at_most_once_per_interval_in_groups(
    bot_factory: BotFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    sectioned: bytes,
    tmp_path: Path,
) -> None:
    api.delay = PART_SECONDS
    settings = short_parts(tmp_path, progress_edit_seconds=0.05, progress_group_edit_seconds=1.5)
    async with bot_factory(**settings) as bot:
        message_id = next_message_id()
        file = tg.add_file(sectioned, file_path=f"music/file_{message_id}.ogg")
        tg.add_message(GROUP, message_id)
        update = media_update(
            next_update_id(),
            "audio",
            chat_id=GROUP,
            user_id=7,
            message_id=message_id,
            file=file,
            duration=280,
            chat_type="group",
            mime_type="audio/ogg",
        )
        assert (await bot.deliver(update)).status_code == 200
        edits = await finished(tg, GROUP, message_id)

    placeholder = reply_to_in(tg, GROUP, message_id)
    shown = notes(edits)
    assert len(shown) >= 2, shown  # parts, then the time left, over about 4 s
    sent = [placeholder_sent_at(tg, GROUP, placeholder.message_id)] + [c.at for c in edits[:-1]]
    gaps = [later - earlier for earlier, later in itertools.pairwise(sent)]
    assert min(gaps) >= 1.5 - 0.05, gaps


@needs_media_tools
async def test_a_slow_link_shows_how_much_is_downloaded(
    bot_factory: BotFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    files: FakeFileServer,
    media: MediaLibrary,
) -> None:
    data = media.audio("mp3").read_bytes()
    api.set_transcript(data, "the words behind the link")
    url = files.slow("/talks/slow.mp3", data, pieces=6, every=0.4)
    async with bot_factory(link_allow_private_networks=True, progress_edit_seconds=0.3) as bot:
        message_id = await send_link(bot, tg, url, USER, "private")
        edits = await finished(tg, USER, message_id)

    percents = [int(m[1]) for text in notes(edits) if (m := _PERCENT.match(text))]
    assert len(percents) >= 2, notes(edits)
    assert percents == sorted(set(percents))
    assert percents[0] > 0
    assert percents[-1] <= 100
    assert edits[-1].params["text"] == "the words behind the link"


def placeholder_sent_at(tg: FakeTelegram, chat_id: int, message_id: int) -> float:
    return next(
        call.at
        for call in tg.calls("sendMessage")
        if call.ok
        and call.params.get("chat_id") == chat_id
        and call.result["message_id"] == message_id
    )


async def test_a_link_of_unknown_size_shows_the_megabytes_so_far(
    bot_factory: BotFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    files: FakeFileServer,
    media: MediaLibrary,
) -> None:
    data = media.tone_wav(60).read_bytes()  # 1.8 MB
    api.set_transcript(data, "the words behind the link")
    url = files.slow("/talks/chunked.wav", data, pieces=6, every=0.4, length=False)
    async with bot_factory(link_allow_private_networks=True, progress_edit_seconds=0.3) as bot:
        message_id = await send_link(bot, tg, url, USER, "private")
        edits = await finished(tg, USER, message_id)

    amounts = [float(m[1]) for text in notes(edits) if (m := _SO_FAR.match(text))]
    assert len(amounts) >= 2, notes(edits)
    assert amounts == sorted(amounts)
    assert 0 < amounts[0] <= amounts[-1] <= round(len(data) / 2**20, 1)
    assert edits[-1].params["text"] == "the words behind the link"


async def test_a_long_download_in_a_group_gets_a_placeholder_with_its_progress(
    bot_factory: BotFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    files: FakeFileServer,
    media: MediaLibrary,
) -> None:
    # In groups a note of unknown length never gets a placeholder; a download still going
    # after 3 s is a long wait, and gets one.
    data = media.audio("mp3").read_bytes()
    api.set_transcript(data, "asked for in the group")
    url = files.slow("/talks/slow.mp3", data, pieces=10, every=0.6)
    settings = {"link_allow_private_networks": True, "progress_group_edit_seconds": 0.5}
    async with bot_factory(**settings) as bot:
        shared = await send_link(bot, tg, url, GROUP, "group")
        command_id = next_message_id()
        tg.add_message(GROUP, command_id, text="/transcribe")
        update = text_update(
            next_update_id(),
            chat_id=GROUP,
            user_id=7,
            message_id=command_id,
            text="/transcribe",
            chat_type="group",
            reply_to=tg.message_json(GROUP, shared),
        )
        assert (await bot.deliver(update)).status_code == 200
        edits = await finished(tg, GROUP, shared)

    percents = [int(m[1]) for text in notes(edits) if (m := _PERCENT.match(text))]
    assert percents, notes(edits)
    assert percents == sorted(percents)
    assert edits[-1].params["text"].endswith("asked for in the group")


@needs_media_tools
async def test_notes_are_skipped_when_the_chat_has_no_room_to_spare_and_the_text_never_waits(
    bot_factory: BotFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    sectioned: bytes,
    tmp_path: Path,
) -> None:
    # Two messages in any 20 s in this chat: the placeholder takes one, the transcript needs
    # the other, and a note would leave none for it: every note is skipped, none waits.
    api.delay = 1.0
    limits = {"telegram_chat_rate_per_second": 0.1, "telegram_chat_burst": 2}
    async with bot_factory(**short_parts(tmp_path, progress_edit_seconds=0.05, **limits)) as bot:
        message_id = await send_audio(bot, tg, sectioned, 280)
        edits = await finished(tg, USER, message_id)

    assert [str(call.params["text"]) for call in edits][:-1] == []
    placeholder = reply_to(tg, message_id)
    assert placeholder is not None
    took = edits[-1].at - placeholder_sent_at(tg, USER, placeholder.message_id)
    assert took < 15  # not an interval of the chat's window behind a note


@needs_media_tools
async def test_the_text_streaming_in_takes_the_placeholder_over_from_the_time_left(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, media: MediaLibrary
) -> None:
    # Whole recordings, streamed (gpt-4o-mini-transcribe). 40 s taking about 2.5 s measure the
    # engine; 200 s are then expected to take about 12.5 s: "about 20 s left", and "about
    # 10 s left" 2.5 s in, when the text has been streaming in for 2 s: too late, it is the
    # text's place now.
    api.delay, api.stream_delay = 0.5, 0.4
    first, second = media.tone_wav(40).read_bytes(), media.tone_wav(200).read_bytes()
    words = " ".join(f"word{i}" for i in range(10))  # five pieces of two words
    api.set_transcript(first, words)
    api.set_transcript(second, words)
    async with bot_factory(progress_edit_seconds=0.2, cache_transcripts_hours=0) as bot:
        await finished(tg, USER, await send_audio(bot, tg, first, 40, ".wav"))
        api.stream_delay = 0.8  # the text streams for 3.2 s
        message_id = await send_audio(bot, tg, second, 200, ".wav")
        edits = await finished(tg, USER, message_id)

    shown = [str(call.params["text"]) for call in edits]
    assert shown[0].startswith("🎙 Transcribing, about "), shown
    first_text = next(i for i, text in enumerate(shown) if not text.startswith("🎙"))
    assert shown[first_text].endswith(" …")  # the text so far
    assert not any(text.startswith("🎙") for text in shown[first_text:]), shown


async def send_link(bot: RunningBot, tg: FakeTelegram, url: str, chat_id: int, kind: str) -> int:
    """A message that is only `url`; its id."""
    message_id = next_message_id()
    tg.add_message(chat_id, message_id, text=url)
    update = text_update(
        next_update_id(),
        chat_id=chat_id,
        user_id=7 if chat_id < 0 else chat_id,
        message_id=message_id,
        text=url,
        chat_type=kind,
    )
    assert (await bot.deliver(update)).status_code == 200
    return message_id


# --- the rules, as plain functions -----------------------------------------------------------


def test_time_left_counts_the_parts_running_and_those_waiting_for_a_slot() -> None:
    # Two slots, 0.1 s per second of audio: parts of 100 s take 10 s each.
    assert time_left(0.0, [], [100, 100, 100], rate=0.1, slots=2) == pytest.approx(20)
    # One running since 4 s ago (6 s to go), one waiting: it starts in the free slot now.
    assert time_left(4.0, [(0.0, 100)], [100], rate=0.1, slots=2) == pytest.approx(10)
    # Both slots busy: the waiting part starts when the first ends.
    left = time_left(4.0, [(0.0, 100), (2.0, 100)], [100], rate=0.1, slots=2)
    assert left == pytest.approx(16)
    # A part taking longer than measured is not "done in the past".
    assert time_left(50.0, [(0.0, 100)], [], rate=0.1, slots=4) == 0


def test_engine_speed_is_measured_on_long_parts_only() -> None:
    speeds = EngineSpeeds()
    speeds.measured("m", audio_seconds=5, wall_seconds=2)  # overhead, not speed
    assert speeds.rate("m") is None
    speeds.measured("m", audio_seconds=100, wall_seconds=10)
    speeds.measured("m", audio_seconds=100, wall_seconds=20)
    assert speeds.rate("m") == pytest.approx(0.15)
    assert speeds.rate("other") is None


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (3, "about 10 s left"),
        (31, "about 40 s left"),
        (55, "about 1 min left"),
        (130, "about 2 min left"),
        (600, "about 10 min left"),
    ],
)
def test_time_left_reads_in_tens_of_seconds_then_minutes(seconds: float, said: str) -> None:
    assert texts.time_left(seconds) == said


def test_a_download_of_unknown_size_reads_in_megabytes() -> None:
    assert texts.downloading(400 * 1024, None) == "🎙 Downloading… 0.4 MB so far"
    assert texts.downloading(12 * 2**20 + 5, None) == "🎙 Downloading… 12 MB so far"
    assert texts.downloading(38, 100) == "🎙 Downloading 38 %"


def test_progress_notes_are_translated() -> None:
    with i18n.use_language("ru"):
        assert texts.transcribing(3, 8, 120) == "🎙 Расшифровываю часть 3 из 8, осталось около 2 мин"
        assert texts.downloading(38, 100) == "🎙 Скачиваю: 38 %"
    with i18n.use_language("vi"):
        assert texts.transcribing(3, 8, None) == "🎙 Đang chuyển phần 3/8 thành văn bản…"
        assert texts.converting() == "🎙 Đang chuyển đổi định dạng…"


def test_progress_intervals_default_to_5_s_and_15_s_in_groups() -> None:
    settings = Settings(_env_file=None, telegram_bot_token="1:abcdef", openai_api_key="sk-key")
    assert (settings.progress_edit_seconds, settings.progress_group_edit_seconds) == (5, 15)
