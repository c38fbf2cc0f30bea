"""What bot.audio does to real files made with ffmpeg: probe, extract, convert, split."""

from __future__ import annotations

import asyncio
import itertools
import shutil
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

from bot import ffmpeg as bot_ffmpeg
from bot.audio import (
    MAX_UPLOAD_BYTES,
    AudioInfo,
    AudioPart,
    api_upload_name,
    check_duration,
    ffmpeg_available,
    measure,
    plan_cuts,
    prepare_parts,
    probe,
)
from bot.errors import AudioTooLong, CorruptAudio, FfmpegMissing, UnsupportedAudio
from bot.formats import sniff_file
from tests.media_fixtures import MediaLibrary, child_processes

needs_ffmpeg = pytest.mark.skipif(
    shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
    reason="ffmpeg/ffprobe not installed",
)
needs_proc = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

TONE = ("-f", "lavfi", "-i", "sine=frequency=440:duration=3")
PICTURE = ("-f", "lavfi", "-i", "testsrc=size=64x64:rate=10:duration=3")
OPUS = ("-c:a", "libopus", "-b:a", "32k")


def ffmpeg(*args: str | Path) -> None:
    command = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    subprocess.run([*command, *map(str, args)], check=True)


def make(path: Path, *args: str) -> Path:
    """Write path with ffmpeg from the given inputs and output options."""
    ffmpeg(*args, path)
    return path


def minute_of_tone_then_silence(directory: Path) -> Path:
    """60 s of ogg/opus: a 50 s tone, then 10 s of silence."""
    silence = "anullsrc=sample_rate=48000:channel_layout=mono:duration=10"
    tone = "sine=frequency=440:sample_rate=48000:duration=50"
    inputs = ("-f", "lavfi", "-i", tone, "-f", "lavfi", "-i", silence)
    mixed = ("-filter_complex", "[0][1]concat=n=2:v=0:a=1", "-ac", "1", *OPUS)
    return make(directory / "minute.ogg", *inputs, *mixed)


def repeated(minute: Path, times: int, path: Path) -> Path:
    """The minute looped `times` times, packets copied: quick even for hours."""
    ffmpeg("-stream_loop", str(times - 1), "-i", minute, "-c", "copy", path)
    return path


