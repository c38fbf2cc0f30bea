"""Property: whatever arrives at the webhook, the bot answers 2xx/4xx and keeps working."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.logs import Throttle
from tests.conftest import API_KEY, SECRET, TOKEN, BotProcess, free_port, process_env
from tests.fakes import FakeTelegram, FakeTranscriptionAPI, voice_update

T = TypeVar("T")
HEADERS = {"X-Telegram-Bot-Api-Secret-Token": SECRET}


class Background:
    """The fakes on an event loop in a thread, so that sync hypothesis tests can drive a bot."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BotProcess, FakeTelegram]]:
    home = tmp_path_factory.mktemp("fuzz")
    bg = Background()
    tg = FakeTelegram(TOKEN)
    api = FakeTranscriptionAPI(API_KEY)
    bg.run(tg.start())
    bg.run(api.start())
    port = free_port()
    env = process_env(tg, api, home, port, USER_JOBS_PER_MINUTE="0")
    bot = BotProcess(env, Path(home / "bot.log"), port)
    try:
        bg.run(bot.start())
        yield bot, tg
    finally:
        bot.stop_now()
        bg.run(tg.stop())
        bg.run(api.stop())
        bg.close()


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    """One keep-alive client for the module (a client per request costs ~25 ms of CPU)."""
    with httpx.Client(timeout=10) as client:
        yield client


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
odd_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"])
    | st.sampled_from(["\u202e", "\u200b", "\ufeff", "🎙", "\x00", "<", "&", "𝔘"]),
    max_size=40,
) | st.sampled_from(["<b>x</b>", "&amp;", "\u202emp3.exe", "a" * 5000])
chat = st.fixed_dictionaries(
    {
        "id": st.integers(-(10**13), 10**13),
        "type": st.sampled_from(["private", "group", "supergroup", "channel", "weird"]),
    }
)
media = st.fixed_dictionaries(
    {
        "file_id": odd_text,
        "file_unique_id": odd_text,
        "duration": st.integers(-5, 10**12),
        "length": st.integers(0, 640),
    },
    optional={
        "file_size": st.integers(-5, 10**12),
        "mime_type": odd_text | st.sampled_from(["audio/ogg", "video/mp4", "audio/x-wav"]),
        "file_name": odd_text,
    },
)
message = st.fixed_dictionaries(
    {"message_id": st.integers(-5, 2**40), "date": st.integers(0, 2**33), "chat": chat},
    optional={
        "from": st.fixed_dictionaries(
            {"id": st.integers(1, 10**12), "is_bot": st.booleans(), "first_name": odd_text}
        ),
        "text": odd_text | st.sampled_from(["/start", "/model", "/transcribe", "/stats"]),
        "caption": odd_text,
        "voice": media,
        "audio": media,
        "document": media,
        "video_note": media,
        "entities": json_values,
        "reply_to_message": json_values,
    },
)
updates = st.fixed_dictionaries(
    {"update_id": st.integers(-(2**40), 2**40)},
    optional={
        "message": message | json_values,
        "callback_query": json_values,
        "edited_message": message,
        "future_kind": json_values,
    },
)


@st.composite
def media_updates(draw: st.DrawFn) -> dict[str, Any]:
    """Well-formed messages with a file and odd values: these reach the job workers."""
    kind = draw(st.sampled_from(["voice", "audio", "document", "video", "video_note"]))
    chat_id = draw(st.integers(1, 10**9) | st.integers(-(10**13), -1))
    file = draw(media)
    file.setdefault("width", 1)
    file.setdefault("height", 1)
    if kind == "document":
        file["mime_type"] = draw(st.sampled_from(["audio/ogg", "video/mp4", "audio/x-🎙"]))
    msg = {
        "message_id": draw(st.integers(1, 2**31)),
        "date": 1_700_000_000,
        "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"},
        "from": {"id": draw(st.integers(1, 10**12)), "is_bot": False, "first_name": draw(odd_text)},
        "caption": draw(odd_text),
        kind: file,
    }
    return {"update_id": draw(st.integers(0, 2**40)), "message": msg}


bodies = st.one_of(
    media_updates().map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    updates.map(lambda v: json.dumps(v).encode()),
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=bodies)
def test_any_body_gets_a_2xx_or_4xx_answer(
    running: tuple[BotProcess, FakeTelegram], http: httpx.Client, body: bytes
) -> None:
    bot, _ = running
    response = http.post(bot.webhook_url, content=body, headers=HEADERS, timeout=10)
    assert response.status_code in (200, 400), (response.status_code, body)
    assert bot.proc is not None
    assert bot.proc.poll() is None


