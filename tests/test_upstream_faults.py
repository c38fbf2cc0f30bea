"""The transcription API fails: retried with backoff, then a clear message; nothing stuck."""

from __future__ import annotations

from tests.conftest import BotFactory, RunningBot, send_voice
from tests.fakes import FakeTelegram, FakeTranscriptionAPI
from tests.test_private_chat import USER


async def test_429_is_retried_after_retry_after_and_succeeds(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    api.set_transcript(voice_bytes, "after the rate limit")
    api.fail_next(429, retry_after=1)
    await send_voice(bot, tg, voice_bytes, chat_id=USER)
    edit = (await tg.wait_calls("editMessageText", 1, timeout=15))[0]
    assert edit.params["text"] == "after the rate limit"
    assert [r.status for r in api.requests] == [429, 200]
    assert api.requests[1].at - api.requests[0].at >= 0.9  # Retry-After honoured


async def test_persistent_500_tells_the_user_and_the_next_note_works(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    async with bot_factory(upstream_max_attempts=3, upstream_retry_seconds=10) as bot:
        api.fail_next(500, times=3)
        await send_voice(bot, tg, voice_bytes, chat_id=USER)
        edit = (await tg.wait_calls("editMessageText", 1, timeout=20))[0]
        assert "not answering" in edit.params["text"]
        assert len(api.requests) == 3

        api.set_transcript(voice_bytes, "works again")
        await send_voice(bot, tg, voice_bytes, chat_id=USER)
        await tg.wait_for(
            lambda: any(c.params["text"] == "works again" for c in tg.calls("editMessageText"))
        )


async def test_bad_key_is_told_briefly_and_key_never_shown(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    async with bot_factory(openai_api_key="sk-wrong-key-123456") as bot:
        await send_voice(bot, tg, voice_bytes, chat_id=USER)
        edit = (await tg.wait_calls("editMessageText", 1))[0]
        assert "credentials" in edit.params["text"]
        assert "sk-wrong" not in edit.params["text"]
        assert len(api.requests) == 1  # a 401 is not retried
