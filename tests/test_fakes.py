"""The fakes refuse what the real services refuse; python-telegram-bot reads their answers."""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import telegram
from telegram.constants import ParseMode

from tests.conftest import API_KEY as KEY
from tests.conftest import TOKEN
from tests.fakes import FakeTelegram, FakeTranscriptionAPI, text_update, voice_update
from tests.fakes.audio_probe import header_duration

MB = 1024 * 1024
CHAT = 42


def _ffmpeg(path: Path, *args: str) -> bytes:
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *args, str(path)], check=True)
    return path.read_bytes()


@pytest.fixture(scope="module")
def ogg(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """One second of ogg/opus, like a Telegram voice note."""
    path = tmp_path_factory.mktemp("audio") / "voice.ogg"
    sine = ("-f", "lavfi", "-i", "sine=frequency=440:duration=1")
    return _ffmpeg(path, *sine, "-c:a", "libopus", "-f", "ogg")


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


async def bot_api(
    http: httpx.AsyncClient, tg: FakeTelegram, method: str, **params: Any
) -> dict[str, Any]:
    """POST a JSON call and return Telegram's answer, checking the HTTP status matches it."""
    response = await http.post(f"{tg.url}/bot{TOKEN}/{method}", json=params)
    answer: dict[str, Any] = response.json()
    assert response.status_code == answer.get("error_code", 200)
    return answer


async def transcribe(
    http: httpx.AsyncClient,
    api: FakeTranscriptionAPI,
    data: bytes,
    filename: str = "voice.ogg",
    *,
    key: str = KEY,
    **fields: str,
) -> httpx.Response:
    return await http.post(
        f"{api.url}/audio/transcriptions",
        headers={"Authorization": f"Bearer {key}"},
        data={"model": "gpt-4o-mini-transcribe", **fields},
        files={"file": (filename, data, "audio/ogg")},
    )


# --- Telegram: text and HTML -----------------------------------------------------------------


@pytest.mark.parametrize(
    "html",
    [
        "1 < 2 & <b>",
        "1 < 2",
        "fish & chips",
        "&nbsp;",
        "<b>unclosed",
        "<b>crossed</i>",
        "</b>",
        "<foo>unknown</foo>",
        '<span class="x">spoiler?</span>',
        "<a>no href</a>",
    ],
)
async def test_invalid_html_is_refused(
    http: httpx.AsyncClient, tg: FakeTelegram, html: str
) -> None:
    answer = await bot_api(http, tg, "sendMessage", chat_id=CHAT, text=html, parse_mode="HTML")
    assert answer["error_code"] == 400
    assert answer["description"].startswith("Bad Request: can't parse entities: ")
    assert tg.messages == {}


async def test_escaped_html_is_accepted_and_stored_as_visible_text(
    http: httpx.AsyncClient, tg: FakeTelegram
) -> None:
    text = '1 &lt; 2 &amp; &lt;b&gt; <b>bold</b> <a href="https://x.org/?a=1&amp;b=2">&#128512;</a>'
    answer = await bot_api(http, tg, "sendMessage", chat_id=CHAT, text=text, parse_mode="HTML")
    message = answer["result"]
    assert message["text"] == "1 < 2 & <b> bold 😀"
    assert message["entities"] == [
        {"type": "bold", "offset": 12, "length": 4},
        {"type": "text_link", "url": "https://x.org/?a=1&b=2", "offset": 17, "length": 2},
    ]
    assert tg.text_of(CHAT, message["message_id"]) == "1 < 2 & <b> bold 😀"
    assert tg.messages[(CHAT, message["message_id"])].sent_text == text


async def test_text_without_parse_mode_is_literal(
    http: httpx.AsyncClient, tg: FakeTelegram
) -> None:
    answer = await bot_api(http, tg, "sendMessage", chat_id=CHAT, text="1 < 2 & <b>")
    assert answer["result"]["text"] == "1 < 2 & <b>"


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("a" * 4096, True),
        ("a" * 4097, False),
        ("😀" * 2048, True),  # two UTF-16 code units each
        ("😀" * 2049, False),
        ("<b>" + "a" * 4096 + "</b>", True),  # tags are not text
        ("&amp;" * 4096, True),
        ("", False),
        ("<b> </b>", False),  # empty once trimmed
    ],
)
async def test_message_length_is_counted_after_parsing_in_utf16(
    http: httpx.AsyncClient, tg: FakeTelegram, text: str, ok: bool
) -> None:
    answer = await bot_api(http, tg, "sendMessage", chat_id=CHAT, text=text, parse_mode="HTML")
    assert answer["ok"] is ok
    if not ok:
        assert answer["description"] in (
            "Bad Request: message is too long",
            "Bad Request: message text is empty",
        )


