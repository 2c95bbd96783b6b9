"""The API as a web team adopts it: caching validators, polling, failures, readiness, CORS, docs."""

from __future__ import annotations

import threading
from typing import Any

from keyfindings import Paper
from keyfindings.service.catalogue import Catalogue
from tests.conftest import rct_answer, wait_until
from tests.scripted_server import ScriptedServer, chat, error
from tests.synthetic import good_answer
from tests.synthetic import paper as synthetic_paper
from tests.test_service_security import RCT

FINDINGS = "/v1/papers/pmid-90000001/key-findings"


def test_results_carry_validators_and_304(serve: Any, server: ScriptedServer) -> None:
    server.queue(chat(rct_answer()))
    http = serve()
    assert http.post("/v1/key-findings", json=RCT).status_code == 200
    first = http.get(FINDINGS)
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "public, max-age=300"
    assert http.get(FINDINGS).headers["etag"] == etag  # stable for the same result
    again = http.get(FINDINGS, headers={"if-none-match": etag})
    assert again.status_code == 304 and again.content == b""


def test_pending_says_where_to_poll_and_a_failure_is_reported_there(
    serve: Any, server: ScriptedServer
) -> None:
    release = threading.Event()

    def failing(body: dict[str, Any]) -> Any:
        release.wait(timeout=30)
        return error(400, "upstream says no")

    server.handler = failing
    http = serve(catalogue=Catalogue([Paper.model_validate(RCT)]))
    pending = http.get(FINDINGS, params={"budget_s": "0"})
    assert pending.status_code == 202 and pending.headers["location"] == FINDINGS
    assert pending.headers["cache-control"] == "no-store" and pending.headers["retry-after"]
    release.set()
    polled = wait_until(
        lambda: (r := http.get(pending.headers["location"])).status_code != 202 and r
    )
    error_body = polled.json()["error"]
    assert polled.status_code == 503 and error_body["type"] == "generation_failed"
    assert "upstream" not in polled.text and polled.headers["retry-after"]


def test_a_stored_flagged_result_never_waits_behind_generations(
    serve: Any, server: ScriptedServer
) -> None:
    release = threading.Event()

    def answers(body: dict[str, Any]) -> Any:
        message = body["messages"][1]["content"]
        if "Vitamin D" in message:  # the one paper: an answer that stays flagged
            return chat(rct_answer(results=[{"text": "Infections fell by 99%.", "evidence": [6]}]))
        release.wait(timeout=30)  # every other generation hangs until the end
        return chat(good_answer(message))

    server.handler = answers
    http = serve(max_pending=8)
    flagged = http.post("/v1/key-findings", json=RCT)
    assert flagged.json()["status"] == "flagged"
    for i in range(4):  # the worker pool is now full of slow generations
        http.post("/v1/key-findings", params={"budget_s": "0"}, json=synthetic_paper(i))
    hit = http.post("/v1/key-findings", params={"budget_s": "5"}, json=RCT)
    release.set()
    assert hit.status_code == 200 and hit.json()["status"] == "flagged"


def test_readiness_openapi_docs_and_405(serve: Any, server: ScriptedServer) -> None:
    server.models = ["m"]
    http = serve()
    ready = http.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {
        "ready": True,
        "model": True,
        "store": True,
    }
    document = http.get("/openapi.json").json()
    get = document["paths"]["/v1/papers/{paper_id}/key-findings"]["get"]
    assert {"200", "202", "304", "404", "503"} <= set(get["responses"])
    assert "Result" in document["components"]["schemas"]
    assert "POST /v1/key-findings" in http.get("/docs").text
    wrong = http.delete("/v1/key-findings")
    assert wrong.status_code == 405 and wrong.json()["error"]["type"] == "method_not_allowed"
    assert "POST" in wrong.headers["allow"]


def test_readiness_fails_when_the_model_server_is_gone(serve: Any, server: ScriptedServer) -> None:
    http = serve()
    server.stop()
    assert http.get("/readyz").status_code == 503


def test_cors_is_off_unless_origins_are_listed(serve: Any, server: ScriptedServer) -> None:
    origin = {"origin": "https://papers.example.org"}
    closed = serve()
    assert "access-control-allow-origin" not in closed.get("/healthz", headers=origin).headers
    opened = serve(cors_origins=("https://papers.example.org",))
    allowed = opened.get("/healthz", headers=origin)
    assert allowed.headers["access-control-allow-origin"] == "https://papers.example.org"
    other = opened.get("/healthz", headers={"origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_readers_report_wrong_findings_for_the_operator(
    serve: Any, server: ScriptedServer, tmp_path: Any, capsys: Any
) -> None:
    from keyfindings.cli import main

    server.queue(chat(rct_answer()))
    http = serve()
    shown = http.post("/v1/key-findings", json=RCT).json()
    reports = FINDINGS + "/reports"
    sent = http.post(reports, json={"section": "results", "index": 1, "reason": "wrong  days"})
    assert sent.status_code == 202
    assert http.post(reports, json={"section": "results", "index": 9}).status_code == 404
    assert http.post(reports, content=b'{"section": "results", "index": 0}').status_code == 415
    assert http.post(reports, json=["x"]).status_code == 400
    assert http.post(reports, json={"section": "x" * 5000, "index": 0}).status_code == 413
    assert http.get(FINDINGS).json()["findings"] == shown["findings"]  # nothing changed
    statuses = [
        http.post(reports, json={"section": "results", "index": 1}).status_code for _ in range(8)
    ]
    assert 429 in statuses  # paced per client
    assert main(["reports", "--cache-dir", str(tmp_path)]) == 0  # the service's cache
    out = capsys.readouterr().out
    assert "pmid-90000001 results[1] · " in out and "School absence" in out
    assert "reason:  wrong days" in out


def test_the_openapi_document_validates_and_matches_real_responses(
    serve: Any, server: ScriptedServer
) -> None:
    from jsonschema import Draft202012Validator
    from openapi_spec_validator import validate

    slow = chat(rct_answer())
    slow.delay = 1.0
    server.queue(slow)
    http = serve()
    document = http.get("/openapi.json").json()
    validate(document)

    def check(name: str, body: Any) -> None:
        schema = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
        Draft202012Validator(schema).validate(body)

    pending = http.post("/v1/key-findings", params={"budget_s": "0"}, json=RCT)
    check("Pending", pending.json())
    done = wait_until(lambda: (r := http.get(FINDINGS)).status_code != 202 and r)
    check("Result", done.json())
    check("ErrorResponse", http.get("/v1/papers/nope/key-findings").json())
    operations = document["paths"]["/v1/papers/{paper_id}/key-findings"]["get"]["responses"]
    assert {str(r.status_code) for r in (pending, done)} <= {"200", "202"} <= set(operations)
