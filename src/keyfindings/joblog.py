"""Append-only JSONL files for batch output: resumable, crash-safe, never written twice.

Each line is flushed as soon as it is written, so a crash or ``kill -9`` loses at most the papers
in flight. A line cut off by a crash is removed before appending again, so the file stays valid.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from keyfindings.errors import LoaderError, StorageError


@dataclass(frozen=True, slots=True)
class Produced:
    """What produced a stored result: compared to the current run for ``--stale-only``."""

    prompt: str
    prompt_sha256: str
    model: str
    backend: str


def _repair_tail(path: Path) -> None:
    """Drop a last line without its newline (a write cut short by a crash)."""
    with path.open("rb+") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        if size == 0:
            return
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return
        step = min(size, 1 << 16)
        pos = size
        while pos > 0:
            pos = max(0, pos - step)
            handle.seek(pos)
            chunk = handle.read(size - pos)
            cut = chunk.rfind(b"\n")
            if cut >= 0:
                handle.truncate(pos + cut + 1)
                return
        handle.truncate(0)


def _lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, RecursionError):
                raise LoaderError(
                    f"{path}:{lineno}: not a JSON line; is this a keyfindings output file?"
                ) from None
            if isinstance(record, dict):
                yield lineno, record


def scan_results(path: Path) -> dict[str, Produced]:
    """Paper id → what produced its latest result in an output file (repairing a cut tail)."""
    if not path.exists():
        return {}
    _repair_tail(path)
    done: dict[str, Produced] = {}
    for lineno, record in _lines(path):
        try:
            prompt = record["prompt"]
            done[record["paper_id"]] = Produced(
                f"{prompt['name']}@v{prompt['version']}",
                prompt["sha256"],
                record["model"],
                record["backend"],
            )
        except (KeyError, TypeError):
            raise LoaderError(f"{path}:{lineno}: not a keyfindings result line") from None
    return done


class JsonlAppender:
    """Opens a JSONL file for appending and writes one flushed line per record."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[str] | None = None

    def write(self, line: str) -> None:
        """Append one JSON text line and flush it to the OS."""
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.exists():
                _repair_tail(self.path)
            self._handle = self.path.open("a", encoding="utf-8")
        self._handle.write(line.rstrip("\n") + "\n")
        self._handle.flush()

    def close(self) -> None:
        """Flush to disk and close."""
        if self._handle is not None:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            self._handle = None


class OutputLock:
    """One batch at a time per output file (two would pay for and write every paper twice).

    ``flock`` on ``OUT.lock``: the kernel releases it when its holder dies, so the lock of a
    killed run is taken over with no clean-up; the file names the holder's pid for the message.
    """

    def __init__(self, out: Path) -> None:
        self.out = out
        self.path = out.with_name(out.name + ".lock")
        self._fd: int | None = None

    def __enter__(self) -> OutputLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StorageError(
                f"{self.out} is being written by another batch (pid {holder}); wait for it to "
                "finish or stop it, then run this command again (it resumes)"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
