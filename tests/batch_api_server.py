"""A loopback server with OpenAI's Batch API (``/v1/files``, ``/v1/batches``) and chat
completions, driven through the real ``openai`` SDK.

Each batch walks validating → in_progress → finalizing → its outcome, one step per retrieve.
Outcomes are queued per batch (completed, failed, expired with part of the work done);
``cancel`` ends one as cancelled, keeping what it did. ``hold(point)`` stops the server at a
point (before or after it stores an upload, a batch, at a poll or a download) so a test can kill
the client exactly there.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.scripted_server import QuietHandler, Reply
from tests.synthetic import FaultyHandler

_PLANS = {
    "completed": ["validating", "in_progress", "finalizing", "completed"],
    "expired": ["validating", "in_progress", "expired"],
    "failed": ["validating", "failed"],
}


@dataclass
class Batch:
    id: str
    input_file_id: str
    metadata: dict[str, str]
    plan: list[str]
    keep: int | None  # requests answered before an expiry or cancellation
    created_at: int = field(default_factory=lambda: int(time.time()))
    status: str = "validating"
    in_progress_at: int | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    counts: dict[str, int] = field(
        default_factory=lambda: {"total": 0, "completed": 0, "failed": 0}
    )

    def as_json(self) -> dict[str, Any]:
        failed = self.status == "failed"
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": "/v1/chat/completions",
            "errors": {
                "object": "list",
                "data": [{"code": "invalid_request", "message": "scripted failure", "line": 1}],
            }
            if failed
            else None,
            "input_file_id": self.input_file_id,
            "completion_window": "24h",
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": self.created_at,
            "in_progress_at": self.in_progress_at,
            "request_counts": self.counts,
            "metadata": self.metadata,
        }


class BatchApiServer:
    """See the module docstring; ``answer`` turns one request body into a Reply."""

    def __init__(self, answer: Callable[[dict[str, Any]], Reply] | None = None) -> None:
        self.answer = answer or FaultyHandler(faults=False)
        self.files: dict[str, dict[str, Any]] = {}
        self.contents: dict[str, bytes] = {}
        self.batches: dict[str, Batch] = {}
        self.outcomes: list[tuple[str, int | None]] = []  # per new batch: (outcome, keep)
        self.chat_calls = 0
        self.holds: dict[str, tuple[threading.Event, threading.Event]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        server = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                self._reply(*server.get(urlparse(self.path)))

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                self._reply(*server.post(self.path, self.headers.get("content-type", ""), body))

            def _reply(self, status: int, payload: Any) -> None:
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    # ---- test controls ----

    def start(self) -> BatchApiServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        for _, release in self.holds.values():
            release.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def hold(self, point: str) -> threading.Event:
        """Stop at ``point`` until ``release(point)``; the returned event says it got there."""
        reached = threading.Event()
        self.holds[point] = (reached, threading.Event())
        return reached

    def release(self, point: str) -> None:
        _, release = self.holds.pop(point)
        release.set()

    def _at(self, point: str) -> None:
        held = self.holds.get(point)
        if held is not None:
            held[0].set()
            held[1].wait(timeout=30)

    @property
    def uploads(self) -> list[dict[str, Any]]:
        return [f for f in self.files.values() if f["purpose"] == "batch"]

    def requests_of(self, batch: Batch) -> list[dict[str, Any]]:
        text = self.contents[batch.input_file_id].decode()
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    # ---- endpoints ----

    def _id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids)}"

    def get(self, url: Any) -> tuple[int, Any]:
        path, query = url.path, parse_qs(url.query)
        if path == "/v1/files":
            wanted = query.get("purpose", [None])[0]
            data = [f for f in self.files.values() if wanted in (None, f["purpose"])]
            return 200, {"object": "list", "data": data[::-1], "has_more": False}
        if path.startswith("/v1/files/") and path.endswith("/content"):
            self._at("content")
            return 200, self.contents[path.split("/")[3]]
        if path == "/v1/batches":
            data = [b.as_json() for b in self.batches.values()][::-1]
            return 200, {"object": "list", "data": data, "has_more": False}
        if path.startswith("/v1/batches/"):
            self._at("retrieve")
            with self._lock:
                batch = self.batches[path.split("/")[3]]
                self._advance(batch)
                return 200, batch.as_json()
        return 404, {"error": {"message": "no such endpoint"}}

    def post(self, path: str, content_type: str, body: bytes) -> tuple[int, Any]:
        if path == "/v1/files":
            self._at("upload:before")
            stored = self._store_upload(content_type, body)
            self._at("upload:after")
            return 200, stored
        if path == "/v1/batches":
            self._at("create:before")
            request = json.loads(body)
            batch = self.make_batch(request["input_file_id"], request.get("metadata") or {})
            self._at("create:after")
            return 200, batch.as_json()
        if path.startswith("/v1/batches/") and path.endswith("/cancel"):
            with self._lock:
                batch = self.batches[path.split("/")[3]]
                batch.plan = ["cancelling", "cancelled"]
                batch.status = "cancelling"
                return 200, batch.as_json()
        if path == "/v1/chat/completions":
            self.chat_calls += 1
            reply = self.answer(json.loads(body))
            return reply.status, reply.body
        return 404, {"error": {"message": "no such endpoint"}}

    def make_batch(self, input_file_id: str, metadata: dict[str, str] | None = None) -> Batch:
        """A batch of the file's requests, on the next queued outcome."""
        with self._lock:
            outcome, keep = self.outcomes.pop(0) if self.outcomes else ("completed", None)
            batch = Batch(
                self._id("batch"), input_file_id, metadata or {}, list(_PLANS[outcome]), keep
            )
            if input_file_id in self.contents:
                batch.counts["total"] = len(self.requests_of(batch))
            self.batches[batch.id] = batch
        return batch

    def _store_upload(self, content_type: str, body: bytes) -> dict[str, Any]:
        message = BytesParser(policy=HTTP).parsebytes(
            b"content-type: " + content_type.encode() + b"\r\n\r\n" + body
        )
        fields: dict[str, Any] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            fields[str(name)] = (part.get_filename(), part.get_payload(decode=True))
        filename, data = fields["file"]
        stored = {
            "id": self._id("file"),
            "object": "file",
            "bytes": len(data),
            "created_at": int(time.time()),
            "filename": filename,
            "purpose": fields["purpose"][1].decode(),
            "status": "processed",
        }
        with self._lock:
            self.files[stored["id"]] = stored
            self.contents[stored["id"]] = data
        return stored

    def _advance(self, batch: Batch) -> None:
        if batch.plan and batch.plan[0] == batch.status:
            batch.plan.pop(0)
        if not batch.plan:
            return
        batch.status = batch.plan.pop(0)
        if batch.status == "in_progress":
            batch.in_progress_at = int(time.time())
        if batch.status in ("completed", "expired", "cancelled"):
            self._finish(batch)

    def _finish(self, batch: Batch) -> None:
        requests = self.requests_of(batch)
        if batch.status == "cancelled" and batch.keep is None:
            batch.keep = len(requests) // 2
        done = requests if batch.keep is None else requests[: batch.keep]
        output: list[str] = []
        errors: list[str] = []
        for line in done:
            reply = self.answer(line["body"])
            record = {
                "id": self._id("req"),
                "custom_id": line["custom_id"],
                "response": {"status_code": reply.status, "request_id": "r", "body": reply.body},
                "error": None,
            }
            (output if reply.status == 200 else errors).append(json.dumps(record))
        batch.counts.update(completed=len(output), failed=len(errors))
        for lines, attribute in ((output, "output_file_id"), (errors, "error_file_id")):
            if lines:
                file_id = self._id("file")
                self.files[file_id] = {
                    "id": file_id,
                    "object": "file",
                    "bytes": 0,
                    "created_at": int(time.time()),
                    "filename": f"{batch.id}_{attribute}.jsonl",
                    "purpose": "batch_output",
                    "status": "processed",
                }
                self.contents[file_id] = ("\n".join(lines) + "\n").encode()
                setattr(batch, attribute, file_id)


@contextlib.contextmanager
def batch_api_server(
    answer: Callable[[dict[str, Any]], Reply] | None = None,
) -> Iterator[BatchApiServer]:
    server = BatchApiServer(answer).start()
    try:
        yield server
    finally:
        server.stop()
