"""The real openai SDK against a scripted OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest

from keyfindings import (
    BackendConnectionError,
    BackendTimeoutError,
    Paper,
    RequestRejectedError,
    ResultCache,
    RetriesExhaustedError,
    RetryPolicy,
    ValidationFailedError,
)
from tests.conftest import rct_answer
from tests.scripted_server import Reply, ScriptedServer, chat, error


def last_user_message(request: dict[str, Any]) -> str:
    content: str = request["messages"][-1]["content"]
    return content


def test_valid_answer(
    make_summarizer: Any, server: ScriptedServer, rct: Paper, cache: ResultCache
) -> None:
    server.queue(chat(rct_answer()))
    result = make_summarizer().summarize(rct)
    assert result.status == "ok" and result.issues == []
    assert result.findings is not None
    assert result.findings.results[0].evidence == [6]
    assert result.findings.methodology[1].cited == [4]
    assert result.prompt.ref == "key_findings@v1" and len(result.prompt.sha256) == 64
    assert (result.backend, result.model, result.paper_id) == (
        "openai",
        "test-model",
        "pmid-90000001",
    )
    assert result.usage.model_dump() == {
        "prompt_tokens": 120,
        "completion_tokens": 60,
        "attempts": 1,
        "reasks": 0,
        "cost_usd": None,
    }
    request = server.requests[0]
    assert request["response_format"]["type"] == "json_schema"
    assert request["response_format"]["json_schema"]["strict"] is True
    assert request["model"] == "test-model" and request["temperature"] == 0
    assert server.headers[0]["authorization"] == "Bearer sk-secret-test-key"
    assert cache.stats()["entries"] == 1


def test_invalid_json_then_valid_reasks_with_the_error(
    make_summarizer: Any, server: ScriptedServer, rct: Paper
) -> None:
    server.queue(chat('{"study_type": "cohort", "methodology": ['), chat(rct_answer()))
    result = make_summarizer().summarize(rct)
    assert result.status == "ok"
    assert server.calls == 2
    second = server.requests[1]["messages"]
    assert second[-2] == {
        "role": "assistant",
        "content": '{"study_type": "cohort", "methodology": [',
    }
    assert "not valid JSON" in last_user_message(server.requests[1])
    assert result.usage.attempts == 2 and result.usage.reasks == 1
    assert result.usage.prompt_tokens == 240 and result.usage.completion_tokens == 120


def test_schema_violation_is_named_in_the_reask(
    make_summarizer: Any, server: ScriptedServer, rct: Paper
) -> None:
    server.queue(chat(rct_answer(study_type="opinion")), chat(rct_answer()))
    assert make_summarizer().summarize(rct).status == "ok"
    assert "study_type" in last_user_message(server.requests[1])


def test_ungrounded_number_then_fixed(
    make_summarizer: Any, server: ScriptedServer, rct: Paper
) -> None:
    bad = rct_answer()
    bad["results"] = [{"text": "Infections fell by 45% with vitamin D.", "evidence": [6]}]
    server.queue(chat(bad), chat(rct_answer()))
    result = make_summarizer().summarize(rct)
    assert result.status == "ok" and server.calls == 2
    reask = last_user_message(server.requests[1])
    assert "results[0]" in reask and "does not contain 45" in reask


def test_persistent_failure_is_flagged_and_not_cached(
    make_summarizer: Any, server: ScriptedServer, rct: Paper, cache: ResultCache
) -> None:
    bad = rct_answer()
    bad["results"] = [{"text": "Infections fell by 45% with vitamin D.", "evidence": [6]}]
    server.queue(*[chat(bad)] * 3)
    result = make_summarizer(max_reasks=2).summarize(rct)
    assert result.status == "flagged" and server.calls == 3
    # The unverified finding is withheld from readers, kept (text and why) in the issues.
    assert result.findings is not None and result.findings.results == []
    assert result.withheld == 1
    [withheld] = [i for i in result.issues if i.code == "withheld"]
    assert withheld.text == "Infections fell by 45% with vitamin D."
    assert "unsupported_number" in withheld.message and withheld.section == "results"
    assert len(result.answers) == 3 and result.answers[0].text.startswith("{")
    assert cache.stats()["entries"] == 0


def test_persistent_failure_raises_when_asked(
    make_summarizer: Any, server: ScriptedServer, rct: Paper
) -> None:
    server.queue(chat("not json"), chat("still not json"))
    with pytest.raises(ValidationFailedError) as info:
        make_summarizer(max_reasks=1, on_invalid="raise").summarize(rct)
    assert info.value.attempts == 2 and info.value.last_raw == "still not json"
    assert info.value.usage.prompt_tokens == 240
    assert info.value.issues[0].code == "invalid_json"


def test_429_with_retry_after_then_200(
    make_summarizer: Any, server: ScriptedServer, rct: Paper
) -> None:
    server.queue(error(429, "slow down", **{"retry-after": "7"}), chat(rct_answer()))
    waits: list[float] = []
    retry = RetryPolicy(attempts=3, initial_wait=0.01, max_wait=0.05, sleep=waits.append)
    result = make_summarizer(retry=retry).summarize(rct)
    assert waits == [7.0]  # Retry-After honoured, not the 10 ms backoff (and not slept here)
    assert result.status == "ok" and server.calls == 2
    assert result.usage.attempts == 2 and result.usage.prompt_tokens == 120


def test_500_twice_then_200(make_summarizer: Any, server: ScriptedServer, rct: Paper) -> None:
    server.queue(error(500), error(503), chat(rct_answer()))
    result = make_summarizer().summarize(rct)
    assert result.status == "ok" and server.calls == 3 and result.usage.attempts == 3


def test_retries_exhausted_names_the_last_error(
    make_summarizer: Any, server: ScriptedServer, rct: Paper
) -> None:
    server.queue(error(502), error(502), error(502))
    with pytest.raises(RetriesExhaustedError, match=r"3 attempts.*HTTP 502") as info:
        make_summarizer().summarize(rct)
    assert server.calls == 3 and info.value.last.status_code == 502


def test_slower_than_timeout(make_summarizer: Any, server: ScriptedServer, rct: Paper) -> None:
    slow = chat(rct_answer())
    slow.delay = 1.0
    server.queue(slow, slow, slow)
    summarizer = make_summarizer(timeout=0.3, retry=RetryPolicy(attempts=2, initial_wait=0.01))
    with pytest.raises(RetriesExhaustedError) as info:
        summarizer.summarize(rct)
    assert isinstance(info.value.last, BackendTimeoutError) and server.calls == 2


def test_connection_refused(make_summarizer: Any, rct: Paper, cache: ResultCache) -> None:
    from keyfindings import Summarizer
    from keyfindings.backends.openai_compat import OpenAICompatBackend

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    backend = OpenAICompatBackend("m", base_url=f"http://127.0.0.1:{port}/v1", timeout=2)
    summarizer = Summarizer(backend, cache=cache, retry=RetryPolicy(attempts=2, initial_wait=0.01))
    with pytest.raises(RetriesExhaustedError) as info:
        summarizer.summarize(rct)
    assert isinstance(info.value.last, BackendConnectionError)


def test_finish_reason_length_reasks_for_brevity(
    make_summarizer: Any, server: ScriptedServer, rct: Paper
) -> None:
    cut = json.dumps(rct_answer())[:200]
    server.queue(chat(cut, finish_reason="length"), chat(rct_answer()))
    result = make_summarizer().summarize(rct)
    assert result.status == "ok" and server.calls == 2
    assert "cut off at the token limit" in last_user_message(server.requests[1])


def test_truncation_every_time_is_flagged(
    make_summarizer: Any, server: ScriptedServer, rct: Paper
) -> None:
    cut = json.dumps(rct_answer())[:200]
    server.queue(*[chat(cut, finish_reason="length")] * 2)
    result = make_summarizer(max_reasks=1).summarize(rct)
    assert result.status == "flagged" and result.findings is None
    assert result.issues[0].code == "truncated"


@pytest.mark.parametrize("status", [422, 500])  # llama_cpp.server 0.3.36 really sends 500
def test_server_rejecting_json_schema_falls_back_and_remembers(
    make_summarizer: Any, server: ScriptedServer, rct: Paper, review: Paper, status: int
) -> None:
    def llama_cpp_like(body: dict[str, Any]) -> Reply:
        if body.get("response_format", {}).get("type") == "json_schema":
            return error(
                status, "body.response_format.type: Input should be 'text' or 'json_object'"
            )
        return chat(rct_answer())

    server.handler = llama_cpp_like
    summarizer = make_summarizer()
    result = summarizer.summarize(rct)
    assert result.status == "ok"
    assert result.usage.attempts == 2  # every request counts, the rejected one too
    formats = [r["response_format"]["type"] for r in server.requests]
    assert formats == ["json_schema", "json_object"]
    assert "schema" in server.requests[1]["response_format"]
    summarizer.summarize(Paper(abstract=rct.abstract, title="other copy"))
    assert server.requests[2]["response_format"]["type"] == "json_object"  # remembered
    assert server.calls == 3


def test_rejection_that_is_not_about_format_is_not_retried(
    make_summarizer: Any, server: ScriptedServer, rct: Paper
) -> None:
    server.queue(error(401, "Incorrect API key provided: sk-secret-test-key"))
    with pytest.raises(RequestRejectedError, match="HTTP 401") as info:
        make_summarizer().summarize(rct)
    assert "sk-secret-test-key" not in str(info.value)
    assert server.calls == 1


def test_cache_hit_makes_no_http_call(
    make_summarizer: Any, server: ScriptedServer, rct: Paper
) -> None:
    server.queue(chat(rct_answer()))
    summarizer = make_summarizer()
    first = summarizer.summarize(rct)
    second = summarizer.summarize(rct)
    assert server.calls == 1
    assert not first.cached and second.cached
    assert second.findings == first.findings


def test_refresh_and_no_cache(make_summarizer: Any, server: ScriptedServer, rct: Paper) -> None:
    server.queue(chat(rct_answer()), chat(rct_answer()), chat(rct_answer()))
    make_summarizer().summarize(rct)
    make_summarizer(refresh=True).summarize(rct)
    make_summarizer(use_cache=False).summarize(rct)
    assert server.calls == 3


async def test_async_path(make_summarizer: Any, server: ScriptedServer, rct: Paper) -> None:
    server.queue(error(500), chat("nope"), chat(rct_answer()))
    summarizer = make_summarizer()
    result = await summarizer.asummarize(rct)
    await summarizer.aclose()
    assert result.status == "ok" and server.calls == 3
    assert result.usage.attempts == 3 and result.usage.reasks == 1


def test_secret_never_reaches_cache_or_result(
    make_summarizer: Any, server: ScriptedServer, rct: Paper, cache: ResultCache
) -> None:
    server.queue(chat(rct_answer()))
    result = make_summarizer().summarize(rct)
    assert "sk-secret" not in result.model_dump_json()
    for path in cache.directory.rglob("*"):
        if path.is_file():
            assert b"sk-secret" not in path.read_bytes()


def test_flagged_result_keeps_the_best_attempt(
    make_summarizer: Any, server: ScriptedServer, rct: Paper
) -> None:
    bad = rct_answer()
    bad["results"] = [{"text": "Infections fell by 45% with vitamin D.", "evidence": [6]}]
    server.queue(chat(bad), chat("not json at all"))
    result = make_summarizer(max_reasks=1).summarize(rct)
    assert result.status == "flagged" and result.findings is not None
    assert [i.code for i in result.issues if i.code == "withheld"] == ["withheld"]
    assert result.findings.methodology and not result.findings.results


def test_summarizer_closes_what_it_opened(
    server: ScriptedServer, rct: Paper, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from keyfindings import Summarizer
    from keyfindings.backends.openai_compat import OpenAICompatBackend

    monkeypatch.setenv("KEYFINDINGS_CACHE_DIR", str(tmp_path))
    backend = OpenAICompatBackend("m", base_url=server.base_url, timeout=5)
    server.queue(chat(rct_answer()))
    with Summarizer(backend) as summarizer:
        assert summarizer.summarize(rct).status == "ok" and backend._client is not None
    assert backend._client is None  # connections released


def test_the_servers_request_id_is_in_the_message(
    make_summarizer: Any, server: ScriptedServer, rct: Paper
) -> None:
    server.queue(error(400, "bad request", **{"x-request-id": "req_abc123"}))
    with pytest.raises(RequestRejectedError, match="request id req_abc123") as info:
        make_summarizer().summarize(rct)
    assert info.value.request_id == "req_abc123"


def test_the_button_without_a_cache_is_a_config_error(make_summarizer: Any) -> None:
    from keyfindings import ConfigError
    from keyfindings.service import FindingsService

    with pytest.raises(ConfigError, match="needs a cache"):
        FindingsService(make_summarizer(use_cache=False))
