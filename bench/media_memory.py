"""Peak memory of the bot while ten ~20 MB recordings are processed at once.

python -m bench.media_memory

The fakes (Telegram and the transcription API) run here; the bot runs as `python -m bot`
does in production, in its own process, so its memory is its own. Ten messages of the kinds
that take each path of the bot (as they are, extracted, converted, split) arrive together;
the script samples the resident memory of the bot and of its ffmpeg children until every
message is answered, then prints the bot's peak (VmHWM) and the children's.

BENCH_COPIES=n sends n of each of the five kinds (default 2: ten); BENCH_WORKDIR=dir keeps
the bot's database and log there (default: a temporary directory, removed).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.fakes import FakeTelegram, FakeTranscriptionAPI, media_update

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / ".cache" / "media-memory"
TOKEN = "123456:BENCH-token-abcdefghijklmnopqrstuvwxyz"
API_KEY = "sk-bench-key-0123456789abcdef"
SECRET = "bench-webhook-secret_0123456789"
HOOK = "/telegram/hook"
MIB = 1024 * 1024
TARGET = 19.5 * MIB  # under the cloud Bot API's 20 MiB download limit


@dataclass(frozen=True)
class Recording:
    name: str  # in the cache
    kind: str  # the message's field: audio, video, voice, document
    mime_type: str
    seconds: int
    make: tuple[str, ...]  # ffmpeg arguments between the inputs and the output


_TONE = "sine=frequency=330:sample_rate={rate}:duration={seconds}"
# Each ~19.5 MiB; two of each is the ten. What the bot does with each is in the comment.
RECORDINGS = [
    # an mp3 it sends as it is (probed first: mp3 has no length in its header)
    Recording("talk.mp3", "audio", "audio/mpeg", 1275, ("-c:a", "libmp3lame", "-b:a", "128k")),
    # a WAV it sends as it is (its header tells the length: no ffprobe)
    Recording("talk.wav", "audio", "audio/x-wav", 639, ("-ar", "16000", "-c:a", "pcm_s16le")),
    # an AIFF it converts to ogg/opus
    Recording("talk.aiff", "audio", "audio/aiff", 231, ("-c:a", "pcm_s16be", "-f", "aiff")),
    # a video it extracts the sound of
    Recording("clip.mp4", "video", "video/mp4", 75, ()),
    # an 85-minute voice note it splits into parts (packets copied)
    Recording(
        "long.oga",
        "voice",
        "audio/ogg",
        5000,
        ("-c:a", "libopus", "-b:a", "32k", "-vbr", "off", "-f", "ogg"),
    ),
]


def build(recording: Recording) -> Path:
    path = CACHE / recording.name
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    rate = 44100 if recording.name.endswith((".aiff", ".mp3")) else 16000
    tone = _TONE.format(rate=rate, seconds=recording.seconds)
    if recording.kind == "video":
        picture = f"testsrc=size=640x360:rate=25:duration={recording.seconds},noise=alls=30:allf=t"
        inputs: tuple[str, ...] = ("-f", "lavfi", "-i", picture, "-f", "lavfi", "-i", tone)
        options: tuple[str, ...] = (
            *("-c:v", "libx264", "-preset", "ultrafast", "-b:v", "2M", "-maxrate", "2M"),
            *("-bufsize", "1M", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k"),
        )
    else:
        inputs, options = ("-f", "lavfi", "-i", tone), (*recording.make, "-ac", "1")
    partial = path.with_name("partial-" + path.name)
    command = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    subprocess.run([*command, *inputs, *options, str(partial)], check=True)
    partial.rename(path)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def status_kib(pid: int, field: str) -> int:
    """A /proc/<pid>/status field in KiB: VmRSS (now) or VmHWM (the peak so far)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return found


@dataclass
class Samples:
    bot_peak_rss_kib: int = 0
    children_peak_rss_kib: int = 0  # the most the ffmpeg children held at one moment
    children_peak_count: int = 0


async def sample(pid: int, samples: Samples, stop: asyncio.Event) -> None:
    while not stop.is_set():
        children = children_of(pid)
        held = sum(status_kib(child, "VmRSS") for child in children)
        samples.bot_peak_rss_kib = max(samples.bot_peak_rss_kib, status_kib(pid, "VmRSS"))
        samples.children_peak_rss_kib = max(samples.children_peak_rss_kib, held)
        samples.children_peak_count = max(samples.children_peak_count, len(children))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.05)


