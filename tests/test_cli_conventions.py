"""The command line as a new user meets it: options anywhere, examples, exit codes, stdin."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest
from rich.console import Console

from keyfindings.batch import BatchStats
from keyfindings.progress import BatchProgress
from tests.conftest import FIXTURES, rct_answer
from tests.scripted_server import ScriptedServer, chat
from tests.synthetic import FaultyHandler, good_answer, write_jsonl
from tests.test_cli import ROOT, remote, run

COMMANDS = ["summarize", "recheck", "batch", "serve", "eval", "prompts", "cache", "models"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_help_teaches_with_examples(command: str) -> None:
    out = run(command, "--help")
    assert out.returncode == 0 and "examples:\n  keyfindings " + command in out.stdout


def test_global_options_before_or_after_the_command(tmp_path: Path) -> None:
    for args in (
        ["--cache-dir", str(tmp_path), "-v", "cache", "stats"],
        ["cache", "stats", "-v", "--cache-dir", str(tmp_path)],
    ):
        out = run(*args)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["directory"] == str(tmp_path / "results")


def test_usage_errors_exit_2(server: ScriptedServer, tmp_path: Path) -> None:
    paper = str(FIXTURES / "rct.json")
    assert run("summarize", paper, "--no-such-option").returncode == 2
    assert run("serve", "--no-cache").returncode == 2  # an option serve would reject
    bad_prompt = run("summarize", paper, *remote(server), "--prompt", "nope@v9")
    assert bad_prompt.returncode == 2 and "--prompt nope@v9" in bad_prompt.stderr
    server.models = ["qwen-a", "qwen-b"]
    no_model = run("summarize", paper, "--base-url", server.base_url)
    assert no_model.returncode == 2 and "needs --model" in no_model.stderr
    assert "qwen-a, qwen-b" in no_model.stderr and server.calls == 0


def test_a_server_with_one_model_names_it(server: ScriptedServer, tmp_path: Path) -> None:
    server.models = ["qwen-local"]
    server.queue(chat(rct_answer()))
    out = run(
        "summarize", str(FIXTURES / "rct.json"), "--base-url", server.base_url,
        "--cache-dir", str(tmp_path), "--format", "json",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["model"] == "qwen-local" and result["usage"]["cost_usd"] is None


def test_summarize_reads_stdin_and_counts(server: ScriptedServer, tmp_path: Path) -> None:
    import subprocess
    import sys

    server.handler = lambda body: chat(good_answer(body["messages"][1]["content"]))
    source = write_jsonl(tmp_path / "in.jsonl", [1, 2])
    piped = subprocess.run(
        [sys.executable, "-m", "keyfindings.cli", "summarize", "-", *remote(server),
         "--cache-dir", str(tmp_path / "c"), "--format", "json"],
        input=source.read_text(), capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert piped.returncode == 0, piped.stderr
    assert [json.loads(line)["paper_id"] for line in piped.stdout.splitlines()] == [
        "syn-1",
        "syn-2",
    ]
    counted = run("summarize", str(source), *remote(server), "--cache-dir", str(tmp_path / "c"))
    assert "[1/2] syn-1" in counted.stderr and "[2/2] syn-2" in counted.stderr


def test_batch_stops_early_when_nothing_connects(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", range(200))
    out = run(
        "batch", str(source), "-o", str(tmp_path / "out.jsonl"), "-q",
        "--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--timeout", "1",
        "--cache-dir", str(tmp_path / "c"),
    )  # fmt: skip
    assert out.returncode == 1 and "could not reach the model server" in out.stderr
    errors = (tmp_path / "out.errors.jsonl").read_text().splitlines()
    assert len(errors) < 50  # stopped, not 200 papers retried


def test_dry_run_is_readable(server: ScriptedServer, tmp_path: Path) -> None:
    out = run(
        "batch", str(FIXTURES / "pubmed_set.xml"), "-o", str(tmp_path / "o.jsonl"),
        "--dry-run", *remote(server),
    )  # fmt: skip
    assert out.returncode == 0 and out.stdout.startswith("papers:   2 (2 to generate")
    assert "cost:     unknown for this model" in out.stdout


def test_eval_gates_and_limits(server: ScriptedServer, tmp_path: Path) -> None:
    server.handler = FaultyHandler(faults=False)
    cases = tmp_path / "cases.jsonl"
    write_jsonl(cases, range(5))
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "name: s\nprompts: [key_findings@v1]\n"
        f'models: [{{label: x, backend: openai, base_url: "{server.base_url}", model: m}}]\n'
        f"cases: [{cases}, ../nowhere/shared.jsonl]\n"
    )
    common = ["--out-dir", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "c"), "-q"]
    unknown = run("eval", str(suite), "--gate", "ok_ratio>=0.9", *common)
    assert unknown.returncode == 1 and "no such metric" in unknown.stderr and server.calls == 0
    limited = run("eval", str(suite), "--limit", "2", "--gate", "ok_rate>=0.9", *common)
    assert limited.returncode == 0, limited.stderr
    assert "2 cases" in limited.stdout and "skipped ../nowhere/shared.jsonl" in limited.stderr


def test_the_batch_bar_keeps_count_and_eta_at_80_columns() -> None:
    stats = BatchStats(total=1000, written=120, cached=30, failed=3, prompt_tokens=123_456)
    stats.started = time.monotonic() - 60
    bar = BatchProgress(1000, console=Console(file=io.StringIO(), force_terminal=True))
    bar.update(stats)
    screen = Console(file=io.StringIO(), width=80, color_system=None)
    screen.print(bar._progress.get_renderable())
    [line] = screen.file.getvalue().splitlines()  # type: ignore[attr-defined]
    assert len(line) <= 80 and "123/1000" in line
    assert "ETA 0:07:" in line  # 877 left at 123 per minute, from the whole run's pace
