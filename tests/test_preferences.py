"""/language, /prompt, /quiet, /names and /settings: hints reach the API, sources are shown."""

from __future__ import annotations

from tests.conftest import RunningBot, next_message_id, next_update_id, send_voice
from tests.fakes import FakeTelegram, FakeTranscriptionAPI, text_update
from tests.test_groups import ADMIN, GROUP, MEMBER, group_command, group_voice
from tests.test_private_chat import USER


async def say(bot: RunningBot, tg: FakeTelegram, text: str, user_id: int = USER) -> str:
    """Send a command in the private chat; the bot's answer (HTML source)."""
    message_id = next_message_id()
    tg.add_message(user_id, message_id)
    before = len(tg.calls("sendMessage"))
    await bot.deliver(
        text_update(
            next_update_id(), chat_id=user_id, user_id=user_id, message_id=message_id, text=text
        )
    )
    answer = (await tg.wait_calls("sendMessage", before + 1))[before]
    return str(answer.params["text"])


async def in_group(bot: RunningBot, tg: FakeTelegram, text: str, user_id: int) -> str:
    before = len(tg.calls("sendMessage"))
    await group_command(bot, tg, text, user_id)
    answer = (await tg.wait_calls("sendMessage", before + 1))[before]
    return str(answer.params["text"])


async def test_language_and_prompt_reach_the_api_and_can_be_cleared(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    assert "<b>vi</b>" in await say(bot, tg, "/language vi")
    answer = await say(bot, tg, "/prompt Kubernetes, Nguyễn, <PostgreSQL>")
    assert "Kubernetes, Nguyễn, &lt;PostgreSQL&gt;" in answer  # shown back, escaped
    await send_voice(bot, tg, voice_bytes, chat_id=USER)
    (first,) = await api.wait_calls(1)
    assert first.fields["language"] == "vi"
    assert first.fields["prompt"] == "Kubernetes, Nguyễn, <PostgreSQL>"

    assert "detected" in await say(bot, tg, "/language auto")
    assert "No vocabulary hint" in await say(bot, tg, "/prompt off")
    await send_voice(bot, tg, voice_bytes, chat_id=USER)
    second = (await api.wait_calls(2))[1]
    assert "language" not in second.fields
    assert "prompt" not in second.fields


async def test_unknown_languages_and_long_prompts_are_refused(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    assert "don't know" in await say(bot, tg, "/language klingon")
    assert "too long" in await say(bot, tg, "/prompt " + "word " * 100)
    await send_voice(bot, tg, voice_bytes, chat_id=USER)
    (call,) = await api.wait_calls(1)
    assert "language" not in call.fields
    assert "prompt" not in call.fields


async def test_group_hints_are_for_admins_and_win_over_the_senders_own(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    tg.set_admins(GROUP, [ADMIN])
    assert "admins" in await in_group(bot, tg, "/language ru", MEMBER)
    assert "<b>ru</b>" in await in_group(bot, tg, "/language ru", ADMIN)
    await say(bot, tg, "/language en", user_id=MEMBER)  # the member's own, for elsewhere
    await say(bot, tg, "/prompt Anya", user_id=MEMBER)
    await group_voice(bot, tg, voice_bytes, user_id=MEMBER)
    (call,) = await api.wait_calls(1)
    assert call.fields["language"] == "ru"  # the group's
    assert call.fields["prompt"] == "Anya"  # the group has none: the sender's own


async def test_settings_show_each_value_and_where_it_comes_from(
    bot: RunningBot, tg: FakeTelegram
) -> None:
    tg.set_admins(GROUP, [ADMIN])
    await say(bot, tg, "/prompt Kubernetes", user_id=MEMBER)
    await in_group(bot, tg, "/language vi", ADMIN)
    await in_group(bot, tg, "/quiet on", ADMIN)
    shown = await in_group(bot, tg, "/settings", MEMBER)
    lines = shown.splitlines()
    assert "Model: <b>gpt-4o-mini-transcribe</b> (default)" in lines
    assert "Language: <b>vi</b> (this group's)" in lines
    assert "Vocabulary hint: <b>Kubernetes</b> (yours)" in lines
    assert "Quiet mode: <b>on</b> (this group's)" in lines
    assert "Sender names: <b>on</b> (default)" in lines
    private = (await say(bot, tg, "/settings", user_id=MEMBER)).splitlines()
    assert "Language: <b>detected</b> (default)" in private
    assert not any(line.startswith("Sender names") for line in private)


async def test_names_is_a_group_setting_for_admins(bot: RunningBot, tg: FakeTelegram) -> None:
    tg.set_admins(GROUP, [ADMIN])
    assert "for groups" in await say(bot, tg, "/names off")
    assert "admins" in await in_group(bot, tg, "/names off", MEMBER)
    assert "don't start" in await in_group(bot, tg, "/names off", ADMIN)
    assert "Sender names: <b>off</b>" in await in_group(bot, tg, "/settings", MEMBER)