async def start_bot(
    tg: FakeTelegram, api: FakeTranscriptionAPI, workdir: Path
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    env |= {
        "PYTHONPATH": str(ROOT),
        "TMPDIR": str(workdir),
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_URL": tg.url,
        "OPENAI_API_KEY": API_KEY,
        "OPENAI_BASE_URL": api.url,
        "WEBHOOK_URL": f"https://bot.example.com{HOOK}",
        "WEBHOOK_SECRET": SECRET,
        "LISTEN_HOST": "127.0.0.1",
        "LISTEN_PORT": str(port),
        "METRICS_PORT": "0",
        "DATABASE_URL": f"sqlite:///{workdir / 'bot.sqlite3'}",
        "MAX_CONCURRENT_JOBS": "10",
        "LOG_LEVEL": "INFO",
    }
    log = (workdir / "bot.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "bot"], env=env, stdout=log, stderr=log)
    async with httpx.AsyncClient(timeout=1) as http:
        for _ in range(300):
            if proc.poll() is not None:
                raise RuntimeError((workdir / "bot.log").read_text())
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                    return proc, port
            await asyncio.sleep(0.05)
    raise RuntimeError("the bot did not become healthy")


async def run() -> None:
    files = [build(recording) for recording in RECORDINGS]
    ids = itertools.count(1)
    with tempfile.TemporaryDirectory(prefix="bench-media-memory-") as tmp:
        workdir = Path(os.environ.get("BENCH_WORKDIR") or tmp)
        async with FakeTelegram(TOKEN) as tg, FakeTranscriptionAPI(API_KEY) as api:
            api.delay = 1.0  # the API's own time: uploads overlap as they would
            proc, port = await start_bot(tg, api, workdir)
            try:
                baseline = status_kib(proc.pid, "VmRSS")
                updates = []
                copies = int(os.environ.get("BENCH_COPIES", "2"))
                for copy, (recording, path) in itertools.product(
                    range(copies), zip(RECORDINGS, files, strict=True)
                ):
                    n = next(ids)
                    user = 1000 + n
                    data = path.read_bytes()
                    file = tg.add_file(data, file_path=f"files/file_{n}{path.suffix}")
                    tg.add_message(user, n)
                    updates.append(
                        media_update(
                            n,
                            recording.kind,
                            chat_id=user,
                            user_id=user,
                            message_id=n,
                            file=file,
                            duration=recording.seconds,
                            mime_type=recording.mime_type,
                            file_name=f"{copy}-{recording.name}",
                        )
                    )
                samples, stop = Samples(), asyncio.Event()
                sampler = asyncio.create_task(sample(proc.pid, samples, stop))
                started = time.monotonic()
                async with httpx.AsyncClient(timeout=30) as http:
                    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
                    url = f"http://127.0.0.1:{port}{HOOK}"
                    answers = await asyncio.gather(
                        *(http.post(url, json=u, headers=headers) for u in updates)
                    )
                assert all(a.status_code == 200 for a in answers), answers

                def answered() -> int:
                    done = 0
                    for message in tg.messages.values():
                        if message.from_bot and message.text and not message.text.startswith("🎙"):
                            done += 1
                    return done

                await tg.wait_for(lambda: answered() >= len(updates), timeout=600)
                elapsed = time.monotonic() - started
                peak = status_kib(proc.pid, "VmHWM")
                stop.set()
                await sampler
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)
            outcomes: dict[str, int] = {}
            for message in tg.messages.values():
                if message.from_bot and message.text:
                    key = message.text if not message.text.startswith("transcript ") else "ok"
                    outcomes[key] = outcomes.get(key, 0) + 1
            print(f"recordings: {len(updates)} x ~{TARGET / MIB:.1f} MiB, all at once")
            print(f"answered in {elapsed:.1f} s; API requests: {len(api.requests)}")
            print(f"bot RSS before: {baseline / 1024:.0f} MiB")
            print(f"bot peak RSS (VmHWM): {peak / 1024:.0f} MiB")
            print(f"bot peak RSS sampled: {samples.bot_peak_rss_kib / 1024:.0f} MiB")
            print(
                f"ffmpeg children peak: {samples.children_peak_rss_kib / 1024:.0f} MiB "
                f"in {samples.children_peak_count} processes"
            )
            print("answers:", outcomes)


if __name__ == "__main__":
    asyncio.run(run())
