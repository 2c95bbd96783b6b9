"""Faults a flaky or hostile model server throws at the backend: each ends as a typed error."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx2
import pytest

from keyfindings import BackendTimeoutError, Paper, RetriesExhaustedError, RetryPolicy
from keyfindings.backends.openai_compat import OpenAICompatBackend, _retry_after
from keyfindings.errors import RateLimitedError, ServerError
from keyfindings.ratelimit import RateLimiter
from keyfindings.redact import redact_url
from tests.conftest import rct_answer
from tests.scripted_server import Reply, ScriptedServer, chat, error

ONE_TRY = RetryPolicy(attempts=1)


def headers(**values: str) -> httpx2.Response:
    return httpx2.Response(429, headers={k.replace("_", "-"): v for k, v in values.items()})


@pytest.mark.parametrize(
    ("header", "value", "expected"),
    [
        ("retry_after", "2", 2.0),
        ("retry_after_ms", "1500", 1.5),
        ("retry_after", "soon", None),
        ("retry_after", "nan", None),
        ("retry_after", "inf", None),
        ("retry_after", "-3", None),
        ("retry_after_ms", "-5000", None),
        ("retry_after_ms", "nan", None),
        ("retry_after", "Wed, 21 Oct 2015 07:28:00 GMT", None),  # in the past
        ("retry_after", "Wed, 99 Foo 2015 99:99:99 GMT", None),
    ],
)
def test_retry_after_junk_reads_as_not_said(
    header: str, value: str, expected: float | None
) -> None:
    assert _retry_after(headers(**{header: value})) == expected


@pytest.mark.parametrize("value", ["soon", "nan", "-1"])
def test_junk_retry_after_still_backs_off_and_recovers(
    make_summarizer: Any, server: ScriptedServer, rct: Paper, value: str
) -> None:
    server.queue(error(429, "slow down", **{"retry-after": value}), chat(rct_answer()))
    result = make_summarizer().summarize(rct)
    assert result.status == "ok" and server.calls == 2


def test_one_huge_retry_after_does_not_stop_the_batch_for_a_day() -> None:
    async def pause_after_429() -> float:
        limiter = RateLimiter(concurrency=4)
        await limiter.acquire(10)
        await limiter.release(rate_limited=RateLimitedError("429", retry_after=100_000))
        return limiter._pause_until - time.monotonic()

    assert asyncio.run(pause_after_429()) <= 60.0


@pytest.mark.parametrize(
    "raw",
    [
        b'{"id": "x", "choices": [{"message": {"content": "{\\"stu',  # truncated
        b'{"choices": "not a list"}',
        b'{"choices": [{"message": 7}]}',
        b"[" * 100_000 + b"]" * 100_000,  # nested too deep for the JSON parser
        b"<html>bad gateway</html>",
    ],
)
def test_malformed_200_is_a_retried_server_error(
    make_summarizer: Any, server: ScriptedServer, rct: Paper, raw: bytes
) -> None:
    server.queue(Reply(raw=raw), chat(rct_answer()))
    assert make_summarizer().summarize(rct).status == "ok" and server.calls == 2

    server.queue(Reply(raw=raw))
    with pytest.raises(RetriesExhaustedError) as info:
        make_summarizer(retry=ONE_TRY, use_cache=False).summarize(rct)
    assert isinstance(info.value.last, ServerError) and "malformed answer" in str(info.value)


def trickled_answer() -> Reply:
    reply = chat(rct_answer())
    reply.trickle = 0.02  # ~40 s for the whole body; each read well inside the timeout
    return reply


def test_timeout_is_a_total_deadline_not_per_read(
    make_summarizer: Any, server: ScriptedServer, rct: Paper
) -> None:
    server.queue(trickled_answer())
    with pytest.raises(RetriesExhaustedError) as info:
        make_summarizer(timeout=1.0, retry=ONE_TRY).summarize(rct)
    assert isinstance(info.value.last, BackendTimeoutError)


async def test_async_timeout_is_a_total_deadline(
    make_summarizer: Any, server: ScriptedServer, rct: Paper
) -> None:
    server.queue(trickled_answer())
    summarizer = make_summarizer(timeout=1.0, retry=ONE_TRY)
    with pytest.raises(RetriesExhaustedError) as info:
        await summarizer.asummarize(rct)
    await summarizer.backend.aclose()
    assert isinstance(info.value.last, BackendTimeoutError)


def test_credentials_in_the_base_url_never_reach_messages(rct: Paper) -> None:
    backend = OpenAICompatBackend(
        "m", base_url="http://user:hunter2@127.0.0.1:9/v1", api_key="sk-canary", timeout=1
    )
    assert "hunter2" not in repr(backend) and "hunter2" not in str(backend.identity())
    with pytest.raises(Exception) as info:
        backend.complete([{"role": "user", "content": "hi"}], {}, _params())
    assert "hunter2" not in str(info.value) and "sk-canary" not in str(info.value)
    assert redact_url("https://a:b@host:1/v1") == "https://***@host:1/v1"
    assert redact_url("https://host/v1") == "https://host/v1"


def _params() -> Any:
    from keyfindings.prompts import GenerationParams

    return GenerationParams()


def test_error_files_hold_no_upstream_text_or_urls(
    server: ScriptedServer, tmp_path: Any, cache: Any
) -> None:
    from keyfindings import Summarizer
    from keyfindings.batch import errors_path, run_batch
    from tests.synthetic import write_jsonl

    server.queue(*[error(503, "internal db host 10.0.0.7 down")] * 2)
    url = server.base_url.replace("http://", "http://admin:hunter2@")
    backend = OpenAICompatBackend("m", base_url=url, api_key="sk-canary", timeout=5)
    summarizer = Summarizer(backend, cache=cache, retry=RetryPolicy(attempts=2, initial_wait=0.01))
    out = tmp_path / "out.jsonl"
    stats = asyncio.run(run_batch(summarizer, [write_jsonl(tmp_path / "in.jsonl", [1])], out))
    text = errors_path(out).read_text()
    assert stats.failed == 1 and "HTTP 503" in text and "gave up after 2 attempts" in text
    for secret in ("hunter2", "sk-canary", "10.0.0.7", "127.0.0.1"):
        assert secret not in text