async def test_reply_to_a_missing_message_needs_allow_sending_without_reply(
    http: httpx.AsyncClient, tg: FakeTelegram
) -> None:
    missing = await bot_api(
        http, tg, "sendMessage", chat_id=CHAT, text="hi", reply_parameters={"message_id": 7}
    )
    assert missing["description"] == "Bad Request: message to be replied not found"
    legacy = await bot_api(http, tg, "sendMessage", chat_id=CHAT, text="hi", reply_to_message_id=7)
    assert legacy["ok"] is False
    allowed = await bot_api(
        http,
        tg,
        "sendMessage",
        chat_id=CHAT,
        text="hi",
        reply_parameters={"message_id": 7, "allow_sending_without_reply": True},
    )
    assert allowed["ok"] is True
    assert "reply_to_message" not in allowed["result"]

    tg.add_message(CHAT, 7, text="voice")
    replied = await bot_api(
        http, tg, "sendMessage", chat_id=CHAT, text="hi", reply_parameters={"message_id": 7}
    )
    assert replied["result"]["reply_to_message"]["message_id"] == 7
    assert replied["result"]["message_id"] == 8  # ids keep increasing per chat


async def test_edits_are_stored_and_an_identical_edit_is_refused(
    http: httpx.AsyncClient, tg: FakeTelegram
) -> None:
    sent = await bot_api(http, tg, "sendMessage", chat_id=CHAT, text="Transcribing…")
    message_id = sent["result"]["message_id"]
    edit = {"chat_id": CHAT, "message_id": message_id, "text": "<i>done</i>", "parse_mode": "HTML"}
    assert (await bot_api(http, tg, "editMessageText", **edit))["result"]["text"] == "done"
    again = await bot_api(http, tg, "editMessageText", **edit)
    assert again["description"].startswith("Bad Request: message is not modified: ")
    plain = await bot_api(http, tg, "editMessageText", **(edit | {"parse_mode": None}))
    assert plain["result"]["text"] == "<i>done</i>"  # same letters, different entities: an edit
    assert tg.messages[(CHAT, message_id)].history == ["Transcribing…", "done"]

    missing = await bot_api(http, tg, "editMessageText", **(edit | {"message_id": 999}))
    assert missing["description"] == "Bad Request: message to edit not found"
    tg.add_message(CHAT, 500)
    theirs = await bot_api(http, tg, "editMessageText", **(edit | {"message_id": 500}))
    assert theirs["description"] == "Bad Request: message can't be edited"


async def test_keyboards_are_checked_and_removed_by_an_edit_without_one(
    http: httpx.AsyncClient, tg: FakeTelegram
) -> None:
    def keyboard(data: str) -> dict[str, Any]:
        return {"inline_keyboard": [[{"text": "pick", "callback_data": data}]]}

    too_long = await bot_api(
        http, tg, "sendMessage", chat_id=CHAT, text="m", reply_markup=keyboard("x" * 65)
    )
    assert too_long["description"] == "Bad Request: BUTTON_DATA_INVALID"
    sent = await bot_api(
        http, tg, "sendMessage", chat_id=CHAT, text="m", reply_markup=keyboard("x" * 64)
    )
    message_id = sent["result"]["message_id"]
    assert sent["result"]["reply_markup"] == keyboard("x" * 64)
    edited = await bot_api(
        http, tg, "editMessageText", chat_id=CHAT, message_id=message_id, text="m"
    )
    assert "reply_markup" not in edited["result"]
    assert tg.messages[(CHAT, message_id)].reply_markup is None