def decoded_seconds(path: Path) -> float:
    """How long the audio lasts when decoded: what the API will hear, lead-ins and all."""
    command = ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(path)]
    pcm = subprocess.run(
        [*command, "-ac", "1", "-ar", "8000", "-f", "s16le", "-"], check=True, capture_output=True
    )
    return len(pcm.stdout) / 16000


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture(scope="module")
def two_hours(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("long")
    return repeated(minute_of_tone_then_silence(directory), 120, directory / "two-hours.oga")


@pytest.fixture
def ten_minute_wav(tmp_path: Path) -> Path:
    tone = "sine=frequency=440:sample_rate=16000:duration=600"
    return make(tmp_path / "long.wav", "-f", "lavfi", "-i", tone, "-c:a", "pcm_s16le")


# --- Probing and naming ---------------------------------------------------------------------

ACCEPTED = [
    ("voice.oga", ("-f", "ogg", *OPUS), "ogg", "opus", "audio.ogg"),
    ("note.ogg", ("-c:a", "libvorbis"), "ogg", "vorbis", "audio.ogg"),
    ("song.mp3", ("-c:a", "libmp3lame"), "mp3", "mp3", "audio.mp3"),
    ("memo.wav", ("-c:a", "pcm_s16le"), "wav", "pcm_s16le", "audio.wav"),
    ("memo.flac", ("-c:a", "flac"), "flac", "flac", "audio.flac"),
    ("memo.m4a", ("-c:a", "aac"), "mov,mp4,m4a,3gp,3g2,mj2", "aac", "audio.m4a"),
    ("memo.webm", OPUS, "matroska,webm", "opus", "audio.webm"),
]


@needs_ffmpeg
@pytest.mark.parametrize(("name", "options", "format_name", "codec", "upload_name"), ACCEPTED)
async def test_accepted_audio_is_uploaded_as_it_is(
    tmp_path: Path,
    workdir: Path,
    name: str,
    options: tuple[str, ...],
    format_name: str,
    codec: str,
    upload_name: str,
) -> None:
    src = make(tmp_path / name, *TONE, *options)

    info = await probe(src)
    parts = await prepare_parts(src, info, workdir)

    assert (info.format_name, info.audio_codec, info.has_video) == (format_name, codec, False)
    assert info.duration is not None
    assert info.duration == pytest.approx(3, abs=0.1)
    assert info.size == src.stat().st_size
    assert info.bit_rate is not None
    assert api_upload_name(info) == upload_name
    # Measured from the packets: an m4a's encoder priming adds ~20 ms to its header's figure.
    [part] = parts
    assert (part.path, part.filename, part.start) == (src, upload_name, 0.0)
    assert part.duration == pytest.approx(info.duration, abs=0.05)
    assert list(workdir.iterdir()) == []


@needs_ffmpeg
async def test_telegram_voice_note_oga_is_uploaded_as_ogg(tmp_path: Path) -> None:
    src = make(tmp_path / "file_12.oga", *TONE, "-f", "ogg", *OPUS)

    assert api_upload_name(await probe(src), stem="voice") == "voice.ogg"


@needs_ffmpeg
async def test_mp3_with_cover_art_is_audio_not_video(tmp_path: Path) -> None:
    cover = make(
        tmp_path / "cover.png", "-f", "lavfi", "-i", "color=red:size=32x32", "-frames:v", "1"
    )
    song = make(tmp_path / "plain.mp3", *TONE, "-c:a", "libmp3lame")
    tagged = tmp_path / "song.mp3"
    ffmpeg("-i", song, "-i", cover, "-map", "0", "-map", "1", "-c", "copy", tagged)

    info = await probe(tagged)

    assert (info.format_name, info.audio_codec, info.has_video) == ("mp3", "mp3", False)
    assert api_upload_name(info) == "audio.mp3"


# --- Conversion and extraction --------------------------------------------------------------

CONVERTED = [
    ("memo.wma", ("-c:a", "wmav2"), "asf", "wmav2", "audio.ogg", "opus"),
    ("memo.aiff", ("-c:a", "pcm_s16be"), "aiff", "pcm_s16be", "audio.ogg", "opus"),
    (
        "memo.spx",
        ("-c:a", "libspeex", "-ar", "16000", "-f", "ogg"),
        "ogg",
        "speex",
        "audio.ogg",
        "opus",
    ),
    # aac fits an m4a as it is: the ADTS stream and a matroska track are copied, not re-encoded.
    ("memo.aac", ("-c:a", "aac"), "aac", "aac", "audio.m4a", "aac"),
    ("memo.mka", ("-c:a", "aac", "-f", "matroska"), "matroska,webm", "aac", "audio.m4a", "aac"),
]


@needs_ffmpeg
@pytest.mark.parametrize(
    ("name", "options", "format_name", "codec", "upload_name", "upload_codec"), CONVERTED
)
async def test_other_audio_formats_become_one_accepted_file(
    tmp_path: Path,
    workdir: Path,
    name: str,
    options: tuple[str, ...],
    format_name: str,
    codec: str,
    upload_name: str,
    upload_codec: str,
) -> None:
    src = make(tmp_path / name, *TONE, *options)

    info = await probe(src)
    [part] = await prepare_parts(src, info, workdir)
    uploaded = await probe(part.path)

    assert (info.format_name, info.audio_codec) == (format_name, codec)
    assert api_upload_name(info) is None
    assert part.path.parent == workdir
    assert part.filename == upload_name == api_upload_name(uploaded)
    assert uploaded.audio_codec == upload_codec
    assert part.start == 0
    assert part.duration == pytest.approx(3, abs=0.15)
    assert list(workdir.iterdir()) == [part.path]


@needs_ffmpeg
async def test_wma_speech_is_converted_to_small_mono_opus(tmp_path: Path, workdir: Path) -> None:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    speech = tmp_path / "speech.wav"
    text = "Hello, this voice note was recorded on an old phone. Please transcribe it."
    subprocess.run(["espeak-ng", "-w", str(speech), text], check=True)
    src = make(tmp_path / "speech.wma", "-i", str(speech), "-c:a", "wmav2", "-b:a", "128k")

    [part] = await prepare_parts(src, await probe(src), workdir)
    uploaded = await probe(part.path)

    assert (uploaded.format_name, uploaded.audio_codec) == ("ogg", "opus")
    assert uploaded.duration == pytest.approx((await probe(speech)).duration, abs=0.15)
    assert uploaded.bit_rate is not None
    assert uploaded.bit_rate < 48_000
    assert uploaded.size < src.stat().st_size


@needs_ffmpeg
async def test_streamed_webm_without_duration_is_remuxed_to_ogg(
    tmp_path: Path, workdir: Path
) -> None:
    # A browser's MediaRecorder writes webm as a stream: no duration in the header.
    src = tmp_path / "recording.webm"
    with src.open("wb") as out:
        command = ["ffmpeg", "-nostdin", "-loglevel", "error", *TONE, *OPUS, "-f", "webm", "-"]
        subprocess.run(command, stdout=out, check=True)

    info = await probe(src)
    [part] = await prepare_parts(src, info, workdir)
    uploaded = await probe(part.path)

    assert (info.audio_codec, info.duration) == ("opus", None)
    assert part.filename == "audio.ogg"
    assert (uploaded.format_name, uploaded.audio_codec) == ("ogg", "opus")
    assert part.duration == pytest.approx(3, abs=0.1)


VIDEOS = [
    ("round-note.mp4", ("-c:v", "libx264", "-c:a", "aac"), "audio.m4a", "aac"),
    ("clip.webm", ("-c:v", "libvpx", "-c:a", "libopus"), "audio.ogg", "opus"),
    ("clip.mov", ("-c:v", "mjpeg", "-c:a", "pcm_s16le"), "audio.ogg", "opus"),
]


@needs_ffmpeg
@pytest.mark.parametrize(("name", "options", "upload_name", "upload_codec"), VIDEOS)
async def test_only_the_audio_track_of_a_video_is_uploaded(
    tmp_path: Path,
    workdir: Path,
    name: str,
    options: tuple[str, ...],
    upload_name: str,
    upload_codec: str,
) -> None:
    src = make(tmp_path / name, *PICTURE, *TONE, "-map", "0:v", "-map", "1:a", *options)

    info = await probe(src)
    [part] = await prepare_parts(src, info, workdir)
    uploaded = await probe(part.path)

    assert info.has_video is True
    assert api_upload_name(info) is None
    assert part.filename == upload_name
    assert (uploaded.has_video, uploaded.audio_codec) == (False, upload_codec)
    assert uploaded.duration == pytest.approx(3, abs=0.15)


# --- Files that are not audio ---------------------------------------------------------------


@needs_ffmpeg
async def test_empty_file_is_corrupt(tmp_path: Path) -> None:
    empty = tmp_path / "voice.oga"
    empty.touch()

    with pytest.raises(CorruptAudio, match="empty"):
        await probe(empty)


@needs_ffmpeg
async def test_random_bytes_are_corrupt(tmp_path: Path) -> None:
    junk = tmp_path / "voice.oga"
    junk.write_bytes(bytes(range(256)) * 64)

    with pytest.raises(CorruptAudio):
        await probe(junk)


@needs_ffmpeg
async def test_video_without_sound_is_unsupported(tmp_path: Path) -> None:
    silent_film = make(tmp_path / "film.mp4", *PICTURE, "-c:v", "libx264")

    with pytest.raises(UnsupportedAudio, match="no audio"):
        await probe(silent_film)


@needs_ffmpeg
async def test_picture_is_unsupported(tmp_path: Path) -> None:
    picture = make(tmp_path / "photo.png", "-f", "lavfi", "-i", "color=blue", "-frames:v", "1")

    with pytest.raises(UnsupportedAudio):
        await probe(picture)


@needs_ffmpeg
async def test_missing_ffprobe_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = make(tmp_path / "voice.ogg", *TONE, *OPUS)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    ffmpeg_available.cache_clear()
    try:
        assert ffmpeg_available() is False
        with pytest.raises(FfmpegMissing):
            await probe(src)
    finally:
        ffmpeg_available.cache_clear()


def test_check_duration_refuses_audio_over_the_limit() -> None:
    info = AudioInfo("ogg", "opus", 3601.5, has_video=False, size=1000, bit_rate=32000)

    check_duration(info, 3602)
    check_duration(AudioInfo("ogg", "opus", None, False, 1000, None), 1)
    with pytest.raises(AudioTooLong) as raised:
        check_duration(info, 3600)
    assert (raised.value.seconds, raised.value.limit) == (3601.5, 3600)


# --- Where to cut ---------------------------------------------------------------------------


def test_plan_cuts_leaves_short_audio_whole() -> None:
    assert plan_cuts(100.0, [], 100.0) == []


def test_plan_cuts_cuts_at_the_limit_when_there_is_no_silence() -> None:
    assert plan_cuts(250.0, [], 100.0) == [100.0, 200.0]


def test_plan_cuts_picks_the_middle_of_the_latest_silence_before_the_limit() -> None:
    silences = [(50.0, 52.0), (84.0, 86.0), (90.0, 92.0), (150.0, 152.0)]

    assert plan_cuts(250.0, silences, 100.0) == [91.0, 191.0]


def test_plan_cuts_ignores_silences_long_before_the_limit() -> None:
    assert plan_cuts(150.0, [(10.0, 12.0)], 100.0) == [100.0]


def test_plan_cuts_skips_a_silence_with_too_little_of_it_inside_the_window() -> None:
    # (99.9, 103.0) has only 0.1 s before the limit: cutting there would clip the next sound.
    assert plan_cuts(150.0, [(80.0, 82.0), (99.9, 103.0)], 100.0) == [81.0]


def test_plan_cuts_keeps_a_silence_that_runs_past_the_limit_inside_the_part() -> None:
    assert plan_cuts(150.0, [(95.0, 120.0)], 100.0) == [97.5]


# --- Splitting ------------------------------------------------------------------------------


async def assert_parts_cover(
    parts: list[AudioPart],
    duration: float,
    workdir: Path,
    max_bytes: int,
    max_seconds: float,
    *,
    decode: bool = True,
) -> None:
    """Parts are in order, back to back, in workdir, each measured under both limits."""
    if decode:
        # Cut exactly: no part carries a lead-in from before its cut (ffprobe would not tell).
        decoded = [decoded_seconds(part.path) for part in parts]
        assert decoded == pytest.approx([part.duration for part in parts], abs=0.05)
    assert parts[0].start == 0
    for part, following in itertools.pairwise(parts):
        assert following.start > part.start
        assert following.start == pytest.approx(part.start + part.duration, abs=0.1)
    assert sum(part.duration for part in parts) == pytest.approx(duration, abs=0.05 * len(parts))
    for part in parts:
        measured = await probe(part.path)
        assert part.path.parent == workdir
        assert part.filename.endswith(".ogg")
        assert (measured.format_name, measured.audio_codec) == ("ogg", "opus")
        assert measured.size <= max_bytes
        assert measured.duration is not None
        assert measured.duration <= max_seconds
        assert part.duration == measured.duration
    assert sorted(workdir.iterdir()) == sorted(part.path for part in parts)


@needs_ffmpeg
async def test_two_hour_voice_note_is_split_under_both_limits(
    two_hours: Path, workdir: Path
) -> None:
    info = await probe(two_hours)
    assert info.duration is not None
    assert info.duration == pytest.approx(7200, abs=1)
    assert info.size > MAX_UPLOAD_BYTES

    parts = await prepare_parts(two_hours, info, workdir, max_seconds=1400)

    assert len(parts) == 6
    # Decoding two hours again would double the test's time; the shorter splits check that.
    await assert_parts_cover(parts, info.duration, workdir, MAX_UPLOAD_BYTES, 1400, decode=False)
    # Each minute ends with 10 s of silence (50 s to 60 s): every cut falls inside one.
    assert all(50 < part.start % 60 < 60 for part in parts[1:])


@needs_ffmpeg
async def test_small_byte_limit_splits_by_size(tmp_path: Path, workdir: Path) -> None:
    src = repeated(minute_of_tone_then_silence(tmp_path), 3, tmp_path / "three.ogg")
    info = await probe(src)
    assert info.duration is not None

    parts = await prepare_parts(src, info, workdir, max_bytes=200_000)

    assert len(parts) >= info.size // 200_000 + 1
    await assert_parts_cover(parts, info.duration, workdir, 200_000, 1400)


@needs_ffmpeg
async def test_cuts_fall_in_the_middle_of_silences(tmp_path: Path, workdir: Path) -> None:
    src = repeated(minute_of_tone_then_silence(tmp_path), 10, tmp_path / "ten.ogg")
    info = await probe(src)
    assert info.duration is not None

    parts = await prepare_parts(src, info, workdir, max_seconds=130)

    # Silences at 110-120, 230-240, 350-360, 470-480 s: the latest in each part's last fifth.
    assert [part.start for part in parts] == pytest.approx([0, 115, 235, 355, 475], abs=0.1)
    await assert_parts_cover(parts, info.duration, workdir, MAX_UPLOAD_BYTES, 130)


@needs_ffmpeg
async def test_long_wav_is_converted_to_opus_then_split(tmp_path: Path, workdir: Path) -> None:
    tone = "sine=frequency=440:sample_rate=16000:duration=300"
    src = make(tmp_path / "long.wav", "-f", "lavfi", "-i", tone, "-c:a", "pcm_s16le")
    info = await probe(src)
    assert info.duration is not None

    parts = await prepare_parts(src, info, workdir, max_seconds=120)

    assert len(parts) == 3
    await assert_parts_cover(parts, info.duration, workdir, MAX_UPLOAD_BYTES, 120)


# --- ffmpeg is never left running -----------------------------------------------------------


@needs_ffmpeg
@needs_proc
async def test_timeout_kills_ffmpeg(ten_minute_wav: Path, workdir: Path) -> None:
    info = await probe(ten_minute_wav)
    started = time.monotonic()

    with pytest.raises(TimeoutError):
        await prepare_parts(ten_minute_wav, info, workdir, max_seconds=60, timeout=0.3)

    assert time.monotonic() - started < 1.5
    assert child_processes() == set()
    assert list(workdir.iterdir()) == []


@needs_ffmpeg
@needs_proc
async def test_cancellation_kills_ffmpeg(ten_minute_wav: Path, workdir: Path) -> None:
    info = await probe(ten_minute_wav)
    task = asyncio.create_task(prepare_parts(ten_minute_wav, info, workdir, max_seconds=60))
    deadline = time.monotonic() + 5
    while not child_processes() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert child_processes(), "ffmpeg never started"

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert child_processes() == set()
    assert list(workdir.iterdir()) == []


# --- Bounded: what is read from ffmpeg, its memory, how much of a long file is read -----------


@needs_ffmpeg
async def test_probe_of_a_huge_tag_reads_only_the_entries_it_needs(tmp_path: Path) -> None:
    # A 1 MB ID3 comment of control characters: ~6 MB of JSON escapes in a full -show_format.
    tagged = MediaLibrary(tmp_path).tagged_mp3(1024 * 1024)

    tracemalloc.start()
    try:
        info = await probe(tagged)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert (info.format_name, info.audio_codec) == ("mp3", "mp3")
    assert peak < 1024 * 1024  # less than the tag itself (a full -show_format: ~12 MB)


@needs_ffmpeg
@needs_proc
async def test_output_past_the_cap_is_refused_and_the_child_reaped(two_hours: Path) -> None:
    # Every packet of two hours as JSON: megabytes, when a probe's answer is a few hundred bytes.
    args = ["-v", "error", "-show_packets", "-of", "json", bot_ffmpeg.url(two_hours)]

    with pytest.raises(bot_ffmpeg.OutputTooLarge):
        await bot_ffmpeg.run("ffprobe", args, capture=True)

    assert child_processes() == set()


@needs_ffmpeg
async def test_ffmpeg_runs_under_a_memory_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = make(tmp_path / "voice.ogg", *TONE, *OPUS)
    monkeypatch.setattr(bot_ffmpeg, "MEMORY_LIMIT_BYTES", 16 * 1024 * 1024)

    with pytest.raises(CorruptAudio):  # it cannot even map its libraries in 16 MB
        await probe(src)


@needs_ffmpeg
async def test_measure_reads_packets_only_up_to_just_past_the_limit(tmp_path: Path) -> None:
    silence = MediaLibrary(tmp_path).silence(10, "webm")  # no duration in it anywhere

    assert (await probe(silence)).duration is None
    with pytest.raises(AudioTooLong) as raised:
        await measure(silence, 60)

    assert 60 < raised.value.seconds <= 61.2  # stopped there: ten hours were not read


@needs_ffmpeg
async def test_measure_tells_what_a_streamed_webm_holds(tmp_path: Path) -> None:
    assert await measure(MediaLibrary(tmp_path).live_webm(20)) == pytest.approx(20, abs=0.1)


@needs_ffmpeg
async def test_made_files_stop_at_the_recording_limit(tmp_path: Path, workdir: Path) -> None:
    src = MediaLibrary(tmp_path).live_webm(120)

    with pytest.raises(AudioTooLong) as raised:
        await prepare_parts(src, await probe(src), workdir, max_total_seconds=60)

    assert 60 < raised.value.seconds <= 61.2  # remuxed only up to the limit, then measured
    assert list(workdir.iterdir()) == []


@needs_ffmpeg
async def test_tags_are_not_copied_into_what_is_made(tmp_path: Path, workdir: Path) -> None:
    tagged = MediaLibrary(tmp_path).tagged_mp3(1024 * 1024)
    wrapped = make(tmp_path / "tagged.mka", "-i", str(tagged), "-c", "copy", "-f", "matroska")

    [part] = await prepare_parts(wrapped, await probe(wrapped), workdir)

    assert part.path.stat().st_size < 64 * 1024


@needs_ffmpeg
async def test_file_longer_than_it_says_is_split_on_what_it_holds(
    tmp_path: Path, workdir: Path
) -> None:
    liar = MediaLibrary(tmp_path).repeated_frame_mp3(60_000)  # says ~1 s, holds ~60 s
    info = await probe(liar)
    assert info.duration is not None
    assert info.duration < 2

    parts = await prepare_parts(liar, info, workdir, max_seconds=30)

    assert len(parts) >= 2
    assert all(part.duration <= 30 for part in parts)
    assert sum(part.duration for part in parts) == pytest.approx(60, abs=3)


@needs_ffmpeg
async def test_vorbis_is_left_to_ffmpeg_to_measure(tmp_path: Path) -> None:
    # Opus packets are counted from their TOC bytes; a Vorbis packet's length depends on the
    # stream's setup header, and the last page's count is only the file's claim.
    tone = ("-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=30")
    vorbis = make(tmp_path / "note.ogg", *tone, "-c:a", "libvorbis")

    sniffed = sniff_file(vorbis)

    assert sniffed is not None
    assert (sniffed.extension, sniffed.duration) == ("ogg", None)
