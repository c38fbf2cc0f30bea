"""python -m bench.fakes_server: the tests' fake Telegram and transcription API, in a process
of their own, driven by the benchmark through a small control API on loopback.

The first line on stdout is JSON saying where the three servers listen. The process stops on
SIGTERM/SIGINT or when its stdin closes (the benchmark is gone).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import random
import signal
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

from bench.flood_fakes import FloodOutcomes
from bench.media import variant
from tests.fakes import FakeTelegram, FakeTranscriptionAPI, OpenAIError, media_update
from tests.fakes.transcription import TranscriptionCall

# The bot's "working" placeholder and its per-part progress both start so; any other text it
# sends to a chat is the outcome of that chat's note (the transcript, or an error).
_WORKING_PREFIX = "🎙"


class Outcomes:
    """Follows the fake Telegram's call log: each note's first reply that is not "working"."""

    def __init__(self, tg: FakeTelegram, api: FakeTranscriptionAPI) -> None:
        self._tg = tg
        self._api = api
        self.expected: dict[int, str] = {}  # chat id -> the transcript the note must get
        self.chat_of_sha: dict[str, int] = {}
        self.chat_of_file: dict[str, int] = {}  # by file_id and by file_path
        self.final_at: dict[int, float] = {}  # chat id -> time.monotonic() it arrived
        self.wrong: dict[int, str] = {}  # chat id -> the text it got instead
        self._seen = 0

    def scan(self) -> int:
        """Look at the calls answered since the last scan; returns how many notes are done."""
        calls = self._tg.requests
        for index in range(self._seen, len(calls)):
            call = calls[index]
            if call.method not in ("editMessageText", "sendMessage") or not call.ok:
                continue
            chat = call.params.get("chat_id")
            if not isinstance(chat, int) or chat not in self.expected or chat in self.final_at:
                continue
            text = str(call.params.get("text", ""))
            if text.startswith(_WORKING_PREFIX):
                continue
            self.final_at[chat] = call.at
            if text != self.expected[chat]:
                self.wrong[chat] = text[:200]
        self._seen = len(calls)
        return len(self.final_at)

    def report(self) -> dict[str, Any]:
        self.scan()
        own: dict[int, float] = {}
        phases: dict[int, dict[str, float]] = {}
        api_errors = unmatched = 0
        for call in self._api.requests:
            if not call.ok:
                api_errors += 1
            chat = self.chat_of_sha.get(call.sha256)
            if chat is None:
                unmatched += 1
                continue
            own[chat] = own.get(chat, 0.0) + call.handler_seconds
            phases.setdefault(chat, {}).setdefault("api", call.at)
        methods: dict[str, int] = {}
        telegram_errors = 0
        for tg_call in self._tg.requests:
            methods[tg_call.method] = methods.get(tg_call.method, 0) + 1
            telegram_errors += not tg_call.ok
            chat, phase = self._phase_of(tg_call.method, tg_call.params)
            if chat is not None:
                phases.setdefault(chat, {}).setdefault(phase, tg_call.at)
        return {
            "final_at": {str(k): v for k, v in self.final_at.items()},
            "wrong": {str(k): v for k, v in self.wrong.items()},
            "own": {str(k): v for k, v in own.items()},
            "phases": {str(k): v for k, v in phases.items()},
            "api_calls": len(self._api.requests),
            "api_errors": api_errors,
            "api_unmatched": unmatched,
            "api_own_total": self._api.total_own_time,
            "telegram_calls": methods,
            "telegram_errors": telegram_errors,
        }

    def _phase_of(self, method: str, params: dict[str, Any]) -> tuple[int | None, str]:
        """Which note a Bot API call belongs to, and the step of its job it marks."""
        if method == "sendMessage":
            chat = params.get("chat_id")
            return (chat if isinstance(chat, int) else None), "placeholder"
        if method == "getFile":
            return self.chat_of_file.get(str(params.get("file_id"))), "get_file"
        if method == "download":
            return self.chat_of_file.get(str(params.get("file_path"))), "download"
        return None, ""


class FlakyAPI(FakeTranscriptionAPI):
    """The fake API, failing a share of transcription requests at random (503, not paid)."""

    error_rate = 0.0

    async def _transcribe(
        self, request: web.Request, call: TranscriptionCall
    ) -> web.StreamResponse:
        if self.error_rate and random.random() < self.error_rate:
            await request.read()
            raise OpenAIError(503, "The engine is currently overloaded.", type="server_error")
        return await super()._transcribe(request, call)


class Control:
    """The control API: prepare notes, set delays, wait for outcomes, report."""

    def __init__(self, tg: FakeTelegram, api: FlakyAPI) -> None:
        self.tg = tg
        self.api = api
        self.outcomes = Outcomes(tg, api)
        self.files: dict[int, str] = {}  # chat id -> the name of a file sent as it is (chaos)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_post("/notes", self._notes)
        app.router.add_post("/delay", self._delay)
        app.router.add_post("/wait", self._wait)
        app.router.add_get("/report", self._report)
        app.router.add_post("/file", self._file)
        app.router.add_post("/faults", self._faults)
        app.router.add_get("/chats", self._chats)
        app.add_routes(FloodOutcomes(self.tg, self.api).routes())  # bench.flood's scenarios
        return app

    async def _file(self, request: web.Request) -> web.Response:
        """One file as it is (no marker: a hostile one), in a chat of its own; its update."""
        spec = await request.json()
        chat_id = int(spec["chat_id"])
        info = self.tg.add_file(Path(spec["path"]).read_bytes())
        update = media_update(
            int(spec["update_id"]),
            str(spec["kind"]),
            chat_id=chat_id,
            user_id=chat_id,
            message_id=int(spec["message_id"]),
            file=info,
            duration=int(spec.get("duration", 4)),
            mime_type=spec.get("mime_type"),
            file_name=spec.get("file_name"),
        )
        self.tg.register_update(update)
        self.files[chat_id] = str(spec["name"])
        return web.json_response({"update": update})

    async def _faults(self, request: web.Request) -> web.Response:
        spec = await request.json()
        self.api.error_rate = float(spec.get("api_error_rate", 0.0))
        return web.json_response({"ok": True})

    async def _chats(self, _: web.Request) -> web.Response:
        """Per chat: the bot's answers (messages that are not "working"), whether the note's
        one is its transcript, placeholders left "working"; per upload: paid seconds."""
        chats: dict[str, dict[str, Any]] = {}
        for chat in [*self.outcomes.expected, *self.files]:
            texts = [m.text or "" for m in self.tg.bot_messages(chat)]
            answers = [t for t in texts if not t.startswith(_WORKING_PREFIX)]
            chats[str(chat)] = {
                "file": self.files.get(chat),
                "answers": len(answers),
                "correct": answers == [self.outcomes.expected.get(chat)],
                "stale": len(texts) - len(answers),
                "first_answer": answers[0][:80] if answers else None,
            }
        paid = [
            {
                "chat": self.outcomes.chat_of_sha.get(c.sha256),
                "seconds": c.duration_seconds,
                "at": c.at,  # time.monotonic(): the same clock as the soak's, on Linux
                "took": c.handler_seconds,
            }
            for c in self.api.requests
            if c.ok
        ]
        failed = sum(not c.ok for c in self.api.requests)
        return web.json_response({"chats": chats, "paid": paid, "api_failed": failed})

    async def _notes(self, request: web.Request) -> web.Response:
        """Register `count` distinct copies of a file and the updates that carry them."""
        spec = await request.json()
        base = Path(spec["path"]).read_bytes()
        kind = str(spec["kind"])
        updates: list[dict[str, Any]] = []
        file_url_path = ""
        for i in range(int(spec["count"])):
            data = variant(base, int(spec["first_index"]) + i)
            info = self.tg.add_file(data)
            chat_id = int(spec["first_chat_id"]) + i
            update = media_update(
                int(spec["first_update_id"]) + i,
                kind,
                chat_id=chat_id,
                user_id=chat_id,
                message_id=int(spec["first_message_id"]) + i,
                file=info,
                duration=int(spec["duration"]),
                mime_type=spec.get("mime_type"),
                file_name=spec.get("file_name"),
            )
            self.tg.register_update(update)
            updates.append(update)
            sha = hashlib.sha256(data).hexdigest()
            self.outcomes.expected[chat_id] = self.api.default_text(sha)
            self.outcomes.chat_of_sha[sha] = chat_id
            self.outcomes.chat_of_file[info.file_id] = chat_id
            self.outcomes.chat_of_file[info.file_path] = chat_id
            file_url_path = file_url_path or f"/file/bot{self.tg.token}/{info.file_path}"
        return web.json_response({"updates": updates, "file_url_path": file_url_path})

    async def _delay(self, request: web.Request) -> web.Response:
        spec = await request.json()
        self.api.delay = float(spec.get("api", 0.0))
        self.tg.delay = float(spec.get("telegram", 0.0))
        return web.json_response({"ok": True})

    async def _wait(self, request: web.Request) -> web.Response:
        """Until the given chats (or all prepared notes) have their outcome, or the timeout."""
        spec = await request.json()
        chats = spec.get("chats")
        outcomes = self.outcomes

        def done() -> bool:
            outcomes.scan()
            if chats is None:
                return len(outcomes.final_at) >= len(outcomes.expected)
            return all(chat in outcomes.final_at for chat in chats)

        with contextlib.suppress(TimeoutError):  # answered with done: false
            await self.tg.wait_for(done, timeout=float(spec["timeout"]))
        return web.json_response({"done": done(), "finished": len(outcomes.final_at)})

    async def _report(self, _: web.Request) -> web.Response:
        return web.json_response(self.outcomes.report())


async def serve(token: str, api_key: str, measure: bool = False) -> None:
    async with FakeTelegram(token) as tg, FlakyAPI(api_key, check_duration=measure) as api:
        runner = web.AppRunner(Control(tg, api).app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        control = f"http://127.0.0.1:{runner.addresses[0][1]}"
        try:
            print(json.dumps({"telegram": tg.url, "api": api.url, "control": control}), flush=True)
            await _until_told_to_stop()
        finally:
            await runner.cleanup()


async def _until_told_to_stop() -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    eof = asyncio.ensure_future(reader.read())
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({eof, stopped}, return_when=asyncio.FIRST_COMPLETED)
    for task in (eof, stopped):
        task.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--token", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--measure", action="store_true", help="ffprobe every upload (chaos)")
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(args.token, args.api_key, args.measure))
    else:
        uvloop.run(serve(args.token, args.api_key, args.measure))


if __name__ == "__main__":
    main()
