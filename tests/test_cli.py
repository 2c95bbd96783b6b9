"""The console script, run as a real subprocess against the scripted server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import FIXTURES, rct_answer
from tests.scripted_server import ScriptedServer, chat

ROOT = Path(__file__).parents[1]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "keyfindings.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=ROOT,
        timeout=120,
    )


def remote(server: ScriptedServer) -> list[str]:
    return ["--base-url", server.base_url, "--model", "test-model"]


def test_summarize_pubmed_xml_as_json(server: ScriptedServer) -> None:
    server.queue(
        chat(rct_answer()),
        chat(
            {
                "study_type": "in_vitro",
                "methodology": [
                    {
                        "text": "Escherichia coli was cultured under hypoxia (<1% O2) for 48 h.",
                        "evidence": [1],
                    }
                ],
                "results": [
                    {
                        "text": "Growth slowed by 35% compared with normoxia (p < 0.01).",
                        "evidence": [2],
                    }
                ],
                "significance": [
                    {"text": "Hypoxia may reprogram bacterial metabolism.", "evidence": [4]}
                ],
                "limitations": [],
            }
        ),
    )
    out = run(
        "summarize",
        str(FIXTURES / "pubmed_set.xml"),
        "--format",
        "json",
        *remote(server),
        env={"OPENAI_API_KEY": "sk-env-secret"},
    )
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["paper_id"] for r in lines] == ["pmid-90000001", "pmid-90000002"]
    assert all(r["status"] == "ok" for r in lines)
    # The third article has no abstract: reported on one line, exit status 1.
    assert out.returncode == 1
    assert "PMID 90000003" in out.stderr and "Traceback" not in out.stderr
    assert "sk-env-secret" not in out.stdout + out.stderr
    assert server.headers[0]["authorization"] == "Bearer sk-env-secret"


def test_summarize_markdown(server: ScriptedServer) -> None:
    server.queue(chat(rct_answer()))
    out = run("summarize", str(FIXTURES / "rct.json"), "--format", "markdown", *remote(server))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("# Vitamin D supplementation")
    assert "**Study type:** randomized controlled trial" in out.stdout
    assert "## Results" in out.stdout and "_[S6]_" in out.stdout
    assert "key_findings@v1" in out.stdout


def test_bad_input_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    dead = ["--base-url", "http://127.0.0.1:9/v1", "--model", "m"]
    missing = run("summarize", str(tmp_path / "nope.xml"), *dead)
    assert missing.returncode == 1
    assert missing.stderr.strip().count("\n") == 0 and "no such file" in missing.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("{oops")
    out = run("summarize", str(bad), *dead)
    assert out.returncode == 1 and "not valid JSON" in out.stderr and "Traceback" not in out.stderr


def test_unreachable_server_is_one_line(tmp_path: Path) -> None:
    out = run(
        "summarize",
        str(FIXTURES / "rct.json"),
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--model",
        "m",
        "--timeout",
        "2",
    )
    assert out.returncode == 1 and "cannot connect" in out.stderr
    assert "Traceback" not in out.stderr


def test_prompts_list_and_show() -> None:
    listing = run("prompts", "list")
    assert listing.returncode == 0 and "key_findings@v1" in listing.stdout
    shown = run("prompts", "show", "key_findings@v1")
    assert shown.stdout.startswith("---\nname: key_findings\n")
    unknown = run("prompts", "show", "key_findings@v99")
    assert unknown.returncode == 1 and "has no version v99" in unknown.stderr


def test_cache_stats_and_clear(server: ScriptedServer, tmp_path: Path) -> None:
    server.queue(chat(rct_answer()))
    cache_dir = str(tmp_path / "c")
    args: list[Any] = ["--cache-dir", cache_dir]
    assert run("summarize", str(FIXTURES / "rct.json"), *remote(server), *args).returncode == 0
    again = run("summarize", str(FIXTURES / "rct.json"), *remote(server), *args)
    assert json.loads(again.stdout)["cached"] is True and server.calls == 1
    stats = json.loads(run("cache", "stats", *args).stdout)
    assert stats["entries"] == 1 and stats["by_prompt"] == {"key_findings@v1": 1}
    cleared = run("cache", "clear", "--prompt", "key_findings@v1", *args)
    assert "removed 1 results, 0 flagged results and 1 stored answers of" in cleared.stdout


def test_models_lists_the_embedded_default() -> None:
    out = run("models")
    assert out.returncode == 0
    assert "default (embedded): qwen2.5-coder-1.5b-instruct-q4_k_m" in out.stdout
    assert "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046" in out.stdout


def test_batch_dry_run_from_the_command_line(server: ScriptedServer, tmp_path: Path) -> None:
    out = run(
        "batch",
        str(FIXTURES / "pubmed_set.xml"),
        "-o",
        str(tmp_path / "o.jsonl"),
        "--dry-run",
        *remote(server),
        "--model",
        "gpt-4o-mini",
        "--format",
        "json",
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert (report["papers"], report["to_generate"], report["invalid"]) == (2, 2, 1)
    assert report["cost_usd_max"] > report["cost_usd_typical"] > 0
    assert server.calls == 0


def test_recheck_command_makes_no_call(server: ScriptedServer, tmp_path: Path) -> None:
    env = {"KEYFINDINGS_CACHE_DIR": str(tmp_path / "cache")}
    paper = str(FIXTURES / "rct.json")
    server.queue(chat(rct_answer()))
    assert run("summarize", paper, "--format", "json", *remote(server), env=env).returncode == 0
    assert server.calls == 1
    out = run("recheck", paper, "--format", "json", *remote(server), env=env)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["status"] == "ok" and server.calls == 1
    assert "rechecked 1, ok 1" in out.stderr
    missing = run("recheck", paper, *remote(server), env={"KEYFINDINGS_CACHE_DIR": str(tmp_path)})
    assert missing.returncode == 0 and "no stored answer 1" in missing.stderr


def test_version_and_an_empty_prompts_directory(tmp_path: Path) -> None:
    from keyfindings import __version__

    out = run("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"keyfindings {__version__}"
    assert __version__ != "0+unknown"
    empty = run("prompts", "list", env={"KEYFINDINGS_PROMPTS_DIR": str(tmp_path)})
    assert empty.returncode == 1 and "no prompt files found" in empty.stderr
