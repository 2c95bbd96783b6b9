"""Batch runs against the scripted loopback server: faults, resume after SIGKILL, dry run, stale."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from keyfindings import ResultCache, RetryPolicy, Summarizer
from keyfindings.backends.openai_compat import OpenAICompatBackend
from keyfindings.batch import dry_run, errors_path, run_batch
from keyfindings.joblog import scan_results
from tests.conftest import wait_until
from tests.scripted_server import ScriptedServer
from tests.synthetic import FaultyHandler, paper, stalling, write_jsonl

ROOT = Path(__file__).parents[1]


def lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def batch_command(source: Path, out: Path, server: ScriptedServer, tmp_path: Path) -> list[str]:
    """The CLI batch command against the scripted server, 4 requests in flight."""
    return [
        sys.executable,
        "-m",
        "keyfindings.cli",
        "batch",
        str(source),
        "-o",
        str(out),
        "--base-url",
        server.base_url,
        "--model",
        "m",
        "--concurrency",
        "4",
        "--quiet",
        "--cache-dir",
        str(tmp_path / "cache"),
    ]


def make(server: ScriptedServer, cache: ResultCache, **kwargs: Any) -> Summarizer:
    backend = OpenAICompatBackend("test-model", base_url=server.base_url, timeout=1.0)
    return Summarizer(
        backend,
        cache=cache,
        retry=RetryPolicy(attempts=3, initial_wait=0.01, max_wait=0.05),
        **kwargs,
    )


def test_two_hundred_papers_with_faults_each_written_once(
    server: ScriptedServer, cache: ResultCache, tmp_path: Path
) -> None:
    server.handler = FaultyHandler()
    source = write_jsonl(tmp_path / "in.jsonl", [*range(200), 5, 6])  # two duplicates
    out = tmp_path / "out.jsonl"
    stats = asyncio.run(run_batch(make(server, cache), [source], out, concurrency=16))
    results, failures = lines(out), lines(errors_path(out))
    ok_ids = [r["paper_id"] for r in results]
    failed_ids = [e["paper_id"] for e in failures]
    assert len(ok_ids) == len(set(ok_ids))
    assert sorted(ok_ids + failed_ids) == sorted(f"syn-{i}" for i in range(200))
    assert failed_ids and all(int(i.split("-")[1]) % 50 == 7 for i in failed_ids)
    assert {e["error"] for e in failures} == {"RetriesExhaustedError"}
    assert stats.duplicates == 2 and stats.failed == len(failed_ids) == 4
    assert stats.written == 196 and stats.rate_limited >= 20
    assert all(r["status"] == "ok" for r in results)
    # Re-running finds everything done except the failures, which are tried again.
    again = asyncio.run(run_batch(make(server, cache), [source], out, concurrency=16))
    assert again.skipped == 196 and again.failed == 4 and again.written == 0


def test_sigkill_mid_run_then_resume(server: ScriptedServer, tmp_path: Path) -> None:
    handler = FaultyHandler(faults=False)
    release = threading.Event()
    server.handler = stalling(handler, 30, release)  # killed mid-run
    source = write_jsonl(tmp_path / "in.jsonl", range(150))
    out = tmp_path / "out.jsonl"
    cmd = batch_command(source, out, server, tmp_path)
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: len(lines(out)) >= 30, timeout=60)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    release.set()
    finished = {r["paper_id"] for r in lines(out)}
    assert 30 <= len(finished) < 150
    requested_before = len(handler.order)
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    results = lines(out)
    ids = [r["paper_id"] for r in results]
    assert sorted(ids) == sorted(f"syn-{i}" for i in range(150)) and len(ids) == 150
    resumed = {f"syn-{n}" for n in handler.order[requested_before:]}
    assert resumed and not resumed & finished


def test_dry_run_calls_no_model(server: ScriptedServer, cache: ResultCache, tmp_path: Path) -> None:
    server.handler = FaultyHandler(faults=False)
    source = write_jsonl(tmp_path / "in.jsonl", [*range(10), 3])
    out = tmp_path / "out.jsonl"
    asyncio.run(
        run_batch(make(server, cache), [write_jsonl(tmp_path / "few.jsonl", range(4))], out)
    )
    calls = server.calls
    cache.clear()
    asyncio.run(
        run_batch(
            make(server, cache),
            [write_jsonl(tmp_path / "two.jsonl", [4, 5])],
            tmp_path / "elsewhere.jsonl",
        )
    )
    report = dry_run(make(server, cache), [source], out)
    assert server.calls == calls + 2  # the dry run itself made none
    assert (report.papers, report.skipped, report.duplicates) == (10, 4, 1)
    assert (report.cache_hits, report.to_generate) == (2, 4)
    assert report.prompt_tokens > 0 and report.completion_tokens_max == 4 * 1200


def test_stale_only_picks_exactly_the_stale(
    server: ScriptedServer, cache: ResultCache, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompts = tmp_path / "prompts"
    shutil.copytree(ROOT / "prompts", prompts)
    v2 = (prompts / "key_findings" / "v1.md").read_text().replace("version: 1", "version: 2")
    (prompts / "key_findings" / "v2.md").write_text(v2.replace("careful and literal", "precise"))
    monkeypatch.setenv("KEYFINDINGS_PROMPTS_DIR", str(prompts))
    server.handler = FaultyHandler(faults=False)
    out = tmp_path / "out.jsonl"
    asyncio.run(run_batch(make(server, cache), [write_jsonl(tmp_path / "a.jsonl", range(6))], out))
    asyncio.run(
        run_batch(
            make(server, cache, prompt="key_findings@v2"),
            [write_jsonl(tmp_path / "b.jsonl", range(6, 9))],
            out,
        )
    )
    source = write_jsonl(tmp_path / "all.jsonl", range(12))
    stats = asyncio.run(
        run_batch(make(server, cache, prompt="key_findings@v2"), [source], out, stale_only=True)
    )
    assert stats.written == 6 and stats.skipped == 6
    latest = scan_results(out)
    assert {pid for pid, p in latest.items() if p.prompt == "key_findings@v2"} == {
        f"syn-{i}" for i in range(9)
    }
    assert "syn-10" not in latest


def test_cut_off_last_line_is_repaired(
    server: ScriptedServer, cache: ResultCache, tmp_path: Path
) -> None:
    server.handler = FaultyHandler(faults=False)
    out = tmp_path / "out.jsonl"
    asyncio.run(run_batch(make(server, cache), [write_jsonl(tmp_path / "a.jsonl", range(3))], out))
    with out.open("a") as handle:
        handle.write('{"paper_id": "syn-3", "stat')  # a write cut short by a crash
    asyncio.run(run_batch(make(server, cache), [write_jsonl(tmp_path / "b.jsonl", range(5))], out))
    assert sorted(r["paper_id"] for r in lines(out)) == [f"syn-{i}" for i in range(5)]


def test_synthetic_paper_is_valid() -> None:
    from keyfindings import Paper

    assert len(Paper.from_dict(paper(3)).sentences) == 4


def test_ctrl_c_stops_cleanly_and_says_how_to_resume(
    server: ScriptedServer, tmp_path: Path
) -> None:
    release = threading.Event()
    server.handler = stalling(FaultyHandler(faults=False), 10, release)
    source = write_jsonl(tmp_path / "in.jsonl", range(200))
    out = tmp_path / "out.jsonl"
    cmd = batch_command(source, out, server, tmp_path)
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        # A shell's background job ignores SIGINT and its children inherit that; a person
        # pressing Ctrl-C runs it in the foreground.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    wait_until(lambda: len(lines(out)) >= 10, timeout=60)
    proc.send_signal(signal.SIGINT)
    release.set()  # answers may come now: the run must still stop, not finish the 200
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "Run the same command again to resume" in stderr and "Traceback" not in stderr
    assert 10 <= len(lines(out)) < 200  # every line is whole JSON
