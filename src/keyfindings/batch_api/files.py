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
from typing import Any, Final

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


def split(lines: Iterable[bytes], limits: Limits) -> Iterator[list[bytes]]:
    """Group request lines into files within ``limits`` (a line over the byte limit alone
    still gets a file: the provider's refusal then names it)."""
    chunk: list[bytes] = []
    size = 0
    for line in lines:
        if chunk and (len(chunk) >= limits.max_requests or size + len(line) > limits.max_bytes):
            yield chunk
            chunk, size = [], 0
        chunk.append(line)
        size += len(line)
    if chunk:
        yield chunk


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


def read_results(path: Path) -> Iterator[tuple[str, dict[str, Any] | Failure]]:
    """(custom_id, response body) per answered line, or (custom_id, Failure); lines that are
    not JSON or name no request are skipped (they cannot be matched to a paper)."""
    with open(path, "rb") as handle:
        for raw in handle:
            try:
                line = json.loads(raw)
                cid = line["custom_id"]
            except (ValueError, KeyError, TypeError, RecursionError):
                continue
            if not isinstance(cid, str):
                continue
            yield cid, _outcome(line)


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