def test_oversized_body_is_refused(
    running: tuple[BotProcess, FakeTelegram], http: httpx.Client
) -> None:
    bot, _ = running
    body = b'{"update_id": 1, "pad": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    response = http.post(bot.webhook_url, content=body, headers=HEADERS, timeout=10)
    assert response.status_code == 413


def test_the_bot_still_transcribes_after_the_fuzzing(
    running: tuple[BotProcess, FakeTelegram], http: httpx.Client, voice_bytes: bytes
) -> None:
    bot, tg = running
    file = tg.add_file(voice_bytes)
    tg.add_message(99, 1)
    update = voice_update(2**41, chat_id=99, user_id=99, message_id=1, file=file)
    assert http.post(bot.webhook_url, json=update, headers=HEADERS).status_code == 200
    for _ in range(200):
        texts = [m.text for m in tg.bot_messages(99)]
        if any(t and t.startswith("transcript") for t in texts):
            break
        threading.Event().wait(0.05)
    else:
        raise AssertionError(f"no transcript; bot log:\n{bot.log()[-3000:]}")
    assert "Traceback" not in bot.log()  # odd input is answered, never crashes a handler


def _log_since(bot: BotProcess, start: int) -> str:
    return bot.log()[start:]


def test_a_secret_with_a_non_ascii_byte_is_refused_with_403(
    running: tuple[BotProcess, FakeTelegram], http: httpx.Client
) -> None:
    bot, _ = running
    start = len(bot.log())
    for secret in (b"\xff" + SECRET.encode(), "s\u00e9cret".encode()):
        headers = {b"X-Telegram-Bot-Api-Secret-Token": secret}
        response = http.post(bot.webhook_url, json={"update_id": 1}, headers=headers, timeout=10)
        assert response.status_code == 403
    assert "Traceback" not in _log_since(bot, start)


def _reply_chain(depth: int) -> bytes:
    """A message replying to a message replying to ... `depth` times (JSON nested 2x that)."""
    head = b'{"message_id": 1, "date": 1, "chat": {"id": 1, "type": "private"}'
    inner = head + b"}"
    for _ in range(depth):
        inner = head + b', "reply_to_message": ' + inner + b"}"
    return b'{"update_id": 7, "message": ' + inner + b"}"


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 200_000,
        b'{"update_id": 1, "x": ' + b'{"a": ' * 100_000 + b"1" + b"}" * 100_001,
        _reply_chain(5_000),
    ],
    ids=["brackets", "objects", "replies"],
)
def test_a_deeply_nested_authentic_body_is_400_with_one_log_line(
    running: tuple[BotProcess, FakeTelegram], http: httpx.Client, body: bytes
) -> None:
    bot, _ = running
    start = len(bot.log())
    response = http.post(bot.webhook_url, content=body, headers=HEADERS, timeout=10)
    assert response.status_code == 400
    threading.Event().wait(0.3)  # any later line about the same delivery
    log = _log_since(bot, start)
    assert "Traceback" not in log
    assert len(log.splitlines()) == 1, log


def test_json_nested_below_the_parsers_limit_is_answered_without_a_traceback(
    running: tuple[BotProcess, FakeTelegram], http: httpx.Client
) -> None:
    bot, _ = running
    start = len(bot.log())
    for depth in (100, 300, 450):
        response = http.post(bot.webhook_url, content=_reply_chain(depth), headers=HEADERS)
        assert response.status_code in (200, 400)
    threading.Event().wait(0.3)
    assert "Traceback" not in _log_since(bot, start)
    assert bot.proc is not None
    assert bot.proc.poll() is None


def test_wrong_secrets_are_logged_at_most_once_a_minute_with_a_count(
    running: tuple[BotProcess, FakeTelegram], http: httpx.Client
) -> None:
    bot, _ = running
    start = len(bot.log())
    for secret in ["wrong"] * 20 + [None] * 5:
        headers = {} if secret is None else {"X-Telegram-Bot-Api-Secret-Token": secret}
        response = http.post(bot.webhook_url, json={"update_id": 1}, headers=headers)
        assert response.status_code == (403 if secret else 401)
    lines = [line for line in _log_since(bot, start).splitlines() if "secret" in line]
    assert len(lines) <= 1, lines  # one a minute: this module's earlier refusals may hold it


def test_refusals_held_back_are_counted_in_the_next_line() -> None:
    now = [0.0]
    throttle = Throttle(60, clock=lambda: now[0])
    assert throttle.hit() == 1
    assert [throttle.hit() for _ in range(5)] == [None] * 5
    now[0] = 59.9
    assert throttle.hit() is None
    now[0] = 60.0
    assert throttle.hit() == 7
    now[0] = 500.0
    assert throttle.hit() == 1
