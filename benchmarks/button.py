"""The button's hot paths, measured in one run (not a test):

1. cache-hit latency of ``get_findings`` (p50, p99), against a bare diskcache read of the same
   entry as the baseline;
2. the same over HTTP with wrk (Debian's ``wrk``; a Python client when it is missing), against
   ``/healthz`` on the same server as the baseline;
3. 100 concurrent requests for one uncached paper against a slow scripted model server: how many
   model calls were made (goal: exactly 1);
4. the same hit latency and HTTP rate with the shared PostgreSQL store (a local server started
   for the run, as the tests do), as ratios against the diskcache numbers of this run.

    .venv/bin/python benchmarks/button.py
"""

from __future__ import annotations

import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from keyfindings import Paper, ResultCache, Summarizer  # noqa: E402
from keyfindings.backends.openai_compat import OpenAICompatBackend  # noqa: E402
from keyfindings.service import FindingsService  # noqa: E402
from keyfindings.service.app import create_app  # noqa: E402
from tests.conftest import answers, rct_answer, running, wait_until  # noqa: E402
from tests.scripted_server import ScriptedServer, chat  # noqa: E402

RCT = ROOT / "tests" / "fixtures" / "rct.json"


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(0.99 * (len(ordered) - 1))]


def cache_hit_latency(service: FindingsService, paper: Paper, n: int = 20000) -> None:
    key = service.summarizer.key_for(paper)
    raw = service.cache._cache
    base, ours = [], []
    for _ in range(n):
        t = time.perf_counter()
        raw.get(key)
        base.append(time.perf_counter() - t)
        t = time.perf_counter()
        service.get_findings(paper)
        ours.append(time.perf_counter() - t)
    (b50, _), (o50, o99) = percentiles(base), percentiles(ours)
    print(
        f"get_findings cache hit: p50 {o50 * 1e6:.0f} us, p99 {o99 * 1e6:.0f} us "
        f"(bare diskcache read p50 {b50 * 1e6:.0f} us: ratio {o50 / b50:.1f}x)"
    )


def wrk(url: str, seconds: int = 5) -> float:
    out = subprocess.run(
        ["wrk", "-t2", "-c32", f"-d{seconds}s", url], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return float(match.group(1)) if match else 0.0


def python_load(url: str, seconds: float = 5.0) -> float:
    import httpx2

    done, deadline = 0, time.monotonic() + seconds

    def worker() -> int:
        count = 0
        with httpx2.Client() as client:
            while time.monotonic() < deadline:
                client.get(url)
                count += 1
        return count

    with ThreadPoolExecutor(8) as pool:
        done = sum(pool.map(lambda _: worker(), range(8)))
    return done / seconds


def http_throughput(service: FindingsService, paper: Paper) -> None:
    app = create_app(service)
    load = wrk if shutil.which("wrk") else python_load
    with running(app) as base:
        found = f"{base}/v1/papers/{paper.id}/key-findings"
        health = load(f"{base}/healthz")
        hits = load(found)
    tool = "wrk -t2 -c32" if load is wrk else "python client (install wrk for a real load tool)"
    print(
        f"HTTP cache hits ({tool}): {hits:.0f} req/s; /healthz {health:.0f} req/s "
        f"(ratio {hits / health:.2f})"
    )


def single_flight(tmp: Path) -> None:
    server = ScriptedServer().start()

    def slow(body: dict[str, Any]) -> Any:
        reply = chat(rct_answer())
        reply.delay = 1.0
        return reply

    server.handler = slow
    backend = OpenAICompatBackend("bench", base_url=server.base_url, timeout=30)
    service = FindingsService(Summarizer(backend, cache=ResultCache(tmp / "flight")), workers=4)
    paper = Paper.model_validate(json.loads(RCT.read_text()))
    start = time.perf_counter()
    with ThreadPoolExecutor(100) as pool:
        outcomes = list(pool.map(lambda _: service.get_findings(paper, budget_s=30), range(100)))
    elapsed = time.perf_counter() - start
    ok = sum(getattr(o, "status", "") == "ok" for o in outcomes)
    print(
        f"100 concurrent requests, one uncached paper, model latency 1.0 s: "
        f"{server.calls} model call(s), {ok}/100 got the result in {elapsed:.2f} s"
    )
    service.close()
    server.stop()


def store_hit_latency(service: FindingsService, paper: Paper, n: int = 2000) -> float:
    """p50 of ``get_findings`` on a hit, in seconds (printed with p99)."""
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        service.get_findings(paper)
        samples.append(time.perf_counter() - t)
    p50, p99 = percentiles(samples)
    print(f"  {service.cache.directory}: hit p50 {p50 * 1e6:.0f} us, p99 {p99 * 1e6:.0f} us")
    return p50


def serve_processes(n: int, store: str, model_url: str) -> list[tuple[subprocess.Popen[str], str]]:
    """``n`` real ``keyfindings serve`` processes on one store, ready to answer."""
    import socket

    started = []
    for _ in range(n):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        command = [sys.executable, "-m", "keyfindings.cli", "serve", "--port", str(port)]
        command += ["--store", store, "--base-url", model_url, "--model", "bench"]
        command += ["--rate-limit", "1000000"]
        proc = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.DEVNULL, text=True)
        started.append((proc, f"http://127.0.0.1:{port}"))
    for _, base in started:
        wait_until(lambda base=base: answers(f"{base}/healthz"), timeout=60)
    return started


