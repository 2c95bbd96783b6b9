"""One behaviour suite, run against both stores: diskcache (embedded) and a real PostgreSQL."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from keyfindings import Paper, Summarizer
from keyfindings.backends.openai_compat import OpenAICompatBackend
from keyfindings.errors import StorageError
from keyfindings.pg_store import PostgresStore
from keyfindings.store import ResultStore, open_store
from tests.conftest import FIXTURES, answers, rct_answer, wait_until
from tests.scripted_server import ScriptedServer, chat

ROOT = Path(__file__).parents[1]


@pytest.fixture
def summarizer(make_summarizer: Any) -> Any:
    """``summarizer(server, store, **options)``: closed at the end of the test, like all of
    the tests' summarizers (an unclosed client leaks a socket)."""
    return lambda server, store, **kwargs: make_summarizer(cache=store, timeout=10.0, **kwargs)


def spec_of(store: ResultStore) -> str:
    return store.dsn if isinstance(store, PostgresStore) else str(store.directory)


def test_hits_misses_and_a_changed_configuration(
    store: ResultStore, server: ScriptedServer, rct: Paper, summarizer: Any
) -> None:
    server.handler = lambda body: chat(rct_answer())
    first = summarizer(server, store).summarize(rct)
    again = summarizer(server, store).summarize(rct)
    assert first.status == "ok" and not first.cached and again.cached and server.calls == 1
    other = summarizer(server, store, params={"temperature": 0.3}).summarize(rct)
    assert not other.cached and server.calls == 2  # another configuration: a miss
    s = summarizer(server, store)
    assert store.lookup(rct.id, s.scope()) == s.key_for(rct)
    assert store.get_answers(s.answers_key(rct)) is not None
    stats = store.stats()
    assert stats["entries"] == 2 and stats["by_prompt"] == {"key_findings@v1": 2}
    assert store.clear("key_findings@v9") == {"results": 0, "flagged": 0, "answers": 0}
    assert store.clear("key_findings@v1")["results"] == 2
    assert store.get(s.key_for(rct)) is None


def test_flagged_results_are_kept_briefly(
    store: ResultStore, server: ScriptedServer, rct: Paper, summarizer: Any
) -> None:
    server.handler = lambda body: chat(
        rct_answer(results=[{"text": "Infections fell by 99%.", "evidence": [6]}])
    )
    s = summarizer(server, store)
    flagged = s.summarize(rct)
    assert flagged.status == "flagged"
    key = s.key_for(rct)
    assert store.get(key) is None and store.get_recent(key) is not None
    store.put(key, flagged, scope=s.scope(), recent_ttl_s=0.2)
    wait_until(lambda: store.get_recent(key) is None)
    assert store.get(key) is None  # and it never was an accepted result


def test_reports_are_kept_with_their_result(store: ResultStore) -> None:
    assert store.add_report("kf1:sha256:x", {"paper_id": "p", "reason": "r"}, tag="a@v1")
    assert store.reports() == [{"paper_id": "p", "reason": "r", "key": "kf1:sha256:x"}]


HOLDER = """
import signal, sys
from keyfindings.pg_store import PostgresStore
from keyfindings.store import open_store
spec = sys.argv[1]
store = PostgresStore(spec, lease_s=1.0) if spec.startswith("postgresql") else open_store(spec)
with store.single_flight("kf1:sha256:paper"):
    print("held", flush=True)
    signal.pause()  # until killed
"""


def test_a_killed_holder_does_not_block_the_paper(store: ResultStore) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, spec_of(store)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    os.kill(holder.pid, signal.SIGKILL)
    holder.communicate(timeout=30)
    done = threading.Event()

    def take_over() -> None:
        with store.single_flight("kf1:sha256:paper"):
            done.set()

    thread = threading.Thread(target=take_over, daemon=True)
    thread.start()
    assert done.wait(timeout=30)  # after the lock's release, or the lease's expiry


FLIGHT = """
import sys
from keyfindings import Paper, Summarizer
from keyfindings.backends.openai_compat import OpenAICompatBackend
from keyfindings.service import FindingsService
from keyfindings.store import open_store
paper = Paper.model_validate_json(open(sys.argv[3]).read())
backend = OpenAICompatBackend("test-model", base_url=sys.argv[2], timeout=30)
service = FindingsService(Summarizer(backend, cache=open_store(sys.argv[1])))
print("waiting", flush=True)
result = service.get_findings(paper, budget_s=50)
print(result.status, result.cached, flush=True)
"""


