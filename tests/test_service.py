"""The button: single flight across threads, tasks and processes; budgets; the HTTP API."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2
import pytest

from keyfindings import Paper, Result, ResultCache
from keyfindings.service import FindingsService, Pending
from keyfindings.service.app import MAX_BODY_BYTES, create_app
from tests.conftest import FIXTURES, rct_answer, running, wait_until
from tests.scripted_server import ScriptedServer, chat
from tests.synthetic import good_answer

ROOT = Path(__file__).parents[1]


def slow_answers(server: ScriptedServer, delay: float) -> None:
    def handler(body: dict[str, Any]) -> Any:
        reply = chat(good_answer(body["messages"][1]["content"]))
        if "Vitamin D" in body["messages"][1]["content"]:
            reply = chat(rct_answer())
        reply.delay = delay
        return reply

    server.handler = handler


@pytest.fixture
def service(make_summarizer: Any) -> Iterator[FindingsService]:
    svc = FindingsService(make_summarizer(timeout=10.0))
    yield svc
    svc.close()


def test_cache_hit_is_returned_at_once(
    service: FindingsService, server: ScriptedServer, rct: Paper
) -> None:
    server.queue(chat(rct_answer()))
    first = service.get_findings(rct)
    second = service.get_findings(rct)
    assert isinstance(first, Result) and isinstance(second, Result)
    assert second.cached and server.calls == 1


def test_threads_share_one_model_call(
    service: FindingsService, server: ScriptedServer, rct: Paper
) -> None:
    slow_answers(server, 0.5)
    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(pool.map(lambda _: service.get_findings(rct, budget_s=10), range(20)))
    assert server.calls == 1
    assert all(isinstance(o, Result) and o.status == "ok" for o in outcomes)
    assert len({o.findings.model_dump_json() for o in outcomes if isinstance(o, Result)}) == 1


def test_tasks_share_one_model_call(
    service: FindingsService, server: ScriptedServer, rct: Paper
) -> None:
    slow_answers(server, 0.5)

    async def many() -> list[Result | Pending]:
        return await asyncio.gather(*(service.aget_findings(rct, budget_s=10) for _ in range(25)))

    outcomes = asyncio.run(many())
    assert server.calls == 1 and all(isinstance(o, Result) for o in outcomes)


def test_budget_runs_out_then_result_lands(
    service: FindingsService, server: ScriptedServer, rct: Paper
) -> None:
    slow_answers(server, 1.0)
    outcome = service.get_findings(rct, budget_s=0.1)
    assert isinstance(outcome, Pending) and outcome.paper_id == "pmid-90000001"
    assert isinstance(service.by_id("pmid-90000001"), Pending)
    wait_until(lambda: isinstance(service.by_id("pmid-90000001"), Result))
    assert isinstance(service.get_findings(rct, budget_s=0.1), Result)
    assert server.calls == 1


def test_two_processes_share_one_model_call(server: ScriptedServer, cache: ResultCache) -> None:
    release = threading.Event()

    def held_answer(body: dict[str, Any]) -> Any:
        release.wait(timeout=60)  # no answer until both processes are waiting for one
        return chat(rct_answer())

    server.handler = held_answer
    code = f"""
from keyfindings import Paper, ResultCache, Summarizer
from keyfindings.backends.openai_compat import OpenAICompatBackend
from keyfindings.service import FindingsService
paper = Paper.model_validate_json(open({str(FIXTURES / "rct.json")!r}).read())
backend = OpenAICompatBackend("test-model", base_url={server.base_url!r}, timeout=30)
service = FindingsService(Summarizer(backend, cache=ResultCache({str(cache.directory)!r})))
print("waiting", flush=True)
result = service.get_findings(paper, budget_s=50)
print(result.status, result.cached, flush=True)
"""
    procs = [
        subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "waiting"
    wait_until(lambda: server.calls >= 1)  # one of them has asked; the other waits on its lock
    release.set()
    outputs = sorted(p.communicate(timeout=60)[0].split() for p in procs)
    assert server.calls == 1
    assert outputs == [["ok", "False"], ["ok", "True"]]


@pytest.fixture
def http(service: FindingsService) -> Iterator[httpx2.Client]:
    app = create_app(service, demo_paper=ROOT / "examples" / "paper.xml")
    with running(app) as base_url, httpx2.Client(base_url=base_url, timeout=30) as client:
        yield client


def test_http_api(http: httpx2.Client, server: ScriptedServer, rct: Paper) -> None:
    server.queue(chat(rct_answer()))
    assert http.get("/healthz").json()["prompt"] == "key_findings@v1"
    missing = http.get("/v1/papers/pmid-90000001/key-findings")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found"
    body = json.loads((FIXTURES / "rct.json").read_text())
    created = http.post("/v1/key-findings", json=body)
    assert created.status_code == 200 and created.json()["status"] == "ok"
    stored = http.get("/v1/papers/pmid-90000001/key-findings")
    assert stored.status_code == 200 and stored.json()["cached"] is True
    assert server.calls == 1


def test_http_pending_then_ready(http: httpx2.Client, server: ScriptedServer) -> None:
    slow_answers(server, 1.0)
    body = json.loads((FIXTURES / "rct.json").read_text())
    pending = http.post("/v1/key-findings", params={"budget_s": "0.1"}, json=body)
    assert pending.status_code == 202 and pending.json()["status"] == "pending"
    assert pending.headers["retry-after"]
    assert http.get("/v1/papers/pmid-90000001/key-findings").status_code == 202
    ready = wait_until(
        lambda: (r := http.get("/v1/papers/pmid-90000001/key-findings")).status_code != 202 and r
    )
    assert ready.status_code == 200


def test_http_bad_requests_are_json_4xx(http: httpx2.Client) -> None:
    as_json = {"content-type": "application/json"}
    cases = [
        (http.post("/v1/key-findings", content=b"{nope", headers=as_json), 400, "not valid JSON"),
        (http.post("/v1/key-findings", content=b"[" * 200_000, headers=as_json), 400, "JSON"),
        (http.post("/v1/key-findings", content=b"{}"), 415, "application/json"),
        (http.post("/v1/key-findings", data={"abstract": "x"}), 415, "application/json"),
        (http.post("/v1/key-findings", json=[1, 2]), 400, "JSON object"),
        (http.post("/v1/key-findings", json={"abstract": "too short"}), 422, "too short"),
        (http.post("/v1/key-findings", json={"title": "x"}), 422, "abstract"),
        (
            http.post("/v1/key-findings", content=b" " * (MAX_BODY_BYTES + 1), headers=as_json),
            413,
            "over",
        ),
        (http.post("/v1/key-findings", params={"budget_s": "soon"}, json={}), 400, "budget_s"),
    ]
    for response, status, words in cases:
        assert response.status_code == status, response.text
        error = response.json()["error"]
        assert words in error["message"] and "Traceback" not in response.text


def test_http_backend_failure_is_a_clean_503(http: httpx2.Client, server: ScriptedServer) -> None:
    from tests.scripted_server import error

    server.queue(error(503), error(503), error(503))
    body = json.loads((FIXTURES / "rct.json").read_text())
    response = http.post("/v1/key-findings", json=body)
    error = response.json()["error"]
    assert response.status_code == 503 and error["type"] == "model_unavailable"
    assert response.headers["retry-after"] and error["request_id"]
    # Upstream details stay in the server log: no URL, no class name, no upstream text.
    assert "127.0.0.1" not in response.text and "Error" not in response.text
    assert "scripted error" not in response.text and "Traceback" not in response.text
