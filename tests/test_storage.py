"""The cache and output files under abuse: planted pickles, corruption, full disks, two writers."""

from __future__ import annotations

import asyncio
import os
import pickle
import resource
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from keyfindings import ResultCache, StorageError
from keyfindings.backends.local import LocalBackend
from keyfindings.cli import main
from keyfindings.joblog import OutputLock
from keyfindings.prompts import GenerationParams
from tests.conftest import wait_until
from tests.scripted_server import ScriptedServer
from tests.synthetic import FaultyHandler, stalling, write_jsonl
from tests.test_batch import ROOT, batch_command, lines


class Planted:
    """Unpickling this creates a file: the proof that a planted row ran code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (Path.touch, (self.marker,))


def test_a_planted_pickle_is_never_unpickled(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path / "results")
    cache.close()
    marker = tmp_path / "pwned"
    with sqlite3.connect(tmp_path / "results" / "cache.db") as db:
        db.execute(
            "INSERT INTO Cache (key, raw, store_time, expire_time, access_time, access_count, "
            "tag, size, mode, filename, value) VALUES (?, 1, 0, NULL, 0, 0, NULL, 0, 4, NULL, ?)",
            ("kf1:sha256:planted", pickle.dumps(Planted(marker))),
        )
    cache = ResultCache(tmp_path / "results")
    assert cache.get("kf1:sha256:planted") is None
    cache.stats()
    assert not marker.exists()


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_corrupt_cache_is_named_and_rebuilt(
    tmp_path: Path, damage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "results"
    cache = ResultCache(directory)
    for i in range(200):
        cache._cache.set(f"filler-{i}", "x" * 2000)
    cache.close()
    db = directory / "cache.db"
    if damage == "garbage":
        db.write_bytes(os.urandom(8192))
    else:
        db.write_bytes(db.read_bytes()[: db.stat().st_size // 3])
    with pytest.raises(StorageError, match=r"corrupt.*cache clear --force"):
        ResultCache(directory).stats()
    assert main(["cache", "stats", "--cache-dir", str(tmp_path)]) == 1
    assert "Traceback" not in capsys.readouterr().err
    assert main(["cache", "clear", "--force", "--cache-dir", str(tmp_path)]) == 0
    assert ResultCache(directory).stats()["entries"] == 0


def test_a_second_batch_on_the_same_output_refuses(server: ScriptedServer, tmp_path: Path) -> None:
    release = threading.Event()
    # The first batch stays busy until the second has been refused.
    server.handler = stalling(FaultyHandler(faults=False), 1, release)
    source = write_jsonl(tmp_path / "in.jsonl", range(60))
    out = tmp_path / "out.jsonl"
    cmd = batch_command(source, out, server, tmp_path)
    first = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: lines(out), timeout=60)
    second = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
    release.set()
    first.wait(timeout=120)
    assert second.returncode == 1 and f"pid {first.pid}" in second.stderr
    assert "Traceback" not in second.stderr
    ids = [r["paper_id"] for r in lines(out)]
    assert len(ids) == len(set(ids)) == 60  # each paper written (and paid for) once


def test_a_lock_left_by_a_killed_run_is_taken_over(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, sys; from pathlib import Path; from keyfindings.joblog import "
            "OutputLock; lock = OutputLock(Path(sys.argv[1])).__enter__(); print('held', "
            "flush=True); signal.pause()",
            str(out),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    with pytest.raises(StorageError, match=f"pid {holder.pid}"), OutputLock(out):
        pass
    holder.send_signal(signal.SIGKILL)
    holder.communicate(timeout=30)
    with OutputLock(out):
        assert (tmp_path / "out.jsonl.lock").read_text().strip() == str(os.getpid())


def _limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails (EFBIG) instead of killing
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))


def test_a_full_disk_stops_the_batch_with_one_message_and_it_resumes(
    server: ScriptedServer, tmp_path: Path
) -> None:
    server.handler = FaultyHandler(faults=False)
    source = write_jsonl(tmp_path / "in.jsonl", range(40))
    out = tmp_path / "out.jsonl"
    cmd = batch_command(source, out, server, tmp_path)
    full = subprocess.run(
        [*cmd, "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_limit_file_size,
    )
    assert full.returncode == 1, full.stderr
    assert "run the same command again to resume" in full.stderr
    assert "Traceback" not in full.stderr and full.stderr.count("error:") == 1
    whole_lines = out.read_text().count("\n")  # the last one may be cut off mid-write
    assert 0 < whole_lines < 40
    resumed = subprocess.run([*cmd, "--no-cache"], cwd=ROOT, capture_output=True, timeout=120)
    assert resumed.returncode == 0
    ids = [r["paper_id"] for r in lines(out)]
    assert len(ids) == len(set(ids)) == 40


class HeldLlama:
    """Stands in for llama.cpp's context: counts generations, each held until released."""

    def __init__(self) -> None:
        self.calls = 0
        self.started = threading.Event()
        self.release = threading.Event()

    def create_chat_completion(self, **_: Any) -> dict[str, Any]:
        self.calls += 1
        self.started.set()
        self.release.wait(timeout=30)
        return {"choices": [{"message": {"content": "{}"}, "finish_reason": "stop"}]}


def test_cancelled_embedded_calls_never_start_generating(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    backend = LocalBackend(model)
    backend._llama = llama = HeldLlama()
    backend._grammar = lambda schema: None  # type: ignore[method-assign]

    async def cancel_a_queue_of_calls() -> None:
        calls = [
            asyncio.ensure_future(backend.acomplete([], {}, GenerationParams())) for _ in range(5)
        ]
        # The first is generating; the others wait for the model.
        assert await asyncio.to_thread(llama.started.wait, 30)
        for call in calls:
            call.cancel()
        await asyncio.gather(*calls, return_exceptions=True)
        llama.release.set()

    asyncio.run(cancel_a_queue_of_calls())  # joins the worker threads before returning
    assert llama.calls == 1