async def test_form_and_multipart_parameters_are_decoded(
    http: httpx.AsyncClient, tg: FakeTelegram
) -> None:
    tg.add_message(CHAT, 3)
    form = {
        "chat_id": str(CHAT),
        "text": "form",
        "reply_parameters": '{"message_id": 3}',
        "disable_notification": "true",
    }
    response = await http.post(f"{tg.url}/bot{TOKEN}/SENDMESSAGE", data=form)
    assert response.json()["ok"] is True
    document = await http.post(
        f"{tg.url}/bot{TOKEN}/sendDocument",
        data={"chat_id": str(CHAT), "caption": "c" * 1024},
        files={"document": ("transcript.txt", b"the words", "text/plain")},
    )
    assert document.json()["result"]["document"]["file_name"] == "transcript.txt"
    call = tg.calls("sendMessage")[0]
    assert call.method == "sendMessage"
    assert call.params == {
        "chat_id": CHAT,
        "text": "form",
        "reply_parameters": {"message_id": 3},
        "disable_notification": True,
    }
    upload = tg.calls("senddocument")[0]
    assert upload.files == {"document": b"the words"}
    assert upload.filenames == {"document": "transcript.txt"}
    long_caption = await http.post(
        f"{tg.url}/bot{TOKEN}/sendDocument",
        data={"chat_id": str(CHAT), "caption": "c" * 1025},
        files={"document": ("t.txt", b"x", "text/plain")},
    )
    assert long_caption.json()["description"] == "Bad Request: message caption is too long"


async def test_wrong_token_unknown_method_and_injected_faults(
    http: httpx.AsyncClient, tg: FakeTelegram
) -> None:
    wrong = await http.post(f"{tg.url}/bot1:wrong/getMe")
    assert (wrong.status_code, wrong.json()["description"]) == (401, "Unauthorized")
    unknown = await bot_api(http, tg, "sendTelepathy")
    assert unknown == {"ok": False, "error_code": 404, "description": "Not Found"}

    tg.fail_next("sendMessage", retry_after=3, times=2)
    for _ in range(2):
        limited = await bot_api(http, tg, "sendMessage", chat_id=CHAT, text="x")
        assert limited["description"] == "Too Many Requests: retry after 3"
        assert limited["parameters"] == {"retry_after": 3}
    assert (await bot_api(http, tg, "sendMessage", chat_id=CHAT, text="x"))["ok"] is True
    assert [c.status for c in tg.calls("sendMessage")] == [429, 429, 200]


# --- Telegram: files ---------------------------------------------------------------------------


async def test_get_file_refuses_files_over_20_mb(http: httpx.AsyncClient, tg: FakeTelegram) -> None:
    huge = tg.add_file(b"OggS", file_size=21 * MB)
    answer = await bot_api(http, tg, "getFile", file_id=huge.file_id)
    assert answer["description"] == "Bad Request: file is too big"
    unknown = await bot_api(http, tg, "getFile", file_id="nope")
    assert unknown["description"] == "Bad Request: invalid file_id"

    small = tg.add_file(b"voice bytes")
    result = (await bot_api(http, tg, "getFile", file_id=small.file_id))["result"]
    assert result["file_path"] == small.file_path == "voice/file_2.oga"
    download = await http.get(f"{tg.url}/file/bot{TOKEN}/{result['file_path']}")
    assert download.content == b"voice bytes"
    assert (await http.get(f"{tg.url}/file/bot{TOKEN}/voice/none.oga")).status_code == 404


async def test_local_mode_answers_an_absolute_path_without_the_20_mb_limit(
    http: httpx.AsyncClient, tmp_path: Path
) -> None:
    async with FakeTelegram(TOKEN, local_mode_dir=tmp_path) as tg:
        info = tg.add_file(b"local bytes", file_size=300 * MB)
        result = (await bot_api(http, tg, "getFile", file_id=info.file_id))["result"]
    path = Path(result["file_path"])
    assert path.is_absolute()
    assert path == tmp_path.resolve() / "voice/file_1.oga"
    assert path.read_bytes() == b"local bytes"


# --- Telegram: updates and webhooks ------------------------------------------------------------


