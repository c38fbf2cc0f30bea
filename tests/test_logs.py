"""Logs for operators: one line per job with durations and sizes, a request id, text or JSON."""

from __future__ import annotations

import json
import re
import signal
from typing import Any

from tests.conftest import API_KEY, SECRET, TOKEN, ProcessFactory
from tests.fakes import FakeTelegram, FakeTranscriptionAPI
from tests.test_durability import USER, final_texts, voice


async def test_json_logs_one_object_a_line_with_request_ids_and_a_line_per_job(
    bot_process: ProcessFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    bot = bot_process(LOG_FORMAT="json", LOG_LEVEL="DEBUG")
    await bot.start()
    api.set_transcript(voice_bytes, "hello in json")
    update = voice(tg, voice_bytes)
    assert await bot.deliver(update) == 200
    await tg.wait_for(lambda: "hello in json" in final_texts(tg), timeout=20)
    assert await bot.deliver(update) == 200  # a redelivery: logged under the update's id
    api.fail_next(400)
    assert await bot.deliver(voice(tg, voice_bytes)) == 200
    await tg.wait_for(lambda: any("couldn't process" in t for t in final_texts(tg)), timeout=20)
    bot.signal(signal.SIGTERM)
    assert await bot.wait() == 0

    log = bot.log()
    lines = [json.loads(line) for line in log.splitlines() if line.strip()]
    assert all(isinstance(line, dict) for line in lines)
    assert all(
        {"time", "level", "logger", "message", "request_id"} <= line.keys() for line in lines
    )
    for secret in (TOKEN, TOKEN.split(":", 1)[1], API_KEY, SECRET):
        assert secret not in log

    jobs = [line for line in lines if "outcome" in line]
    assert [job["outcome"] for job in jobs] == ["done", "failed"]
    done, failed = jobs
    assert done["request_id"] == f"job-{done['job_id']}"
    assert done["model"] == "gpt-4o-mini-transcribe"
    assert done["kind"] == "voice"
    assert abs(done["audio_seconds"] - 2.0) < 0.1
    assert done["upload_bytes"] == len(voice_bytes)
    assert done["parts"] == 1
    assert done["chars"] == len("hello in json")
    assert done["upstream_attempts"] == 1
    for phase in ("download", "upstream", "reply", "total"):
        assert done[f"{phase}_seconds"] >= 0
    assert done["total_seconds"] >= done["upstream_seconds"] > 0
    assert "UpstreamRejected" in failed["reason"]

    # Lines from inside the failed job (the transcriber's) carry its id too.
    refused = next(line for line in lines if "transcription API refused" in line["message"])
    assert refused["request_id"] == failed["request_id"] == f"job-{failed['job_id']}"
    update_id = update["update_id"]
    redelivered = next(
        line for line in lines if f"update {update_id} seen before" in line["message"]
    )
    assert redelivered["request_id"] == f"upd-{update_id}"


async def test_text_logs_show_the_request_id_and_the_job_line(
    bot_process: ProcessFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    bot = bot_process()
    await bot.start()
    api.set_transcript(voice_bytes, "hello in text")
    assert await bot.deliver(voice(tg, voice_bytes)) == 200
    await tg.wait_for(lambda: "hello in text" in final_texts(tg), timeout=20)
    bot.signal(signal.SIGTERM)
    assert await bot.wait() == 0

    line = next(line for line in bot.log().splitlines() if " done " in line)
    found = re.search(r"INFO bot\.report \[job-(\d+)\]: job=(\d+) done (.*)$", line)
    assert found is not None, line
    assert found[1] == found[2]
    facts: dict[str, Any] = dict(pair.split("=", 1) for pair in found[3].split(" "))
    assert facts["chat_id"] == str(USER)
    assert facts["kind"] == "voice"
    assert facts["model"] == "gpt-4o-mini-transcribe"
    assert facts["upload"] == f"{len(voice_bytes)}B"
    assert facts["chars"] == str(len("hello in text"))
    for phase in ("audio", "download", "upstream", "reply", "total"):
        assert re.fullmatch(r"\d+\.\d{3}s", facts[phase]), facts
