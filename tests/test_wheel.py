"""Installed the way a user installs it: a wheel in a fresh venv, run from another directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

from tests.conftest import FIXTURES, rct_answer
from tests.scripted_server import ScriptedServer, chat

ROOT = Path(__file__).parents[1]


def run(command: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    # A fresh install sees neither the checkout's prompts nor its sources.
    hidden = ("KEYFINDINGS_PROMPTS", "PYTHONPATH")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(hidden)}
    return subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=300, env={**clean, **env}
    )


def test_a_wheel_carries_its_prompts_and_demo_paper(server: ScriptedServer, tmp_path: Path) -> None:
    built = run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path / "dist"),
            str(ROOT),
        ],
        cwd=tmp_path,
    )
    assert built.returncode == 0, built.stderr
    [wheel] = (tmp_path / "dist").glob("keyfindings-*.whl")
    venv = tmp_path / "venv"
    assert (
        run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path).returncode
        == 0
    )
    python = venv / "bin" / "python"
    site = Path(
        run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            cwd=tmp_path,
        ).stdout.strip()
    )
    # The dependencies come from the dev environment; keyfindings itself only from the wheel
    # (a .pth in a plain directory does not run that directory's own .pth files, so the
    # editable install there stays out of sight).
    (site / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    installed = run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        cwd=tmp_path,
    )
    assert installed.returncode == 0, installed.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cli = [str(python), "-m", "keyfindings.cli"]
    where = run([str(python), "-c", "import keyfindings; print(keyfindings.__file__)"], elsewhere)
    assert str(site) in where.stdout, where.stdout + where.stderr

    demo = run(
        [str(python), "-c", "from keyfindings.service.app import default_demo_paper as d; "
         "print(d().is_file(), d())"],
        elsewhere,
    )  # fmt: skip
    assert demo.stdout.startswith("True") and str(site) in demo.stdout, demo.stderr

    listed = run([*cli, "prompts", "list"], elsewhere)
    assert listed.returncode == 0 and "key_findings@v1" in listed.stdout, listed.stderr

    server.queue(chat(rct_answer()))
    paper = elsewhere / "paper.json"
    paper.write_text((FIXTURES / "rct.json").read_text())
    summary = run(
        [
            *cli,
            "summarize",
            "paper.json",
            "--base-url",
            server.base_url,
            "--model",
            "m",
            "--format",
            "json",
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
        elsewhere,
    )
    assert summary.returncode == 0, summary.stderr
    assert json.loads(summary.stdout)["status"] == "ok"
