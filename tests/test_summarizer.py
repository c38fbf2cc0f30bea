"""Summaries through {base}/chat/completions: usage counted, retried like transcriptions."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from pydantic import SecretStr

from bot.errors import UpstreamAuthError, UpstreamRejected, UpstreamUnavailable
from bot.summarizer import Summarizer, Summary
from tests.conftest import API_KEY
from tests.fakes import FakeTranscriptionAPI
from tests.fakes.chat_completions import summary_of

TRANSCRIPT = (
    "Chào các bạn hôm nay chúng ta nói về thời tiết ở Hà Nội trời mưa suốt cả tuần "
    "và nhiệt độ giảm mạnh vào buổi tối"
)


@pytest.fixture
async def summarizer(api: FakeTranscriptionAPI) -> AsyncIterator[Summarizer]:
    client = Summarizer(api.url, SecretStr(API_KEY), max_attempts=3, retry_seconds=10)
    yield client
    await client.aclose()


def answering(body: bytes, status: int = 200) -> Summarizer:
    """A summarizer whose API answers `body` to everything."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers={"Content-Type": "application/json"})

    transport = httpx.MockTransport(handler)
    return Summarizer(
        "http://api.test/v1", SecretStr(API_KEY), client=httpx.AsyncClient(transport=transport)
    )


async def test_a_transcript_is_summarized_in_its_language_with_the_tokens_used(
    api: FakeTranscriptionAPI, summarizer: Summarizer
) -> None:
    summary = await summarizer.summarize(TRANSCRIPT, "gpt-4o-mini")

    assert summary.text == summary_of(TRANSCRIPT)
    call = api.chat_requests[0]
    assert call.model == "gpt-4o-mini"
    system, user = call.messages
    assert system["role"] == "system"
    assert "language of the transcript" in system["content"]
    assert user == {"role": "user", "content": TRANSCRIPT}
    words = len(TRANSCRIPT.split()) + len(system["content"].split())
    assert (summary.input_tokens, summary.output_tokens) == (words + 6, 13)


async def test_rate_limits_and_server_errors_are_retried_then_it_succeeds(
    api: FakeTranscriptionAPI, summarizer: Summarizer
) -> None:
    api.fail_next(429, retry_after=1, route="chat")
    api.fail_next(500, route="chat")
    summary = await summarizer.summarize(TRANSCRIPT, "gpt-4o-mini")

    assert summary.text == summary_of(TRANSCRIPT)
    assert [c.status for c in api.chat_requests] == [429, 500, 200]
    assert api.chat_requests[1].at - api.chat_requests[0].at >= 0.9  # Retry-After honoured


async def test_failures_that_outlast_the_retries_raise_upstream_unavailable(
    api: FakeTranscriptionAPI, summarizer: Summarizer
) -> None:
    api.fail_next(503, times=3, route="chat")
    with pytest.raises(UpstreamUnavailable):
        await summarizer.summarize(TRANSCRIPT, "gpt-4o-mini")
    assert len(api.chat_requests) == 3


@pytest.mark.parametrize(
    ("setup", "model"),
    [
        (lambda api: api.fail_next(400, route="chat"), "gpt-4o-mini"),
        (lambda api: None, "no-such-model"),  # 404 model_not_found
    ],
)
async def test_a_refused_request_raises_upstream_rejected_at_once(
    api: FakeTranscriptionAPI,
    summarizer: Summarizer,
    setup: Callable[[FakeTranscriptionAPI], None],
    model: str,
) -> None:
    setup(api)
    with pytest.raises(UpstreamRejected) as caught:
        await summarizer.summarize(TRANSCRIPT, model)
    assert not isinstance(caught.value, UpstreamAuthError)
    assert len(api.chat_requests) == 1


async def test_a_wrong_key_raises_upstream_auth_error(api: FakeTranscriptionAPI) -> None:
    summarizer = Summarizer(api.url, SecretStr("sk-wrong-key-0000"))
    try:
        with pytest.raises(UpstreamAuthError):
            await summarizer.summarize(TRANSCRIPT, "gpt-4o-mini")
    finally:
        await summarizer.aclose()
    assert [c.status for c in api.chat_requests] == [401]


async def test_an_answer_without_usage_counts_no_tokens() -> None:
    summarizer = answering(b'{"choices": [{"message": {"role": "assistant", "content": " Hi. "}}]}')
    try:
        assert await summarizer.summarize(TRANSCRIPT, "gpt-4o-mini") == Summary("Hi.", 0, 0)
    finally:
        await summarizer.aclose()


@pytest.mark.parametrize(
    "body", [b'{"choices": []}', b'{"choices": [{"message": {"content": null}}]}', b"<html>"]
)
async def test_an_answer_without_text_is_refused(body: bytes) -> None:
    summarizer = answering(body)
    try:
        with pytest.raises(UpstreamRejected, match="without text"):
            await summarizer.summarize(TRANSCRIPT, "gpt-4o-mini")
    finally:
        await summarizer.aclose()
