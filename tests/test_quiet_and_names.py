"""Busy groups: quiet mode posts only the transcript; transcripts say who spoke."""

from __future__ import annotations

from typing import Any

from tests.conftest import BotFactory, RunningBot, next_message_id, next_update_id, send_voice
from tests.fakes import FakeTelegram, FakeTranscriptionAPI, voice_update
from tests.test_groups import ADMIN, GROUP, MEMBER, group_command, group_voice
from tests.test_preferences import in_group, say
from tests.test_private_chat import USER


def bot_calls(tg: FakeTelegram) -> list[str]:
    """Every call that shows something in a chat."""
    shown = {"sendMessage", "editMessageText", "sendDocument", "sendChatAction"}
    return [call.method for call in tg.requests if call.method in shown]


async def test_quiet_group_sees_only_the_final_transcript(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    tg.set_admins(GROUP, [ADMIN])
    await in_group(bot, tg, "/quiet on", ADMIN)
    tg.requests.clear()
    api.set_transcript(voice_bytes, "quietly done")
    api.stream_delay = 0.3  # a slow stream: live edits would show, were they not off here
    message_id = await group_voice(bot, tg, voice_bytes)

    (reply,) = await tg.wait_calls("sendMessage", 1)
    assert reply.params["text"] == "👤 <b>Ann</b>\nquietly done"
    assert reply.params["reply_parameters"]["message_id"] == message_id
    assert bot_calls(tg) == ["sendMessage"]  # no placeholder or progress came before it


async def test_quiet_failures_are_silent_unless_asked_for(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    tg.set_admins(GROUP, [ADMIN])
    await in_group(bot, tg, "/quiet on", ADMIN)
    tg.requests.clear()
    api.fail_next(400, message="Audio file might be corrupted or unsupported")
    voice = forwarded(tg, voice_bytes, None, first_name="Ann")
    await bot.deliver(voice)
    await api.wait_calls(1)

    # Asked with /transcribe (the automatic job failed, so this is a new attempt): told.
    api.fail_next(400, message="Audio file might be corrupted or unsupported")
    await group_command(bot, tg, "/transcribe", MEMBER, reply_to=voice["message"])
    told = (await tg.wait_calls("sendMessage", 1))[0]
    assert "couldn't process" in told.params["text"]
    # Only that: the automatic job had failed (else /transcribe would not retry it) unheard.
    assert bot_calls(tg) == ["sendMessage"]


async def test_quiet_in_a_private_chat_is_the_persons_choice(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    assert "on" in await say(bot, tg, "/quiet on")
    tg.requests.clear()
    api.set_transcript(voice_bytes, "just the text")
    await send_voice(bot, tg, voice_bytes, chat_id=USER)
    (reply,) = await tg.wait_calls("sendMessage", 1)
    assert reply.params["text"] == "just the text"
    assert bot_calls(tg) == ["sendMessage"]


def forwarded(
    tg: FakeTelegram, data: bytes, origin: dict[str, Any] | None, first_name: str
) -> dict[str, Any]:
    message_id = next_message_id()
    tg.add_message(GROUP, message_id)
    return voice_update(
        next_update_id(),
        chat_id=GROUP,
        user_id=MEMBER,
        message_id=message_id,
        file=tg.add_file(data),
        chat_type="supergroup",
        first_name=first_name,
        forward_origin=origin,
    )


async def test_transcripts_in_groups_name_the_speaker_escaped(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    api.set_transcript(voice_bytes, "hello")
    await bot.deliver(forwarded(tg, voice_bytes, None, first_name="<Bob & \u202eCo>"))
    reply = (await tg.wait_calls("sendMessage", 1))[0]
    assert reply.params["text"] == "👤 <b>&lt;Bob &amp; \u202eCo&gt;</b>\nhello"
    assert tg.text_of(GROUP, reply.result["message_id"]) == "👤 <Bob & \u202eCo>\nhello"


async def test_a_forwarded_note_is_credited_to_its_author(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    api.set_transcript(voice_bytes, "original words")
    origin = {
        "type": "user",
        "date": 1,
        "sender_user": {"id": 99, "is_bot": False, "first_name": "Chi", "last_name": "Nguyễn"},
    }
    await bot.deliver(forwarded(tg, voice_bytes, origin, first_name="Forwarder"))
    reply = (await tg.wait_calls("sendMessage", 1))[0]
    assert reply.params["text"] == "👤 <b>Chi</b>\noriginal words"

    hidden = {"type": "hidden_user", "date": 1, "sender_user_name": "Someone Private"}
    await bot.deliver(forwarded(tg, voice_bytes, hidden, first_name="Forwarder"))
    reply = (await tg.wait_calls("sendMessage", 2))[1]
    assert reply.params["text"] == "👤 <b>Someone Private</b>\noriginal words"


async def test_names_off_leaves_the_transcript_bare(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    tg.set_admins(GROUP, [ADMIN])
    await in_group(bot, tg, "/names off", ADMIN)
    api.set_transcript(voice_bytes, "bare words")
    await group_voice(bot, tg, voice_bytes)
    await tg.wait_for(
        lambda: any(c.params["text"] == "bare words" for c in tg.calls("sendMessage"))
    )


async def test_a_quiet_group_hears_no_refusal_for_automatic_notes(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    tg.set_admins(GROUP, [ADMIN])
    async with bot_factory(user_jobs_per_minute=1) as bot:
        await in_group(bot, tg, "/quiet on", ADMIN)
        tg.requests.clear()
        await group_voice(bot, tg, voice_bytes)
        await tg.wait_calls("sendMessage", 1)  # the transcript
        await group_voice(bot, tg, voice_bytes)  # over the limit: refused, silently
        await group_command(bot, tg, "/settings", MEMBER)  # answered after any refusal
        await tg.wait_calls("sendMessage", 2)
    texts = [str(c.params["text"]) for c in tg.calls("sendMessage")]
    assert not any("a lot at once" in t for t in texts), texts