async def test_get_updates_confirms_with_offset_and_long_polls(
    http: httpx.AsyncClient, tg: FakeTelegram
) -> None:
    tg.push_update(text_update(1, chat_id=CHAT, user_id=CHAT, message_id=1, text="/start"))
    tg.push_update(text_update(2, chat_id=CHAT, user_id=CHAT, message_id=2, text="hi"))
    first = (await bot_api(http, tg, "getUpdates", limit=1))["result"]
    assert [u["update_id"] for u in first] == [1]
    assert first[0]["message"]["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]
    rest = (await bot_api(http, tg, "getUpdates", offset=2))["result"]
    assert [u["update_id"] for u in rest] == [2]
    assert (await bot_api(http, tg, "getUpdates", offset=3, timeout=0))["result"] == []
    assert tg.text_of(CHAT, 2) == "hi"  # pushed messages are known: replies to them work

    started = time.monotonic()
    poll = asyncio.create_task(bot_api(http, tg, "getUpdates", offset=3, timeout=5))
    await asyncio.sleep(0.1)
    tg.push_update(text_update(3, chat_id=CHAT, user_id=CHAT, message_id=3, text="late"))
    woken = (await poll)["result"]
    assert [u["update_id"] for u in woken] == [3]
    assert time.monotonic() - started < 2


async def test_a_newer_poll_ends_an_older_one(http: httpx.AsyncClient, tg: FakeTelegram) -> None:
    old = asyncio.create_task(bot_api(http, tg, "getUpdates", timeout=5))
    await asyncio.sleep(0.1)
    new = asyncio.create_task(bot_api(http, tg, "getUpdates", timeout=0))
    assert (await old)["error_code"] == 409
    assert (await new)["ok"] is True
    tg.set_conflict()
    conflict = await bot_api(http, tg, "getUpdates")
    assert "terminated by other getUpdates request" in conflict["description"]


async def test_webhook_rules(http: httpx.AsyncClient, tg: FakeTelegram) -> None:
    url = "https://bot.example.com/hook"
    bad = await bot_api(http, tg, "setWebhook", url=url, secret_token="has spaces")
    assert bad["description"] == "Bad Request: secret token contains unallowed characters"
    port = await bot_api(http, tg, "setWebhook", url="https://bot.example.com:8080/hook")
    assert port["ok"] is False
    ok = await bot_api(http, tg, "setWebhook", url=url, secret_token="s3cret_-", max_connections=5)
    assert ok == {"ok": True, "result": True}
    assert tg.webhook is not None
    assert (tg.webhook.url, tg.webhook.secret_token, tg.webhook.max_connections) == (
        url,
        "s3cret_-",
        5,
    )
    conflict = await bot_api(http, tg, "getUpdates")
    assert conflict["error_code"] == 409
    assert "webhook is active" in conflict["description"]
    await bot_api(http, tg, "deleteWebhook", drop_pending_updates=True)
    assert tg.webhook is None
    assert (await bot_api(http, tg, "getUpdates"))["result"] == []


async def test_wait_calls_times_out_with_the_recent_calls(
    http: httpx.AsyncClient, tg: FakeTelegram
) -> None:
    await bot_api(http, tg, "sendMessage", chat_id=CHAT, text="only one")
    assert len(await tg.wait_calls("sendMessage", 1)) == 1
    with pytest.raises(TimeoutError, match="only one"):
        await tg.wait_calls("sendMessage", 2, timeout=0.2)


# --- Telegram: python-telegram-bot reads the answers -------------------------------------------


async def test_python_telegram_bot_parses_every_answer(
    tg: FakeTelegram, ogg: bytes, tmp_path: Path
) -> None:
    voice = tg.add_file(ogg)
    update = tg.push_update(voice_update(10, chat_id=CHAT, user_id=CHAT, message_id=5, file=voice))
    bot = telegram.Bot(TOKEN, base_url=f"{tg.url}/bot", base_file_url=f"{tg.url}/file/bot")
    async with bot:
        me = await bot.get_me()
        assert (me.username, me.can_read_all_group_messages) == ("transcribot_test", True)
        (received,) = await bot.get_updates(timeout=1)
        assert received.to_dict() == telegram.Update.de_json(update, bot).to_dict()
        assert received.message is not None
        assert received.message.voice is not None

        file = await bot.get_file(received.message.voice.file_id)
        assert bytes(await file.download_as_bytearray()) == ogg

        sent = await bot.send_message(
            CHAT,
            "<b>Transcribing</b> 1 &lt; 2",
            parse_mode=ParseMode.HTML,
            reply_parameters=telegram.ReplyParameters(message_id=5),
        )
        assert sent.text == "Transcribing 1 < 2"
        assert sent.reply_to_message is not None
        assert sent.reply_to_message.message_id == 5
        assert sent.from_user is not None
        assert sent.from_user.id == tg.bot_id
        edited = await bot.edit_message_text("done", chat_id=CHAT, message_id=sent.message_id)
        assert isinstance(edited, telegram.Message)
        assert edited.text == "done"
        with pytest.raises(telegram.error.BadRequest, match="not modified"):
            await bot.edit_message_text("done", chat_id=CHAT, message_id=sent.message_id)

        document = await bot.send_document(
            CHAT, b"the whole transcript", filename="transcript.txt", caption="All of it"
        )
        assert document.document is not None
        assert (document.document.file_name, document.document.mime_type) == (
            "transcript.txt",
            "text/plain",
        )
        assert tg.calls("sendDocument")[0].files["document"] == b"the whole transcript"

        group = -1001234567890
        tg.set_admins(group, [7])
        admin = await bot.get_chat_member(group, 7)
        assert isinstance(admin, telegram.ChatMemberAdministrator)
        member = await bot.get_chat_member(group, 8)
        assert isinstance(member, telegram.ChatMemberMember)
        chat = await bot.get_chat(group)
        assert chat.type == "supergroup"

        await bot.set_my_commands([("start", "Start"), ("model", "Choose the model")])
        assert [c.command for c in await bot.get_my_commands()] == ["start", "model"]
        assert await bot.send_chat_action(CHAT, "typing")
        assert await bot.delete_message(CHAT, sent.message_id)
        assert tg.text_of(CHAT, sent.message_id) is None

        tg.fail_next("sendMessage", retry_after=7)
        with pytest.raises(telegram.error.RetryAfter, match=r"Retry in (7 seconds|0:00:07)"):
            await bot.send_message(CHAT, "hello")


async def test_python_telegram_bot_reads_local_mode_files(tmp_path: Path, ogg: bytes) -> None:
    async with FakeTelegram(TOKEN, local_mode_dir=tmp_path) as tg:
        info = tg.add_file(ogg)
        bot = telegram.Bot(
            TOKEN, base_url=f"{tg.url}/bot", base_file_url=f"{tg.url}/file/bot", local_mode=True
        )
        async with bot:
            file = await bot.get_file(info.file_id)
            assert bytes(await file.download_as_bytearray()) == ogg


# --- Transcription API -------------------------------------------------------------------------


async def test_wrong_key_is_refused(
    http: httpx.AsyncClient, api: FakeTranscriptionAPI, ogg: bytes
) -> None:
    response = await transcribe(http, api, ogg, key="sk-wrong-key")
    assert response.status_code == 401
    assert response.json() == {
        "error": {
            "message": "Incorrect API key provided: sk-wr****.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }
    assert api.requests[0].status == 401


@pytest.mark.parametrize("filename", ["voice.oga", "voice.opus", "voice", "voice.txt"])
async def test_extensions_outside_the_list_are_refused(
    http: httpx.AsyncClient, api: FakeTranscriptionAPI, ogg: bytes, filename: str
) -> None:
    response = await transcribe(http, api, ogg, filename)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unsupported_format"


async def test_ogg_is_transcribed_with_a_predictable_text(
    http: httpx.AsyncClient, api: FakeTranscriptionAPI, ogg: bytes
) -> None:
    response = await transcribe(http, api, ogg, "VOICE.OGG", language="en", prompt="Hi")
    assert response.status_code == 200
    answer = response.json()
    assert answer["text"] == api.transcript_for(ogg)
    assert answer["text"].startswith("transcript ")
    assert answer["usage"] == {"type": "duration", "seconds": 1}
    call = api.requests[0]
    assert (call.model, call.filename, call.size) == (
        "gpt-4o-mini-transcribe",
        "VOICE.OGG",
        len(ogg),
    )
    assert call.fields == {"model": "gpt-4o-mini-transcribe", "language": "en", "prompt": "Hi"}
    assert call.duration_seconds == pytest.approx(1.0, abs=0.05)
    assert call.handler_seconds > 0
    assert api.total_own_time >= call.handler_seconds

    api.set_transcript(hashlib.sha256(ogg).hexdigest(), "")
    assert (await transcribe(http, api, ogg)).json()["text"] == ""  # silence
    api.set_transcript(ogg, "Xin chào")
    text = await transcribe(http, api, ogg, response_format="text")
    assert (text.text, text.headers["Content-Type"]) == ("Xin chào", "text/plain; charset=utf-8")


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"model": "whisper-2"}, "model_not_found"),
        ({"response_format": "verbose_json"}, "unsupported_value"),
        ({"language": "english"}, "invalid_language_format"),
    ],
)
async def test_bad_fields_are_refused(
    http: httpx.AsyncClient,
    api: FakeTranscriptionAPI,
    ogg: bytes,
    fields: dict[str, str],
    code: str,
) -> None:
    response = await transcribe(http, api, ogg, **fields)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