def processes_throughput(label: str, store: str, model_url: str, n: int) -> float:
    """Cache-hit req/s over ``n`` serve processes on one store, loaded at the same time."""
    import httpx2

    servers = serve_processes(n, store, model_url)
    try:
        body = json.loads(RCT.read_text())
        httpx2.post(f"{servers[0][1]}/v1/key-findings", json=body, timeout=60)
        urls = [f"{base}/v1/papers/pmid-90000001/key-findings" for _, base in servers]
        with ThreadPoolExecutor(len(urls)) as pool:
            total = sum(pool.map(lambda url: python_load(url, 5.0), urls))
        print(f"  {label}: {total:.0f} req/s on cache hits")
        return total
    finally:
        for proc, _ in servers:
            proc.terminate()
            proc.wait(timeout=30)


def compare_stores(tmp: Path) -> None:
    from keyfindings.store import open_store
    from tests.postgres import PostgresServer

    try:
        database = PostgresServer.start()
    except (RuntimeError, OSError) as exc:
        print(f"PostgreSQL store: skipped ({exc})")
        return
    server = ScriptedServer().start()
    server.handler = lambda body: chat(rct_answer())
    paper = Paper.model_validate(json.loads(RCT.read_text()))
    rates = {}
    try:
        print("get_findings cache hit by store:")
        for name, spec in (("diskcache", str(tmp / "d")), ("postgres", database.dsn("postgres"))):
            backend = OpenAICompatBackend("bench", base_url=server.base_url, timeout=30)
            service = FindingsService(Summarizer(backend, cache=open_store(spec)))
            service.get_findings(paper)
            rates[name] = store_hit_latency(service, paper)
            http_throughput(service, paper)
            service.close()
        print(f"  postgres / diskcache hit latency: {rates['postgres'] / rates['diskcache']:.1f}x")
        print("HTTP cache hits, real serve processes (python client):")
        one = processes_throughput("1 process, diskcache", str(tmp / "serve"), server.base_url, 1)
        two = processes_throughput(
            "2 processes, one PostgreSQL", database.dsn("postgres"), server.base_url, 2
        )
        print(f"  2 × PostgreSQL / 1 × diskcache: {two / one:.2f}")
    finally:
        server.stop()
        database.stop()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = ScriptedServer().start()
        server.queue(chat(rct_answer()))
        backend = OpenAICompatBackend("bench", base_url=server.base_url, timeout=30)
        service = FindingsService(Summarizer(backend, cache=ResultCache(Path(tmp) / "c")))
        paper = Paper.model_validate(json.loads(RCT.read_text()))
        service.get_findings(paper)
        cache_hit_latency(service, paper)
        http_throughput(service, paper)
        service.close()
        server.stop()
        single_flight(Path(tmp))
        compare_stores(Path(tmp))


if __name__ == "__main__":
    main()
