"""/stats names a failure by its kind and a log reference, never with the raw error."""

from __future__ import annotations

import logging
import re

import pytest
from telegram.error import BadRequest, Forbidden, TimedOut

from bot.errors import AudioTooLong, CorruptAudio, LinkPrivate, UpstreamRejected
from bot.failures import failure_of, parse_stored
from tests.conftest import TOKEN, BotFactory, RunningBot, next_message_id, next_update_id
from tests.fakes import FakeTelegram, FakeTranscriptionAPI, text_update
from tests.test_access_and_limits import replies_to, send

USER = 601
ADMIN = 602
# What an error can carry: in local mode the Bot API server's files live under a directory
# named after the token.
LEAKY = f"cannot read /var/lib/telegram-bot-api/{TOKEN}/voice/file_7.oga <b>"


async def stats_for(bot: RunningBot, tg: FakeTelegram, language: str = "en") -> str:
    message_id = next_message_id()
    tg.add_message(ADMIN, message_id)
    before = len(replies_to(tg, ADMIN))
    update = text_update(
        next_update_id(),
        chat_id=ADMIN,
        user_id=ADMIN,
        message_id=message_id,
        text="/stats",
        language_code=language,
    )
    assert (await bot.deliver(update)).status_code == 200
    await tg.wait_for(lambda: len(replies_to(tg, ADMIN)) > before)
    return replies_to(tg, ADMIN)[-1]


async def test_stats_shows_the_kind_of_failure_and_a_reference_found_in_the_log(
    bot_factory: BotFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    voice_bytes: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    async with bot_factory(admin_user_ids=str(ADMIN)) as bot:
        api.fail_next(400, message=LEAKY)
        await send(bot, tg, voice_bytes, user=USER)
        await tg.wait_for(lambda: any("couldn't process" in t for t in replies_to(tg, USER)))
        stats = await stats_for(bot, tg)
    assert TOKEN not in stats
    assert "telegram-bot-api" not in stats
    found = re.search(r"#(\d+): transcription API, log ref\. ([0-9a-f]{6})", stats)
    assert found is not None, stats
    job_id, ref = found.groups()
    job_line = next(r.getMessage() for r in caplog.records if ref in r.getMessage())
    assert job_line.startswith(f"job={job_id} failed")
    assert "UpstreamRejected" in job_line  # the details are for the operator, in the log


async def test_stats_names_the_failure_in_the_admins_language(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    async with bot_factory(admin_user_ids=str(ADMIN)) as bot:
        api.fail_next(400, message=LEAKY)
        await send(bot, tg, voice_bytes, user=USER)
        await tg.wait_for(lambda: len(replies_to(tg, USER)) == 1)
        await tg.wait_for(lambda: any("couldn't process" in t for t in replies_to(tg, USER)))
        stats = await stats_for(bot, tg, language="ru")
    assert re.search(r"#\d+: API распознавания, [^0-9a-f]*[0-9a-f]{6}", stats), stats
    assert TOKEN not in stats


@pytest.mark.parametrize(
    ("error", "category"),
    [
        (CorruptAudio("ffprobe: /tmp/x.oga: Invalid data"), "audio"),
        (AudioTooLong(7200, 3600), "audio"),
        (UpstreamRejected("bad file", 400), "upstream"),
        (LinkPrivate("10.0.0.1 is private"), "link"),
        (BadRequest("Message is too long"), "telegram"),
        (TimedOut(), "telegram"),
        (Forbidden("bot was blocked by the user"), "forbidden"),
        (KeyError("x"), "unexpected"),
    ],
)
def test_each_error_is_stored_as_its_category_and_a_reference_only(
    error: Exception, category: str
) -> None:
    failed = failure_of(error)
    assert parse_stored(failed.stored) == (category, failed.ref)
    assert str(error) not in failed.stored
    assert failed.logged.startswith(f"{failed.stored}: {type(error).__name__}")


def test_reasons_in_another_form_are_not_shown() -> None:
    assert parse_stored(f"UpstreamRejected: {LEAKY}") == (None, "")
    assert parse_stored("upstream <b>x</b>") == (None, "")
