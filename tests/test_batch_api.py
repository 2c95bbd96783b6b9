"""``keyfindings batch --via openai-batch`` against a loopback Batch API, through the real SDK."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from keyfindings import pricing
from keyfindings.backends.openai_compat import OpenAICompatBackend
from keyfindings.batch_api import BatchApiOptions, Limits, run_batch_api, state_dir
from keyfindings.batch_api.files import custom_id, read_results
from keyfindings.cache import ResultCache
from keyfindings.summarizer import Summarizer
from tests.batch_api_server import BatchApiServer
from tests.conftest import FAST_RETRY
from tests.scripted_server import Reply, chat, error
from tests.synthetic import FaultyHandler, good_answer, paper, write_jsonl

ROOT = Path(__file__).parents[1]
SECRET = "sk-test-do-not-leak-4242"


@pytest.fixture
def api(request: pytest.FixtureRequest) -> Iterator[BatchApiServer]:
    server = BatchApiServer(getattr(request, "param", None)).start()
    yield server
    server.stop()


def lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def summarizer(api: BatchApiServer, tmp_path: Path) -> Summarizer:
    backend = OpenAICompatBackend("gpt-4o-mini", base_url=api.base_url, api_key=SECRET)
    return Summarizer(backend, cache=ResultCache(tmp_path / "results"), retry=FAST_RETRY)


def run(
    api: BatchApiServer, tmp_path: Path, source: Path, **options: Any
) -> tuple[Any, Path, Summarizer]:
    out = tmp_path / "out.jsonl"
    s = summarizer(api, tmp_path)
    stats = asyncio.run(
        run_batch_api(s, [source], out, options=BatchApiOptions(poll_interval_s=0.01, **options))
    )
    return stats, out, s


def with_duplicate(tmp_path: Path, n: int) -> Path:
    """``n`` papers, plus one with another id and the same content as paper 1."""
    source = write_jsonl(tmp_path / "papers.jsonl", range(n))
    with open(source, "a") as handle:
        handle.write(json.dumps({**paper(1), "id": "syn-1-again"}) + "\n")
    return source


def test_a_run_submits_one_batch_checks_every_answer_and_prices_it_at_batch_rates(
    api: BatchApiServer, tmp_path: Path
) -> None:
    source = with_duplicate(tmp_path, 5)
    stats, out, s = run(api, tmp_path, source)
    results = lines(out)
    assert sorted(r["paper_id"] for r in results) == sorted(
        [f"syn-{i}" for i in range(5)] + ["syn-1-again"]
    )
    assert all(r["status"] == "ok" for r in results)
    (batch,) = api.batches.values()
    assert batch.status == "completed" and len(api.uploads) == 1
    assert len(api.requests_of(batch)) == 5  # the duplicate content shares one request
    assert api.chat_calls == 0
    usage = results[0]["usage"]
    online = pricing.cost("gpt-4o-mini", usage["prompt_tokens"], usage["completion_tokens"])
    assert online is not None and usage["cost_usd"] == pytest.approx(online / 2)
    assert stats.written == 6 and stats.failed == 0
    assert s.cached(paper(3)) is not None  # the store has them, as after an online run
    # Done is done: running again sends nothing.
    again, _, _ = run(api, tmp_path, source)
    assert again.skipped == 6 and len(api.batches) == 1


def test_killed_while_writing_results_the_rerun_rebuilds_them_from_the_downloaded_answers(
    api: BatchApiServer, tmp_path: Path
) -> None:
    source = write_jsonl(tmp_path / "papers.jsonl", range(5))
    _, out, _ = run(api, tmp_path, source)
    kept = out.read_text().splitlines()[:2]
    out.write_text("\n".join(kept) + "\n" + '{"paper_id": "syn-4", "sta')  # cut mid-line
    shutil.rmtree(tmp_path / "results")
    run(api, tmp_path, source)
    assert sorted(r["paper_id"] for r in lines(out)) == [f"syn-{i}" for i in range(5)]
    assert len(api.batches) == 1 and api.chat_calls == 0


def test_the_request_is_the_online_request(api: BatchApiServer, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "papers.jsonl", range(1))
    run(api, tmp_path, source)
    (batch,) = api.batches.values()
    (line,) = api.requests_of(batch)
    assert line["method"] == "POST" and line["url"] == "/v1/chat/completions"
    body = line["body"]
    assert body["model"] == "gpt-4o-mini" and "extra_body" not in body
    assert body["response_format"]["type"] == "json_schema"
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert line["custom_id"] == custom_id(body)


def failing_first(*numbers: int) -> FaultyHandler:
    """Answers that invent a number on the first attempt for the given papers."""

    class Handler(FaultyHandler):
        def _reply(self, number: int, first: bool, user: str, n_messages: int) -> Reply:
            answer = good_answer(user)
            if number in numbers and n_messages == 2:
                answer["results"][0]["text"] += " Mortality fell by 87%."
            return chat(answer)

    return Handler(faults=False)


@pytest.mark.parametrize("api", [failing_first(2)], indirect=True)
def test_a_failed_check_is_re_asked_in_a_second_batch(api: BatchApiServer, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "papers.jsonl", range(4))
    _, out, _ = run(api, tmp_path, source)
    results = {r["paper_id"]: r for r in lines(out)}
    assert all(r["status"] == "ok" for r in results.values())
    assert results["syn-2"]["usage"]["reasks"] == 1
    first, second = api.batches.values()
    assert len(api.requests_of(first)) == 4
    (reask,) = api.requests_of(second)
    assert len(reask["body"]["messages"]) == 4  # system, user, the answer, what to fix
    assert "87" in reask["body"]["messages"][3]["content"]


@pytest.mark.parametrize("api", [failing_first(2)], indirect=True)
def test_re_asks_can_go_online(api: BatchApiServer, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "papers.jsonl", range(4))
    _, out, _ = run(api, tmp_path, source, reask_online=True)
    assert {r["status"] for r in lines(out)} == {"ok"}
    assert len(api.batches) == 1 and api.chat_calls == 1
    # Every answer paid for is kept: with OUT and the store gone, a re-run rebuilds the
    # results from the downloaded and online answers without asking anything again.
    out.unlink()
    shutil.rmtree(tmp_path / "results")
    run(api, tmp_path, source, reask_online=True)
    assert {r["status"] for r in lines(out)} == {"ok"} and len(lines(out)) == 4
    assert len(api.batches) == 1 and api.chat_calls == 1


@pytest.mark.parametrize("api", [failing_first(2)], indirect=True)
def test_cached_papers_are_written_from_the_store_and_never_sent(
    api: BatchApiServer, tmp_path: Path
) -> None:
    run(api, tmp_path, write_jsonl(tmp_path / "first.jsonl", range(2)))
    (tmp_path / "out.jsonl").unlink()
    shutil.rmtree(state_dir(tmp_path / "out.jsonl"))
    api.batches.clear()
    stats, out, _ = run(api, tmp_path, write_jsonl(tmp_path / "papers.jsonl", range(4)))
    assert sorted(r["paper_id"] for r in lines(out)) == [f"syn-{i}" for i in range(4)]
    assert stats.cached == 2
    sent = [line["body"]["messages"][1]["content"] for b in api.batches.values()
            for line in api.requests_of(b)]  # fmt: skip
    assert len(api.batches) == 2  # papers 2 and 3, then paper 2's re-ask: never 0 or 1
    assert not any("Synthetic paper 0\n" in m or "Synthetic paper 1\n" in m for m in sent)


def test_an_expired_batch_s_unfinished_requests_are_resubmitted(
    api: BatchApiServer, tmp_path: Path
) -> None:
    api.outcomes = [("expired", 2)]
    source = write_jsonl(tmp_path / "papers.jsonl", range(5))
    stats, out, _ = run(api, tmp_path, source)
    assert sorted(r["paper_id"] for r in lines(out)) == [f"syn-{i}" for i in range(5)]
    first, second = api.batches.values()
    assert first.status == "expired" and second.status == "completed"
    answered = {line["custom_id"] for line in api.requests_of(first)[:2]}
    resent = {line["custom_id"] for line in api.requests_of(second)}
    assert len(resent) == 3 and not answered & resent
    assert stats.failed == 0


def errors_for(server_errors: dict[int, int]) -> FaultyHandler:
    """Paper number → HTTP status its request gets (every time)."""

    class Handler(FaultyHandler):
        def _reply(self, number: int, first: bool, user: str, n_messages: int) -> Reply:
            if number in server_errors:
                return error(server_errors[number], "scripted")
            return chat(good_answer(user))

    return Handler(faults=False)


@pytest.mark.parametrize("api", [errors_for({1: 400, 2: 500})], indirect=True)
def test_per_request_errors_a_refusal_fails_its_paper_a_server_fault_is_retried_then_fails(
    api: BatchApiServer, tmp_path: Path
) -> None:
    source = write_jsonl(tmp_path / "papers.jsonl", range(4))
    stats, out, _ = run(api, tmp_path, source)
    assert sorted(r["paper_id"] for r in lines(out)) == ["syn-0", "syn-3"]
    failures = {e["paper_id"]: e for e in lines(tmp_path / "out.errors.jsonl")}
    assert failures["syn-1"]["error"] == "RequestRejectedError"
    assert failures["syn-2"]["error"] == "BatchUnansweredError"
    # The 400 is sent once; the 500 three times in all (one per batch), then given up.
    sent = [line["custom_id"] for b in api.batches.values() for line in api.requests_of(b)]
    assert len(api.batches) == 3 and len(sent) == 4 + 1 + 1
    assert stats.failed == 2


def test_a_failed_batch_is_retried_then_its_papers_fail_with_the_reason(
    api: BatchApiServer, tmp_path: Path
) -> None:
    api.outcomes = [("failed", None)] * 3
    source = write_jsonl(tmp_path / "papers.jsonl", range(2))
    stats, out, _ = run(api, tmp_path, source)
    assert lines(out) == [] and stats.failed == 2 and len(api.batches) == 3
    failure = lines(tmp_path / "out.errors.jsonl")[0]
    assert failure["error"] == "BatchUnansweredError"


def test_request_files_stay_within_the_limits(api: BatchApiServer, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "papers.jsonl", range(5))
    _, out, _ = run(api, tmp_path, source, limits=Limits(max_requests=2))
    assert [b.counts["total"] for b in api.batches.values()] == [2, 2, 1]
    assert len(lines(out)) == 5
    size = len(api.contents[next(iter(api.batches.values())).input_file_id]) // 2
    tmp2 = tmp_path / "bytes"
    tmp2.mkdir()
    api.batches.clear()
    run(api, tmp2, source, limits=Limits(max_bytes=size + 1))
    assert [b.counts["total"] for b in api.batches.values()] == [1] * 5


def test_nothing_leaks_the_api_key(api: BatchApiServer, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "papers.jsonl", range(2))
    run(api, tmp_path, source)
    for path in [*state_dir(tmp_path / "out.jsonl").iterdir(), tmp_path / "out.jsonl"]:
        assert SECRET not in path.read_text()


def test_downloaded_lines_that_are_junk_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "output.jsonl"
    path.write_text(
        'not json\n{"custom_id": 5}\n[1]\n'
        '{"custom_id": "a", "response": {"status_code": 200, "body": {"id": "x"}}}\n'
        '{"custom_id": "b", "error": {"code": "expired", "message": "too late"}}\n'
    )
    outcomes = {cid: outcome for _, cid, outcome in read_results(path)}
    assert outcomes["a"] == {"id": "x"}
    assert not outcomes["b"].permanent  # type: ignore[union-attr]
    assert set(outcomes) == {"a", "b"}


# ---- the command, killed at every step ----


def command_for(tmp_path: Path) -> list[str]:
    out = str(tmp_path / "out.jsonl")
    return [
        sys.executable,
        "-m",
        "keyfindings.cli",
        "batch",
        str(tmp_path / "papers.jsonl"),
        "-o",
        out,
    ]


def command(api: BatchApiServer, tmp_path: Path, *extra: str) -> list[str]:
    return [
        *command_for(tmp_path),
        "--base-url",
        api.base_url,
        "--model",
        "gpt-4o-mini",
        "--via",
        "openai-batch",
        "--poll-interval",
        "0.02",
        "--quiet",
        *extra,
    ]


def environment() -> dict[str, str]:
    return {**os.environ, "OPENAI_API_KEY": SECRET}


def kill_at(api: BatchApiServer, tmp_path: Path, point: str) -> None:
    """Start the command, kill it (SIGKILL: no clean-up) when the server reaches ``point``."""
    reached = api.hold(point)
    process = subprocess.Popen(
        command(api, tmp_path),
        cwd=ROOT,
        env=environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert reached.wait(timeout=60), f"the run never reached {point}"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        api.release(point)
        if process.poll() is None:
            process.kill()


@pytest.mark.parametrize(
    "point",
    ["upload:before", "upload:after", "create:before", "create:after", "retrieve", "content"],
)
def test_killed_at_any_step_the_rerun_finishes_without_submitting_twice(
    api: BatchApiServer, tmp_path: Path, point: str
) -> None:
    write_jsonl(tmp_path / "papers.jsonl", range(6))
    kill_at(api, tmp_path, point)
    done = subprocess.run(
        command(api, tmp_path), cwd=ROOT, env=environment(), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    ids = [r["paper_id"] for r in lines(tmp_path / "out.jsonl")]
    assert sorted(ids) == [f"syn-{i}" for i in range(6)]  # every paper, once
    assert len(api.batches) == 1, "a batch was submitted twice"
    assert len(api.uploads) == 1, "the request file was uploaded twice"


def test_a_run_resumed_hours_later_still_finds_the_batch_it_created(
    api: BatchApiServer, tmp_path: Path
) -> None:
    write_jsonl(tmp_path / "papers.jsonl", range(3))
    kill_at(api, tmp_path, "create:after")  # created on the provider's side, not recorded
    (ours,) = api.batches.values()
    ours.created_at -= 7200  # as if the run had been killed two hours ago …
    path = state_dir(tmp_path / "out.jsonl") / "state.json"
    state = json.loads(path.read_text())
    state["submissions"][0]["announced_at"] -= 7200
    path.write_text(json.dumps(state))
    other = api.make_batch("file-elsewhere")  # … and someone else's since
    other.created_at -= 3600
    done = subprocess.run(
        command(api, tmp_path), cwd=ROOT, env=environment(), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert len(api.batches) == 2 and ours.status == "completed"  # adopted, not resubmitted
    assert len(lines(tmp_path / "out.jsonl")) == 3


def test_cancel_stops_the_running_batches_and_a_rerun_finishes_the_rest(
    api: BatchApiServer, tmp_path: Path
) -> None:
    write_jsonl(tmp_path / "papers.jsonl", range(6))
    kill_at(api, tmp_path, "retrieve")
    cancelled = subprocess.run(
        command(api, tmp_path, "--cancel"),
        cwd=ROOT,
        env=environment(),
        capture_output=True,
        text=True,
    )
    assert cancelled.returncode == 0, cancelled.stderr
    (batch,) = api.batches.values()
    assert batch.status == "cancelling" and "cancelled 1 batch" in cancelled.stderr
    done = subprocess.run(
        command(api, tmp_path), cwd=ROOT, env=environment(), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    ids = sorted(r["paper_id"] for r in lines(tmp_path / "out.jsonl"))
    assert ids == [f"syn-{i}" for i in range(6)]
    first, second = api.batches.values()
    assert first.status == "cancelled" and second.counts["total"] == 3  # half were done


def test_dry_run_estimates_at_batch_prices(api: BatchApiServer, tmp_path: Path) -> None:
    write_jsonl(tmp_path / "papers.jsonl", range(3))
    reports = [
        json.loads(
            subprocess.run(
                command(api, tmp_path, "--dry-run", "--format", "json", *via),
                cwd=ROOT,
                env=environment(),
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        for via in (["--via", "online"], ["--via", "openai-batch"])
    ]
    online, batch = (r["cost_usd_typical"] for r in reports)
    assert batch == pytest.approx(online / 2)
    assert not api.batches and not api.uploads


def test_the_embedded_model_cannot_go_through_the_batch_api(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "papers.jsonl", range(1))
    done = subprocess.run(
        [
            *command_for(tmp_path),
            "--via",
            "openai-batch",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "--via openai-batch needs an OpenAI model" in done.stderr


@pytest.mark.parametrize(
    "extra", [["--cancel"], ["--reask-online"], ["--via", "openai-batch", "--poll-interval", "0"]]
)
def test_batch_api_options_out_of_place_are_usage_errors(
    api: BatchApiServer, tmp_path: Path, extra: list[str]
) -> None:
    write_jsonl(tmp_path / "papers.jsonl", range(1))
    cmd = [*command_for(tmp_path), "--base-url", api.base_url, "--model", "gpt-4o-mini", *extra]
    done = subprocess.run(cmd, cwd=ROOT, env=environment(), capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert not api.uploads and not api.batches
