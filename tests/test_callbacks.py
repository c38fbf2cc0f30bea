"""Button data: versioned, within Telegram's 64 bytes, and bound to the job it was made for."""

from __future__ import annotations

import asyncio

import pytest

from bot.callbacks import (
    MAX_BYTES,
    Callbacks,
    ChooseModel,
    StaleButton,
    Subtitles,
    Summary,
    Upgrade,
)
from bot.store import Job
from tests.conftest import RunningBot, send_voice
from tests.fakes import FakeTelegram, FakeTranscriptionAPI
from tests.test_private_chat import USER
from tests.test_upgrade_button import press, upgrade_data

EXPIRED = "This button has expired."


def job(job_id: int, chat_id: int = 5, message_id: int = 10) -> Job:
    return Job(
        chat_id=chat_id,
        message_id=message_id,
        user_id=5,
        chat_type="private",
        kind="voice",
        file_id="f",
        file_unique_id="u",
        model="gpt-4o-mini-transcribe",
        id=job_id,
    )


def test_buttons_unpack_to_what_was_packed_within_64_bytes() -> None:
    callbacks = Callbacks("123456:secret")
    biggest = job(2**63 - 1, chat_id=-(10**13), message_id=2**31)
    for kind in (Upgrade, Summary, Subtitles):
        data = callbacks.for_job(kind, biggest)
        assert len(data.encode()) <= MAX_BYTES
        button = callbacks.unpack(data)
        assert isinstance(button, kind)
        assert callbacks.belongs(button, biggest)
    assert callbacks.unpack(callbacks.choose_model("gpt-4o-transcribe")) == ChooseModel(
        "gpt-4o-transcribe"
    )
    assert callbacks.unpack(callbacks.choose_model("m" * 56)) == ChooseModel("m" * 56)
    with pytest.raises(ValueError, match="over 64 bytes"):
        callbacks.choose_model("m" * 57)


@pytest.mark.parametrize(
    "data", ["up:12", "sum:12", "model:gpt-4o-transcribe", "2:up:12:x", "1:up:12", "1:zz:1:x", ""]
)
def test_older_and_unknown_data_is_stale(data: str) -> None:
    with pytest.raises(StaleButton):
        Callbacks("123456:secret").unpack(data)


def test_a_tag_binds_the_button_to_its_job_key_and_kind() -> None:
    callbacks = Callbacks("123456:secret")
    button = callbacks.unpack(callbacks.for_job(Upgrade, job(7)))
    assert isinstance(button, Upgrade)
    assert callbacks.belongs(button, job(7))
    # The same id reused for another note (ids after pruning), or another bot's key.
    assert not callbacks.belongs(button, job(7, message_id=11))
    assert not callbacks.belongs(button, job(7, chat_id=6))
    assert not Callbacks("654321:other").belongs(button, job(7))
    summary = callbacks.unpack(callbacks.for_job(Summary, job(7)))
    assert isinstance(summary, Summary)
    assert not callbacks.belongs(Summary(7, button.tag), job(7))  # an upgrade's tag


async def test_a_button_replayed_onto_another_job_is_refused(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    await send_voice(bot, tg, voice_bytes, chat_id=USER)
    first = int((await tg.wait_calls("editMessageText", 1))[0].params["message_id"])
    await send_voice(bot, tg, voice_bytes, chat_id=USER)
    second = int((await tg.wait_calls("editMessageText", 2))[1].params["message_id"])
    _, _, first_job, first_tag = upgrade_data(tg, USER, first).split(":")
    version, kind, second_job, _ = upgrade_data(tg, USER, second).split(":")
    assert first_job != second_job

    forged = [
        f"{version}:{kind}:{second_job}:{first_tag}",  # the first note's tag on the second job
        f"{version}:{kind}:{second_job}:{'A' * len(first_tag)}",  # a guessed tag
        f"{version}:{kind}:{int(second_job) + 1}:{first_tag}",  # a job that does not exist yet
    ]
    for number, data in enumerate(forged, start=1):
        await press(bot, tg, USER, second, data, USER)
        answers = await tg.wait_calls("answerCallbackQuery", number)
        assert answers[-1].params.get("text") == EXPIRED
    await asyncio.sleep(0.3)
    assert len(api.requests) == 2  # no upgrade ran
    assert upgrade_data(tg, USER, second)  # the real button is still there


async def test_buttons_of_an_older_version_get_a_polite_answer(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    await send_voice(bot, tg, voice_bytes, chat_id=USER)
    transcript = int((await tg.wait_calls("editMessageText", 1))[0].params["message_id"])
    for number, data in enumerate(["up:1", "sum:1", "model:gpt-4o-transcribe", "?"], start=1):
        await press(bot, tg, USER, transcript, data, USER)
        answers = await tg.wait_calls("answerCallbackQuery", number)
        assert answers[-1].params.get("text") == EXPIRED
        assert answers[-1].params.get("show_alert") is True
    assert len(api.requests) == 1
    assert len(tg.calls("editMessageText")) == 1