async def test_bytes_that_are_not_audio_are_refused(
    http: httpx.AsyncClient, api: FakeTranscriptionAPI
) -> None:
    response = await transcribe(http, api, b"<html>not audio</html>")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Audio file might be corrupted or unsupported"


async def test_files_over_25_mb_get_413(
    http: httpx.AsyncClient, api: FakeTranscriptionAPI, ogg: bytes
) -> None:
    at_limit = ogg + bytes(25 * MB - len(ogg))
    assert (await transcribe(http, api, at_limit)).status_code == 200
    response = await transcribe(http, api, at_limit + b"\0")
    assert response.status_code == 413
    assert response.json()["error"]["message"].startswith(
        "Maximum content size limit (26214400) exceeded"
    )
    assert (await transcribe(http, api, bytes(40 * MB))).status_code == 413


async def test_audio_longer_than_1500_seconds_is_refused(
    http: httpx.AsyncClient, api: FakeTranscriptionAPI, tmp_path: Path
) -> None:
    silence = ("-f", "lavfi", "-i", "anullsrc=r=4000:cl=mono", "-t", "1600")
    wav = _ffmpeg(tmp_path / "long.wav", *silence, "-c:a", "pcm_u8")
    assert header_duration(wav, "wav") == pytest.approx(1600)
    response = await transcribe(http, api, wav, "long.wav")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "Audio duration 1600.0 seconds is longer than 1500 seconds which is the maximum "
        "for this model."
    )


