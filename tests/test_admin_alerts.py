"""Admins are told, privately, grouped within their budget, in their language; /alerts off."""

from __future__ import annotations

import asyncio
import functools
import signal

from bot.store import Prefs
from tests import test_translate as translating
from tests.conftest import (
    BotFactory,
    ProcessFactory,
    RunningBot,
    eventually,
    next_message_id,
    next_update_id,
    send_voice,
    voice_message,
)
from tests.fakes import FakeTelegram, FakeTranscriptionAPI, text_update
from tests.fakes.telegram_models import Call

ADMIN, OTHER_ADMIN, USER = 7001, 7002, 4242
INTERVAL = 2.0  # the alert budget in these tests: one message per 2 s


async def say(
    bot: RunningBot, tg: FakeTelegram, text: str, user_id: int, language_code: str = "en"
) -> str:
    """A command in the admin's private chat; the bot's answer."""
    message_id = next_message_id()
    tg.add_message(user_id, message_id)
    before = len(tg.calls("sendMessage"))
    update = text_update(
        next_update_id(),
        chat_id=user_id,
        user_id=user_id,
        message_id=message_id,
        text=text,
        language_code=language_code,
    )
    assert (await bot.deliver(update)).status_code == 200
    answer = (await tg.wait_calls("sendMessage", before + 1))[before]
    return str(answer.params["text"])


def alerts_to(tg: FakeTelegram, admin: int) -> list[Call]:
    return [
        c
        for c in tg.calls("sendMessage")
        if c.params.get("chat_id") == admin and "🚨" in str(c.params["text"])
    ]


