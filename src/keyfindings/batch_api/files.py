"""Batch API JSONL files: requests out (within the provider's limits), answers back in.

A request's ``custom_id`` is a hash of its body, so papers with the same content share one
request, a re-ask (whose messages include the first answer) gets its own id, and an answer
downloaded in any earlier round is found again by asking for the same request.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Final

from keyfindings.errors import StorageError

ENDPOINT: Final = "/v1/chat/completions"


@dataclass(frozen=True)
class Limits:
    """Per input file: OpenAI allows 50,000 requests and 200 MB."""

    max_requests: int = 50_000
    max_bytes: int = 200 * 1024 * 1024


@dataclass(frozen=True)
class Failure:
    """A request the provider answered with an error instead of a completion."""

    status_code: int | None
    message: str

    @property
    def permanent(self) -> bool:
        """A client error (bad request, too long): sending it again gets the same answer."""
        return (
            self.status_code is not None
            and 400 <= self.status_code < 500
            and (self.status_code not in (408, 409, 429))
        )


def custom_id(body: dict[str, Any]) -> str:
    """The request's content address."""
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return "kf-" + hashlib.sha256(canonical.encode()).hexdigest()[:40]


def request_line(cid: str, body: dict[str, Any]) -> bytes:
    line = {"custom_id": cid, "method": "POST", "url": ENDPOINT, "body": body}
    return json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def write_atomic(path: Path, chunks: Iterable[bytes]) -> None:
    """Write to a temporary file, flush it to disk, then rename over ``path``: a kill leaves
    the old file or the new one, never half of one."""
    temporary = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(temporary, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        raise StorageError(
            f"cannot write {path}: {exc.strerror or exc}; make room and run the same command "
            "again to resume"
        ) from None


def request_ids(path: Path) -> set[str]:
    """The custom_ids a request file holds."""
    with open(path, "rb") as handle:
        return {json.loads(line)["custom_id"] for line in handle if line.strip()}


def read_results(path: Path) -> Iterator[tuple[int, str, dict[str, Any] | Failure]]:
    """(offset, custom_id, response body or Failure) per line of an output or error file;
    lines that are not JSON or name no request are skipped (no paper can be matched)."""
    with open(path, "rb") as handle:
        offset = 0
        for raw in handle:
            at, offset = offset, offset + len(raw)
            parsed = _parse(raw)
            if parsed is not None:
                yield at, parsed[0], parsed[1]


def _parse(raw: bytes) -> tuple[str, dict[str, Any] | Failure] | None:
    try:
        line = json.loads(raw)
        cid = line["custom_id"]
    except (ValueError, KeyError, TypeError, RecursionError):
        return None
    return (cid, _outcome(line)) if isinstance(cid, str) else None


class AnswerIndex:
    """custom_id → where its answer is on disk; answers are read when a paper needs them, so
    memory holds an offset per request, not the answers. Transient failures are left out
    (the request is still unanswered); refusals are kept (asking again gets the same)."""

    def __init__(self) -> None:
        self._paths: list[Path] = []
        self._where: dict[str, tuple[int, int]] = {}
        self._handles: dict[int, BinaryIO] = {}

    def add(self, path: Path) -> None:
        """Index an output, error or online-answer file, if it exists."""
        if not path.exists():
            return
        self._paths.append(path)
        number = len(self._paths) - 1
        for offset, cid, outcome in read_results(path):
            if not isinstance(outcome, Failure) or outcome.permanent:
                self._where.setdefault(cid, (number, offset))

    def get(self, cid: str) -> dict[str, Any] | Failure | None:
        """The answer to the request, if one is known."""
        where = self._where.get(cid)
        if where is None:
            return None
        number, offset = where
        if number not in self._handles:
            self._handles[number] = open(self._paths[number], "rb")  # noqa: SIM115
        handle = self._handles[number]
        handle.seek(offset)
        parsed = _parse(handle.readline())
        return parsed[1] if parsed else None

    def record(self, path: Path, cid: str, body: dict[str, Any]) -> None:
        """Append an answer got another way (online) to ``path`` durably, and index it."""
        line = {"custom_id": cid, "response": {"status_code": 200, "body": body}}
        data = json.dumps(line, ensure_ascii=False).encode() + b"\n"
        try:
            with open(path, "ab") as handle:
                offset = handle.tell()
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from None
        if path not in self._paths:
            self._paths.append(path)
        number = self._paths.index(path)
        self._handles.pop(number, None)  # reopen: the file grew
        self._where[cid] = (number, offset)

    def close(self) -> None:
        for handle in self._handles.values():
            handle.close()
        self._handles.clear()


def _outcome(line: dict[str, Any]) -> dict[str, Any] | Failure:
    response = line.get("response") if isinstance(line.get("response"), dict) else None
    error = line.get("error") if isinstance(line.get("error"), dict) else None
    status = response.get("status_code") if response else None
    body = response.get("body") if response else None
    if error is None and status == 200 and isinstance(body, dict):
        return body
    if error is None and isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
    message = str((error or {}).get("message") or (error or {}).get("code") or "no answer")
    return Failure(status if isinstance(status, int) else None, message[:300])