async def test_check_duration_runs_ffprobe(http: httpx.AsyncClient, ogg: bytes) -> None:
    async with FakeTranscriptionAPI(KEY, check_duration=True) as api:
        ok = await transcribe(http, api, ogg)
        broken = await transcribe(http, api, b"OggS" + bytes(100))
    assert ok.status_code == 200
    assert api.requests[0].duration_seconds == pytest.approx(1.0, abs=0.05)
    assert broken.status_code == 400
    assert broken.json()["error"]["code"] == "invalid_value"


async def test_faults_are_answered_and_recorded(
    http: httpx.AsyncClient, api: FakeTranscriptionAPI, ogg: bytes
) -> None:
    api.fail_next(429, retry_after=2)
    api.fail_next(503, times=2)
    api.drop_next()
    limited = await transcribe(http, api, ogg)
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "2")
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    assert [(await transcribe(http, api, ogg)).status_code for _ in range(2)] == [503, 503]
    with pytest.raises(httpx.RemoteProtocolError):
        await transcribe(http, api, ogg)
    assert (await transcribe(http, api, ogg)).status_code == 200
    assert [r.status for r in await api.wait_calls(5)] == [429, 503, 503, 0, 200]


async def test_delay_is_counted_as_the_fakes_own_time(
    http: httpx.AsyncClient, api: FakeTranscriptionAPI, ogg: bytes
) -> None:
    api.delay = 0.2
    assert (await transcribe(http, api, ogg)).status_code == 200
    assert api.requests[0].handler_seconds >= 0.2
    assert api.total_own_time >= 0.2


async def test_calls_follow_a_cleared_request_log(
    http: httpx.AsyncClient, tg: FakeTelegram
) -> None:
    await bot_api(http, tg, "sendMessage", chat_id=CHAT, text="before")
    assert len(tg.calls("sendMessage")) == 1
    tg.requests.clear()
    await bot_api(http, tg, "sendMessage", chat_id=CHAT, text="after")
    assert [c.params["text"] for c in tg.calls("sendMessage")] == ["after"]
    assert [c.params["text"] for c in await tg.wait_calls("sendMessage", 1)] == ["after"]