def test_processes_share_one_model_call(store: ResultStore, server: ScriptedServer) -> None:
    release = threading.Event()

    def held(body: dict[str, Any]) -> Any:
        release.wait(timeout=60)
        return chat(rct_answer())

    server.handler = held
    command = [sys.executable, "-c", FLIGHT, spec_of(store), server.base_url]
    procs = [
        subprocess.Popen(
            [*command, str(FIXTURES / "rct.json")], cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "waiting"
    wait_until(lambda: server.calls >= 1)
    release.set()
    outputs = sorted(p.communicate(timeout=60)[0].split() for p in procs)
    assert server.calls == 1
    assert outputs == [["ok", "False"], ["ok", "True"], ["ok", "True"]]


def test_fifty_concurrent_requests_make_one_call(
    store: ResultStore, server: ScriptedServer, rct: Paper, summarizer: Any
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from keyfindings.service import FindingsService

    def slow(body: dict[str, Any]) -> Any:
        reply = chat(rct_answer())
        reply.delay = 0.5
        return reply

    server.handler = slow
    service = FindingsService(summarizer(server, store))
    with ThreadPoolExecutor(max_workers=50) as pool:
        outcomes = list(pool.map(lambda _: service.get_findings(rct, budget_s=30), range(50)))
    service.close()
    assert server.calls == 1 and all(o.status == "ok" for o in outcomes)


def test_a_restarted_database_is_a_clear_error_then_recovers(
    server: ScriptedServer, rct: Paper, summarizer: Any
) -> None:
    from tests.postgres import PostgresServer

    database = PostgresServer.start()
    try:
        store = open_store(database.create_database("kf"))
        server.handler = lambda body: chat(rct_answer())
        summarizer(server, store).summarize(rct)
        database.stop(remove=False)
        with pytest.raises(StorageError, match=r"the store at postgresql://postgres@127\.0\.0\.1"):
            summarizer(server, store).summarize(rct)
        database.pg_ctl("start")

        def summarized() -> Any:
            try:
                return summarizer(server, store).summarize(rct)
            except StorageError:
                return None

        # Broken pooled connections are dropped; fresh ones work.
        result = wait_until(summarized)
        assert result.cached and server.calls == 1  # nothing lost, nothing half-written
        store.close()
    finally:
        database.stop()


def test_rate_limits_are_shared_by_servers_on_one_store(postgres: Any) -> None:
    from keyfindings.service.access import SharedLimits

    dsn = postgres.create_database("kf_rate_shared")
    one, two = PostgresStore(dsn), PostgresStore(dsn)  # two servers' connections
    first, second = SharedLimits(one, 1.0, burst=2), SharedLimits(two, 1.0, burst=2)
    assert first.take("ip-1.2.3.4") is None and second.take("ip-1.2.3.4") is None
    wait = first.take("ip-1.2.3.4")
    assert wait is not None and 0 < wait <= 60  # the bucket the two share is empty
    assert second.take("ip-5.6.7.8") is None  # another client has its own
    one.close()
    two.close()


def test_the_served_configuration_switches_and_falls_back(
    store: ResultStore, server: ScriptedServer, rct: Paper, summarizer: Any
) -> None:
    from keyfindings.service import FindingsService

    server.handler = lambda body: chat(rct_answer())
    other = Paper.model_validate({**rct.model_dump(), "id": "p-other", "title": "Another paper"})
    old = summarizer(server, store)
    new = summarizer(server, store, params={"temperature": 0.2})
    old.summarize(rct)
    old.summarize(other)
    new.summarize(rct)  # the regeneration has reached one paper so far
    served = [{"prompt": "key_findings@v1", "model": "test-model", "scope": s.scope()}
              for s in (new, old)]  # fmt: skip
    store.set_served(served)
    assert store.served() == served
    button = FindingsService(new, fallback_scopes=[c["scope"] for c in store.served()])
    assert button.by_id(rct.id) == new.cached(rct)  # regenerated: the new configuration
    assert button.by_id("p-other") == old.cached(other)  # not yet: still the old one
    store.set_served(served[1:])  # switch back
    back = FindingsService(old, fallback_scopes=[c["scope"] for c in store.served()])
    assert back.by_id(rct.id) == old.cached(rct)
    assert new.cached(rct) != old.cached(rct)


def test_a_running_server_follows_a_switch_without_a_restart(
    store: ResultStore, server: ScriptedServer, summarizer: Any
) -> None:
    from keyfindings.service import FindingsService
    from keyfindings.service.flight import Pending
    from tests.synthetic import good_answer, paper

    def answer(body: dict[str, Any]) -> Any:
        user = body["messages"][1]["content"]
        if "[S1]" in user:
            return chat(good_answer(user))
        sentence = re.search(r"We randomised [^.]*\.", user)
        text = sentence.group(0) if sentence else ""
        return chat({"study_type": "randomized_controlled_trial", "methodology": text,
                     "results": "", "significance": "", "limitations": ""})  # fmt: skip

    server.handler = answer
    papers = [Paper.model_validate(paper(i)) for i in range(3)]
    old = summarizer(server, store)
    new = summarizer(server, store, prompt="key_findings_compact@v2")
    for p in papers:
        old.summarize(p)
    new.summarize(papers[0])  # the regeneration has reached one paper so far

    def entry(s: Any) -> dict[str, str]:
        return {"prompt": s.prompt.ref.ref, "model": s.backend.model, "scope": s.scope()}

    def shown(paper_id: str) -> str:
        result = button.by_id(paper_id)
        assert result is not None and not isinstance(result, Pending)
        return str(result.prompt.ref)

    store.set_served([entry(old)])
    button = FindingsService(old, follow_served=True, served_refresh_s=0.0)
    assert shown(papers[0].id) == "key_findings@v1"
    store.set_served([entry(new), entry(old)])  # keyfindings store serve-config --prompt …
    assert shown(papers[0].id) == "key_findings_compact@v2"
    assert shown(papers[1].id) == "key_findings@v1"  # not reached yet: the old one stands
    fresh = button.get_findings(paper(7))  # a miss is generated under the served prompt
    assert not isinstance(fresh, Pending) and fresh.prompt.ref == "key_findings_compact@v2"
    store.set_served([entry(old)])  # --back
    assert shown(papers[0].id) == "key_findings@v1"
    # A configuration this server cannot generate (another model) leaves it as it was.
    store.set_served([{"prompt": "key_findings@v1", "model": "elsewhere", "scope": "x" * 64}])
    assert shown(papers[1].id) == "key_findings@v1"
    button.close()


def test_serve_config_from_the_command_line(server: ScriptedServer, tmp_path: Path) -> None:
    from tests.test_cli import run

    common = ["--base-url", server.base_url, "--model", "m", "--cache-dir", str(tmp_path)]
    first = run("store", "serve-config", *common)
    second = run("store", "serve-config", *common, "--prompt", "key_findings_compact@v2")
    assert first.returncode == 0 and second.returncode == 0, second.stderr
    assert second.stdout.splitlines()[0].startswith("serving   key_findings_compact@v2 · m")
    assert second.stdout.splitlines()[1].startswith("fallback  key_findings@v1 · m")
    back = run("store", "serve-config", *common, "--back")
    assert back.stdout.startswith("serving   key_findings@v1 · m")
    assert len(back.stdout.splitlines()) == 1


def test_stale_only_asks_the_shared_store(
    postgres: Any, server: ScriptedServer, summarizer: Any, tmp_path: Path
) -> None:
    from keyfindings.batch import dry_run
    from tests.synthetic import good_answer, write_jsonl

    server.handler = lambda body: chat(good_answer(body["messages"][1]["content"]))
    store = open_store(postgres.create_database("kf_stale"))
    source = write_jsonl(tmp_path / "in.jsonl", range(4))
    papers = [Paper.model_validate(json.loads(line)) for line in source.read_text().splitlines()]
    current = summarizer(server, store)
    for paper in papers[:2]:
        current.summarize(paper)
    backend = OpenAICompatBackend("an-older-model", base_url=server.base_url, timeout=10)
    with Summarizer(backend, cache=store) as older:
        older.summarize(papers[2])  # made by another model: stale
    report = dry_run(current, [source], tmp_path / "none.jsonl", stale_only=True)
    assert report.to_generate + report.cache_hits == 1  # only the stale paper (3rd)
    assert report.skipped == 3  # 2 current, 1 never made (not stale: new)
    store.close()


def serve_process(dsn: str, server: ScriptedServer) -> tuple[subprocess.Popen[str], str]:
    """``keyfindings serve`` on a free port against the shared store; (process, base URL)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "keyfindings.cli", "serve", "--port", str(port)]
    command += ["--store", dsn, "--base-url", server.base_url, "--model", "test-model"]
    proc = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    return proc, f"http://127.0.0.1:{port}"


def test_two_serve_processes_on_one_store_make_one_call(
    postgres: Any, server: ScriptedServer
) -> None:
    import httpx2

    release = threading.Event()

    def held(body: dict[str, Any]) -> Any:
        release.wait(timeout=60)
        return chat(rct_answer())

    server.handler = held
    dsn = postgres.create_database("kf_two_servers")
    servers = [serve_process(dsn, server) for _ in range(2)]
    try:
        for _, base in servers:
            wait_until(lambda base=base: answers(f"{base}/healthz"), timeout=60)
        body = json.loads((FIXTURES / "rct.json").read_text())
        pending = [
            httpx2.post(f"{base}/v1/key-findings", params={"budget_s": "0"}, json=body)
            for _, base in servers
        ]
        assert [r.status_code for r in pending] == [202, 202]
        wait_until(lambda: server.calls >= 1)
        release.set()
        for _, base in servers:
            done = wait_until(
                lambda base=base: (r := httpx2.get(f"{base}{FINDINGS}")).status_code == 200 and r
            )
            assert done.json()["status"] == "ok"
        assert server.calls == 1  # one model call for the paper, whichever server was asked
    finally:
        for proc, _ in servers:
            proc.terminate()
            proc.communicate(timeout=30)


FINDINGS = "/v1/papers/pmid-90000001/key-findings"
