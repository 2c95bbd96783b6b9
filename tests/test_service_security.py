"""The service facing the internet: who may spend model time, what ids mean, slow clients."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from keyfindings import Paper
from keyfindings.service.access import ApiKeys, ClientLimits
from keyfindings.service.catalogue import Catalogue
from keyfindings.service.server import is_loopback
from tests.conftest import FIXTURES, rct_answer
from tests.scripted_server import ScriptedServer, chat
from tests.synthetic import good_answer
from tests.synthetic import paper as synthetic_paper

KEY = "kf-test-key-0123456789abcdef"
RCT = json.loads((FIXTURES / "rct.json").read_text())
FABRICATED = {
    **RCT,
    "abstract": "RESULTS: Vitamin D doubled respiratory infections in every child we studied, "
    "and all of them stayed home from school for the whole winter term.",
}


def answers(server: ScriptedServer, delay: float = 0.0) -> None:
    def handler(body: dict[str, Any]) -> Any:
        message = body["messages"][1]["content"]
        reply = chat(rct_answer() if "Vitamin D" in message else good_answer(message))
        reply.delay = delay
        return reply

    server.handler = handler


def test_a_hostile_body_never_blocks_other_requests(serve: Any) -> None:
    http = serve()
    hostile = json.dumps({"abstract": "<!--" * 45_000 + "<script>" * 7_000}).encode()
    results: dict[str, Any] = {}
    post = threading.Thread(
        target=lambda: results.update(
            post=http.post("/v1/key-findings", content=hostile, headers=json_type())
        )
    )
    start = time.perf_counter()
    post.start()
    health = http.get("/healthz")
    post.join(timeout=60)
    assert health.status_code == 200 and results["post"].status_code == 422
    assert time.perf_counter() - start < 5.0  # minutes when the markup regexes were quadratic


def json_type(key: str | None = None) -> dict[str, str]:
    headers = {"content-type": "application/json"}
    if key:
        headers["authorization"] = f"Bearer {key}"
    return headers


def test_a_fabricated_abstract_cannot_replace_a_served_paper(
    serve: Any, server: ScriptedServer
) -> None:
    answers(server)
    http = serve()
    assert http.post("/v1/key-findings", json=RCT).status_code == 200
    forged = http.post("/v1/key-findings", json=FABRICATED)
    assert forged.status_code == 409 and forged.json()["error"]["type"] == "conflict"
    shown = http.get("/v1/papers/pmid-90000001/key-findings").json()
    assert "doubled" not in json.dumps(shown) and shown["status"] == "ok"
    assert server.calls == 1


def test_catalogue_ids_are_generated_on_get_and_cannot_be_forged(
    serve: Any, server: ScriptedServer
) -> None:
    answers(server)
    http = serve(catalogue=Catalogue([Paper.model_validate(RCT)]))
    forged = http.post("/v1/key-findings", json=FABRICATED)
    assert forged.status_code == 409 and server.calls == 0
    first = http.get("/v1/papers/pmid-90000001/key-findings")  # no paper text from the client
    assert first.status_code == 200 and first.json()["status"] == "ok"
    assert http.get("/v1/papers/unknown-id/key-findings").status_code == 404
    assert server.calls == 1


def test_only_key_holders_may_post(
    serve: Any, server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    answers(server)
    caplog.set_level(logging.DEBUG)
    http = serve(api_keys=ApiKeys([KEY]))
    assert http.post("/v1/key-findings", json=RCT).status_code == 401
    wrong = http.post("/v1/key-findings", json=RCT, headers=json_type("kf-wrong-key-00000000000"))
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    assert http.post("/v1/key-findings", params={"budget_s": "0"}, json=RCT).status_code == 401
    assert server.calls == 0  # nothing was queued for the anonymous budget_s=0 either
    made = http.post("/v1/key-findings", content=json.dumps(RCT), headers=json_type(KEY))
    assert made.status_code == 200
    assert http.get("/v1/papers/pmid-90000001/key-findings").status_code == 200  # public
    assert KEY not in caplog.text


def test_the_generation_queue_is_bounded(serve: Any, server: ScriptedServer) -> None:
    answers(server, delay=1.0)
    http = serve(max_pending=1)
    first = http.post("/v1/key-findings", params={"budget_s": "0"}, json=synthetic_paper(1))
    assert first.status_code == 202
    shed = http.post("/v1/key-findings", params={"budget_s": "0"}, json=synthetic_paper(2))
    assert shed.status_code == 503 and shed.json()["error"]["type"] == "busy"
    assert int(shed.headers["retry-after"]) > 0


def test_generation_is_rate_limited_per_client_but_hits_are_not(
    serve: Any, server: ScriptedServer
) -> None:
    answers(server)
    http = serve(limits=ClientLimits(per_minute=1, burst=2))
    assert http.post("/v1/key-findings", json=synthetic_paper(1)).status_code == 200
    assert http.post("/v1/key-findings", json=synthetic_paper(2)).status_code == 200
    limited = http.post("/v1/key-findings", json=synthetic_paper(3))
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
    for _ in range(5):  # stored results cost nothing and are never limited
        assert http.post("/v1/key-findings", json=synthetic_paper(1)).status_code == 200
    assert server.calls == 2


def test_a_slowloris_is_disconnected(serve: Any) -> None:
    http = serve(header_timeout_s=0.5)
    host, port = http.base_url.host, http.base_url.port
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # headers never finished
        assert sock.recv(1024) == b""  # the server closed it
    assert http.get("/healthz").status_code == 200


def test_a_slow_body_times_out(serve: Any) -> None:
    http = serve(body_timeout_s=0.5)
    host, port = http.base_url.host, http.base_url.port
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/key-findings HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
            b"content-length: 1000\r\n\r\n{"
        )
        reply = b""
        while b"}}" not in reply and (chunk := sock.recv(4096)):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 408") and b"request_timeout" in reply


def test_binding_beyond_loopback_without_keys_warns(server: ScriptedServer, tmp_path: Path) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.org")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "keyfindings.cli", "serve", "--host", "0.0.0.0"]
    command += ["--port", str(port), "--base-url", server.base_url, "--model", "m"]
    command += ["--cache-dir", str(tmp_path)]
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert "warning" in first and "no API keys" in first