async def test_stream_true_answers_deltas_that_join_into_the_transcript_then_done(
    http: httpx.AsyncClient, api: FakeTranscriptionAPI, ogg: bytes
) -> None:
    api.set_transcript(ogg, "one two three four five six seven")
    response = await transcribe(http, api, ogg, stream="true")
    assert response.headers["Content-Type"].startswith("text/event-stream")
    events = [json.loads(line[6:]) for line in response.text.split("\n\n") if line]
    deltas = [e["delta"] for e in events if e["type"] == "transcript.text.delta"]
    assert len(deltas) == 4  # about 5 pieces of whole words
    assert "".join(deltas) == "one two three four five six seven"
    assert events[-1] == {
        "type": "transcript.text.done",
        "text": "one two three four five six seven",
        "usage": {"type": "duration", "seconds": 1},
    }
    assert api.requests[0].streamed


async def test_stream_modes_answer_as_proxies_do(
    http: httpx.AsyncClient, api: FakeTranscriptionAPI, ogg: bytes
) -> None:
    api.stream_mode = "json"
    assert (await transcribe(http, api, ogg, stream="true")).json()["text"]
    api.stream_mode = "refuse"
    refused = await transcribe(http, api, ogg, stream="true")
    assert (refused.status_code, refused.json()["error"]["param"]) == (400, "stream")
    api.stream_mode = "cut"
    cut = await transcribe(http, api, ogg, stream="true")
    assert "transcript.text.delta" in cut.text
    assert "transcript.text.done" not in cut.text
    assert (await transcribe(http, api, ogg)).status_code == 200  # plain requests unaffected
    assert [r.streamed for r in api.requests] == [True, True, True, False]


async def chat(
    http: httpx.AsyncClient, api: FakeTranscriptionAPI, *, key: str = KEY, **body: Any
) -> httpx.Response:
    return await http.post(
        f"{api.url}/chat/completions", headers={"Authorization": f"Bearer {key}"}, json=body
    )


async def test_chat_completions_answer_a_predictable_summary_with_usage(
    http: httpx.AsyncClient, api: FakeTranscriptionAPI
) -> None:
    words = " ".join(f"w{i}" for i in range(20))
    messages = [
        {"role": "system", "content": "Summarise."},
        {"role": "user", "content": words},
    ]
    response = await chat(http, api, model="gpt-4o-mini", messages=messages)
    assert response.status_code == 200
    answer = response.json()
    assert answer["object"] == "chat.completion"
    assert answer["model"] == "gpt-4o-mini"
    assert answer["choices"][0]["message"] == {
        "role": "assistant",
        "content": "Summary: " + " ".join(f"w{i}" for i in range(12)),
        "refusal": None,
    }
    assert answer["choices"][0]["finish_reason"] == "stop"
    assert answer["usage"] == {"prompt_tokens": 27, "completion_tokens": 13, "total_tokens": 40}
    call = (await api.wait_chat_calls(1))[0]
    assert (call.model, call.messages, call.status) == ("gpt-4o-mini", messages, 200)


async def test_chat_completions_refuse_as_openai_does(
    http: httpx.AsyncClient, api: FakeTranscriptionAPI
) -> None:
    messages = [{"role": "user", "content": "hello"}]
    assert (await chat(http, api, key="sk-wrong", model="gpt-4o-mini", messages=messages)).json()[
        "error"
    ]["code"] == "invalid_api_key"
    unknown = await chat(http, api, model="gpt-4o-transcribe", messages=messages)
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "model_not_found")
    assert (await chat(http, api, model="gpt-4o-mini", messages=[])).status_code == 400
    api.fail_next(429, retry_after=3, route="chat")
    limited = await chat(http, api, model="gpt-4o-mini", messages=messages)
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "3")
    assert (await chat(http, api, model="gpt-4o-mini", messages=messages)).status_code == 200
    assert [c.status for c in api.chat_requests] == [401, 404, 400, 429, 200]
    assert api.requests == []  # the transcription log and its faults are separate
