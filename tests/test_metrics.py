"""GET /metrics: jobs by outcome and model, audio, upstream latency, queue, Telegram errors."""

from __future__ import annotations

import asyncio

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import BotFactory, RunningBot, next_message_id, next_update_id, send_voice
from tests.fakes import FakeTelegram, FakeTranscriptionAPI, callback_update, text_update

MINI, FULL = "gpt-4o-mini-transcribe", "gpt-4o-transcribe"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(bot: RunningBot) -> Samples:
    """Every sample of GET /metrics, parsed as Prometheus parses it."""
    response = await bot.http.get(bot.metrics_url)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def choose_model(bot: RunningBot, tg: FakeTelegram, user: int, model: str) -> None:
    """/model in a private chat, then the button of `model`."""
    message_id = next_message_id()
    tg.add_message(user, message_id)
    update = text_update(
        next_update_id(), chat_id=user, user_id=user, message_id=message_id, text="/model"
    )
    await bot.deliver(update)
    await tg.wait_for(lambda: any(c.params.get("chat_id") == user for c in tg.calls("sendMessage")))
    keyboard = [c for c in tg.calls("sendMessage") if c.params.get("chat_id") == user][-1]
    rows = keyboard.params["reply_markup"]["inline_keyboard"]
    data = next(row[0]["callback_data"] for row in rows if row[0]["callback_data"].endswith(model))
    answered = len(tg.calls("answerCallbackQuery"))
    await bot.deliver(
        callback_update(
            next_update_id(),
            chat_id=user,
            user_id=user,
            message_id=tg.last_message_id(user),
            data=data,
        )
    )
    await tg.wait_calls("answerCallbackQuery", answered + 1)


async def transcribed(bot: RunningBot, tg: FakeTelegram, data: bytes, chat_id: int) -> None:
    """Send a voice note and wait for its transcript to stand in the chat."""
    await send_voice(bot, tg, data, chat_id=chat_id)
    await tg.wait_for(
        lambda: (tg.text_of(chat_id, tg.last_message_id(chat_id)) or "").startswith("transcript"),
        timeout=20,
    )


async def test_metrics_count_jobs_audio_upstream_and_telegram_errors(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    # The same note again and again: without the cache, each one is a real transcription.
    async with bot_factory(cache_transcripts_hours=0) as bot:
        await count_everything(bot, tg, api, voice_bytes)


async def count_everything(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    await transcribed(bot, tg, voice_bytes, chat_id=501)  # the default model
    await choose_model(bot, tg, 502, FULL)
    await transcribed(bot, tg, voice_bytes, chat_id=502)

    api.fail_next(503)  # retried upstream, then transcribed
    await transcribed(bot, tg, voice_bytes, chat_id=503)

    api.fail_next(400)  # refused upstream: the job fails
    await send_voice(bot, tg, voice_bytes, chat_id=504)
    await tg.wait_for(
        lambda: "couldn't process" in (tg.text_of(504, tg.last_message_id(504)) or "")
    )

    tg.fail_next("editMessageText", error_code=502, description="Bad Gateway")
    await transcribed(bot, tg, voice_bytes, chat_id=505)  # the job is retried, then done

    await asyncio.sleep(1.1)  # past the cache of the queue depth
    samples = await scrape(bot)
    jobs = "transcribot_jobs_total"
    assert value(samples, jobs, outcome="done", model=MINI) == 3
    assert value(samples, jobs, outcome="done", model=FULL) == 1
    assert value(samples, jobs, outcome="failed", model=MINI) == 1
    assert value(samples, jobs, outcome="retried", model=MINI) == 1
    assert value(samples, jobs, outcome="failed", model=FULL) == 0

    audio = "transcribot_audio_seconds_total"
    assert abs(value(samples, audio, model=MINI) - 3 * 2.0) < 0.3  # three 2-second notes
    assert abs(value(samples, audio, model=FULL) - 2.0) < 0.1
    cost = "transcribot_audio_cost_dollars_total"  # at the registry's prices per minute
    assert abs(value(samples, cost, model=MINI) - 3 * 2.0 / 60 * 0.003) < 0.3 / 60 * 0.003
    assert abs(value(samples, cost, model=FULL) - 2.0 / 60 * 0.006) < 0.1 / 60 * 0.006

    # Every successful request: 3 done notes and the retried run's before Telegram failed.
    latency = "transcribot_upstream_seconds_count"
    assert value(samples, latency, model=MINI) == 4
    assert value(samples, latency, model=FULL) == 1
    assert value(samples, "transcribot_upstream_seconds_sum", model=MINI) > 0
    assert value(samples, "transcribot_upstream_retries_total", model=MINI) == 1

    errors = "transcribot_telegram_errors_total"
    assert value(samples, errors, method="editMessageText", error="502") == 1
    assert value(samples, "transcribot_jobs_queued") == 0
    assert value(samples, "transcribot_jobs_running") == 0


async def test_queue_depth_shows_jobs_waiting_for_a_worker(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    api.delay = 2
    async with bot_factory(max_concurrent_jobs=1) as bot:
        for chat in (601, 602, 603):
            await send_voice(bot, tg, voice_bytes, chat_id=chat)
        await api.wait_calls(1)
        samples = await scrape(bot)
        assert value(samples, "transcribot_jobs_running") == 1
        assert value(samples, "transcribot_jobs_queued") == 2
