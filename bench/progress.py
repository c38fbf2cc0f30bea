"""python -m bench.progress: what a long recording shows while it works, at the default intervals.

A 280 s recording is cut into five parts (a Whisper-style model whose requests take 70 s at
most, MODELS_FILE), and the fake engine takes --part-seconds for each part, four at a time.
Three jobs on one bot: in a private chat (the first: nothing measured yet), again (the speed
is known from the start), then in a group. For each: how long it took, the placeholder's
notes with when they came, the smallest gap between two edits (PROGRESS_EDIT_SECONDS 5,
PROGRESS_GROUP_EDIT_SECONDS 15), and for each time left shown, the time that was really left.

    python -m bench.progress --part-seconds 12
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import itertools
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bot.app import BotService
from tests.conftest import API_KEY, SECRET, TOKEN, WEBHOOK_PATH, bot_settings
from tests.fakes import FakeTelegram, FakeTranscriptionAPI, media_update
from tests.media_fixtures import MediaLibrary

MODEL = "whisper-large-v3-turbo"
_LEFT = re.compile(r"about (\d+) (s|min) left")
_CHATS = {"private": 4242, "group": -100_4242}


def _report(tg: FakeTelegram, chat_id: int, message_id: int, started: float) -> dict[str, Any]:
    placeholder = next(m for m in tg.bot_messages(chat_id) if m.reply_to == message_id)
    calls = [
        c
        for c in tg.calls("sendMessage") + tg.calls("editMessageText")
        if c.ok
        and c.params.get("chat_id") == chat_id
        and (c.params.get("message_id") or (c.result or {}).get("message_id"))
        == placeholder.message_id
    ]
    calls.sort(key=lambda c: c.at)
    done = calls[-1].at
    notes = [(round(c.at - started, 1), str(c.params["text"])) for c in calls[1:-1]]
    gaps = [b.at - a.at for a, b in itertools.pairwise(calls[:-1])]
    shown_vs_real = []
    for call in calls[1:-1]:
        found = _LEFT.search(str(call.params["text"]))
        if found:
            said = int(found[1]) * (60 if found[2] == "min" else 1)
            shown_vs_real.append((said, round(done - call.at, 1)))
    return {
        "seconds": round(done - started, 1),
        "edits": len(calls) - 1,
        "min_gap": round(min(gaps), 2) if gaps else None,
        "notes": notes,
        "time_left_shown_vs_real": shown_vs_real,
    }


async def main(part_seconds: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        media = MediaLibrary(Path(tmp))
        data = media.sectioned([300, 450], 140).read_bytes()
        models = Path(tmp) / "models.toml"
        models.write_text(f"[models.{MODEL}]\nmax_audio_seconds = 70\n")
        async with FakeTelegram(TOKEN) as tg, FakeTranscriptionAPI(API_KEY) as api:
            api.delay = part_seconds
            settings = bot_settings(
                tg,
                api,
                Path(tmp) / "bot.sqlite3",
                transcription_models=MODEL,
                models_file=str(models),
                cache_transcripts_hours=0,
                placeholder_after_seconds=1.5,  # the default (the tests' is 0)
            )
            service = BotService(settings)
            stop = asyncio.Event()
            task = asyncio.create_task(service.run(stop))
            while not service.web.ready:
                await asyncio.sleep(0.05)
            for n, chat in enumerate(["private", "private", "group"], start=1):
                started, chat_id, message_id = await _deliver(service, tg, data, chat, n)
                await tg.wait_for(functools.partial(_finished, tg, chat_id, message_id), 600)
                print(chat, _report(tg, chat_id, message_id, started), flush=True)
            stop.set()
            await task


async def _deliver(
    service: BotService, tg: FakeTelegram, data: bytes, chat: str, n: int
) -> tuple[float, int, int]:
    chat_id, message_id = _CHATS[chat], 1000 + n
    tg.add_message(chat_id, message_id)
    file = tg.add_file(data, file_path=f"music/file_{n}.ogg")
    update = media_update(
        n,
        "audio",
        chat_id=chat_id,
        user_id=7,
        message_id=message_id,
        file=file,
        duration=280,
        chat_type="private" if chat == "private" else "group",
    )
    url = f"http://127.0.0.1:{service.web.port}{WEBHOOK_PATH}"
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    started = time.monotonic()  # the fakes' clock
    async with httpx.AsyncClient() as http:
        (await http.post(url, json=update, headers=headers)).raise_for_status()
    return started, chat_id, message_id


def _finished(tg: FakeTelegram, chat_id: int, message_id: int) -> bool:
    found = [m for m in tg.bot_messages(chat_id) if m.reply_to == message_id]
    return bool(found) and not (found[0].text or "🎙").startswith("🎙")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part-seconds", type=float, default=12.0)
    asyncio.run(main(parser.parse_args().part_seconds))