async def test_failures_the_operator_must_fix_are_told_at_once_then_as_one_digest(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    async with bot_factory(admin_user_ids={ADMIN}, admin_alert_interval_seconds=INTERVAL) as bot:
        await say(bot, tg, "/alerts", ADMIN)
        api.fail_next(401, times=6)  # the key was revoked: every job fails, no retries
        await send_voice(bot, tg, voice_bytes, chat_id=USER)
        await eventually(lambda: len(alerts_to(tg, ADMIN)) == 1, what="the first at once")
        first = alerts_to(tg, ADMIN)[0]
        assert "failed after its retries" in first.params["text"]
        assert "UpstreamAuthError" in first.params["text"]
        for n in range(5):
            await send_voice(bot, tg, voice_bytes, chat_id=USER + 1 + n)
        await api.wait_calls(6)
        await asyncio.sleep(INTERVAL / 4)
        assert len(alerts_to(tg, ADMIN)) == 1, "the rest wait for the budget"
        await eventually(lambda: len(alerts_to(tg, ADMIN)) == 2, timeout=INTERVAL * 3)
        digest = alerts_to(tg, ADMIN)[1]
        assert digest.at - first.at >= INTERVAL * 0.95
        assert "5 problems in the last" in digest.params["text"]
        assert "5 jobs failed" in digest.params["text"]
        await asyncio.sleep(INTERVAL * 1.5)
        assert len(alerts_to(tg, ADMIN)) == 2, "nothing new: nothing sent"
    # The users were told too, and nothing of a transcript or the key reached the admin.
    assert api.api_key not in str(digest.params["text"])


async def test_alerts_come_in_the_admins_language_and_off_stops_them_for_that_admin(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    async with bot_factory(
        admin_user_ids={ADMIN, OTHER_ADMIN}, admin_alert_interval_seconds=0
    ) as bot:
        assert "🔔" in await say(bot, tg, "/alerts", ADMIN, language_code="ru")
        assert "🔕" in await say(bot, tg, "/alerts off", OTHER_ADMIN)
        api.fail_next(401)
        await send_voice(bot, tg, voice_bytes, chat_id=USER)
        await eventually(lambda: len(alerts_to(tg, ADMIN)) == 1)
        text = str(alerts_to(tg, ADMIN)[0].params["text"])
        assert "Transcribot" in text
        assert "needs attention" not in text  # Russian, from the admin's last update
        await asyncio.sleep(0.5)
        assert alerts_to(tg, OTHER_ADMIN) == []

        assert "🔔" in await say(bot, tg, "/alerts on", OTHER_ADMIN)
        api.fail_next(401)
        await send_voice(bot, tg, voice_bytes, chat_id=USER + 1)
        await eventually(lambda: len(alerts_to(tg, OTHER_ADMIN)) == 1)
        assert "needs attention" in str(alerts_to(tg, OTHER_ADMIN)[0].params["text"])


async def test_alerts_is_for_admins_only_and_says_how_to_use_it(
    bot: RunningBot, tg: FakeTelegram
) -> None:
    assert "admins" in await say(bot, tg, "/alerts off", USER)
    assert await bot.service.store.get_prefs("user", USER) == Prefs()


async def test_help_shows_the_admins_their_own_commands_and_no_one_else(
    bot_factory: BotFactory, tg: FakeTelegram
) -> None:
    async with bot_factory(admin_user_ids={ADMIN}) as bot:
        for_admin = await say(bot, tg, "/help", ADMIN)
        assert "/alerts on|off" in for_admin
        assert "/stats" in for_admin
        for_user = await say(bot, tg, "/help", USER)
        assert "/alerts" not in for_user
        assert "/stats" not in for_user


async def test_a_users_own_bad_audio_is_not_the_admins_problem(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    async with bot_factory(admin_user_ids={ADMIN}, admin_alert_interval_seconds=0) as bot:
        await say(bot, tg, "/alerts", ADMIN)
        api.fail_next(400)  # the API could not process this audio: the user is told
        await send_voice(bot, tg, voice_bytes, chat_id=USER)
        await tg.wait_for(lambda: len(tg.bot_messages(USER)) >= 1)
        await api.wait_calls(1)
        await asyncio.sleep(0.5)
        assert alerts_to(tg, ADMIN) == []


async def test_a_file_telegram_will_not_hand_over_is_the_users_not_the_admins(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    async with bot_factory(admin_user_ids={ADMIN}, admin_alert_interval_seconds=0) as bot:
        await say(bot, tg, "/alerts", ADMIN)
        for n, description in enumerate(
            [
                "Bad Request: file is too big",
                "Bad Request: wrong file_id or the file is temporarily unavailable",
            ]
        ):
            tg.fail_next("getFile", error_code=400, description=description)
            await send_voice(bot, tg, voice_bytes, chat_id=USER + n)
            await tg.wait_for(lambda n=n: len(tg.bot_messages(USER + n)) >= 1)  # type: ignore[misc]
        await asyncio.sleep(0.5)
        assert alerts_to(tg, ADMIN) == []
        assert "too big" in (tg.bot_messages(USER)[0].text or "")


async def test_telegram_errors_are_told_but_429s_are_not(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    async with bot_factory(admin_user_ids={ADMIN}, admin_alert_interval_seconds=0) as bot:
        await say(bot, tg, "/alerts", ADMIN)
        tg.fail_next("sendMessage", error_code=429, retry_after=1)
        await send_voice(bot, tg, voice_bytes, chat_id=USER)
        await tg.wait_for(
            lambda: any("transcript" in (m.text or "") for m in tg.bot_messages(USER))
        )
        await asyncio.sleep(0.3)
        assert alerts_to(tg, ADMIN) == [], "a 429 is waited out, not told"

        tg.fail_next("sendMessage", error_code=400, description="Bad Request: BUTTON_DATA_INVALID")
        await send_voice(bot, tg, voice_bytes, chat_id=USER + 1)
        await eventually(lambda: len(alerts_to(tg, ADMIN)) == 1)
        text = str(alerts_to(tg, ADMIN)[0].params["text"])
        assert "sendMessage: 400 Bad Request: BUTTON_DATA_INVALID" in text


# What people do in their own chats, which the bot copes with and the operator cannot change.
PEOPLES_DOING = [
    (403, "Forbidden: bot was kicked from the group chat"),
    (403, "Forbidden: bot was kicked from the supergroup chat"),
    (403, "Forbidden: bot is not a member of the supergroup chat"),
    (400, "Bad Request: not enough rights to send text messages to the chat"),
    (400, "Bad Request: CHAT_WRITE_FORBIDDEN"),
    (400, "Bad Request: have no rights to send a message"),
    (400, "Bad Request: TOPIC_CLOSED"),
]


async def test_what_people_do_in_their_own_groups_is_not_told(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    def refused_more_than(n: int) -> bool:
        return len([c for c in tg.calls("sendMessage") if not c.ok]) > n

    async with bot_factory(admin_user_ids={ADMIN}, admin_alert_interval_seconds=0) as bot:
        await say(bot, tg, "/alerts", ADMIN)
        for n, (code, description) in enumerate(PEOPLES_DOING):
            tg.fail_next("sendMessage", error_code=code, description=description)
            await send_voice(bot, tg, voice_bytes, chat_id=-1001 - n, chat_type="supergroup")
            await eventually(functools.partial(refused_more_than, n), what=description)
        tg.fail_next("sendMessage", error_code=500, description="Internal Server Error")
        await send_voice(bot, tg, voice_bytes, chat_id=USER)
        await eventually(lambda: len(alerts_to(tg, ADMIN)) >= 1)
        await asyncio.sleep(0.5)
        [told] = alerts_to(tg, ADMIN)
        assert "sendMessage: 500 Internal Server Error" in str(told.params["text"])


async def test_a_job_that_crashed_the_bot_on_every_attempt_is_given_up_and_told(
    bot_process: ProcessFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    settings = {
        "ADMIN_USER_IDS": str(ADMIN),
        "ADMIN_ALERT_INTERVAL_SECONDS": "0",
        "JOB_MAX_ATTEMPTS": "1",
        "JOB_LEASE_SECONDS": "2",
    }
    tg.add_message(ADMIN, next_message_id())  # the admin has a private chat with the bot
    api.delay = 30  # the attempt hangs upstream until the process is killed
    first = bot_process(**settings)
    await first.start()
    assert await first.deliver(voice_message(tg, voice_bytes, chat_id=USER)) == 200
    await eventually(lambda: api.in_flight > 0, timeout=15)
    first.signal(signal.SIGKILL)
    await first.wait()

    api.delay = 0
    second = bot_process(**settings)
    await second.start()
    await eventually(lambda: len(alerts_to(tg, ADMIN)) == 1, timeout=20)
    text = str(alerts_to(tg, ADMIN)[0].params["text"])
    assert "was given up" in text
    assert api.requests == [], "the hung attempt was cut off, and none was made after it"
    await tg.wait_for(lambda: any("😔" in (m.text or "") for m in tg.bot_messages(USER)))
    second.signal(signal.SIGTERM)
    assert await second.wait() == 0


async def test_a_translation_refused_for_the_key_is_told(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    """The reader is told only the admin can fix it: so the admin is told."""
    async with bot_factory(
        admin_user_ids={ADMIN}, admin_alert_interval_seconds=0, **translating.SETTINGS
    ) as bot:
        await say(bot, tg, "/alerts", ADMIN)
        transcript_id = await translating.transcript_of(
            bot, tg, api, voice_bytes, translating.ENGLISH
        )
        api.fail_next(401, route="chat")
        await translating.reply_command(bot, tg, "/translate vi", transcript_id)
        [told] = await translating.final_translation(tg, transcript_id)
        assert "Only the bot's admin can fix this" in told
        await eventually(lambda: len(alerts_to(tg, ADMIN)) == 1)
        assert "translation: UpstreamAuthError" in str(alerts_to(tg, ADMIN)[0].params["text"])


async def test_the_api_down_for_a_while_is_told_and_so_is_its_return(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    # One attempt a job: no retry wait (stamina's jitter) to count as time down.
    settings = {"upstream_max_attempts": 1, "admin_alert_api_down_seconds": 1.5}
    async with bot_factory(
        admin_user_ids={ADMIN}, admin_alert_interval_seconds=0, **settings
    ) as bot:
        await say(bot, tg, "/alerts", ADMIN)
        api.fail_next(503)
        await send_voice(bot, tg, voice_bytes, chat_id=USER)
        await eventually(lambda: len(alerts_to(tg, ADMIN)) == 1, what="the job's failure")
        assert "has not answered" not in str(alerts_to(tg, ADMIN)[0].params["text"])
        await asyncio.sleep(1.5)  # still down a while later
        api.fail_next(503)
        await send_voice(bot, tg, voice_bytes, chat_id=USER + 1)
        await eventually(
            lambda: any(
                "has not answered for" in str(c.params["text"]) for c in alerts_to(tg, ADMIN)
            )
        )
        await send_voice(bot, tg, voice_bytes, chat_id=USER + 2)  # the API answers again
        await eventually(
            lambda: any("answers again" in str(c.params["text"]) for c in alerts_to(tg, ADMIN))
        )


async def test_replicas_sharing_redis_keep_to_one_budget_for_the_bot(
    bot_factory: BotFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    voice_bytes: bytes,
    redis_url: str,
) -> None:
    settings = {
        "database_url": redis_url,
        "admin_user_ids": {ADMIN},
        "admin_alert_interval_seconds": INTERVAL,
    }
    async with bot_factory(**settings) as one, bot_factory(**settings) as two:
        api.fail_next(401, times=2)  # each replica's job fails: each has a problem to tell
        await send_voice(one, tg, voice_bytes, chat_id=USER)
        await send_voice(two, tg, voice_bytes, chat_id=USER + 1)
        await api.wait_calls(2)
        await eventually(lambda: len(alerts_to(tg, ADMIN)) == 1)
        await asyncio.sleep(INTERVAL / 2)
        assert len(alerts_to(tg, ADMIN)) == 1, "the other replica waits for the bot's budget"
        await eventually(lambda: len(alerts_to(tg, ADMIN)) == 2, timeout=INTERVAL * 3)
        first, second = alerts_to(tg, ADMIN)
        assert second.at - first.at >= INTERVAL * 0.95
