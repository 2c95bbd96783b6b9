"""A small real OpenAI-compatible HTTP server on 127.0.0.1 that answers from a script.

Tests queue replies (status, JSON body, headers, delay, or a dropped connection) and afterwards
inspect every request the SDK really sent. Used instead of patching: timeouts, Retry-After and
refused connections only show up on a real socket.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    raw: bytes | None = None  # sent as the body instead of ``body`` as JSON
    trickle: float = 0.0  # seconds between bytes of the body


def chat(
    content: str | dict[str, Any],
    *,
    finish_reason: str = "stop",
    prompt_tokens: int = 120,
    completion_tokens: int = 60,
) -> Reply:
    """A chat.completions answer whose message content is ``content`` (dicts are JSON-encoded)."""
    text = content if isinstance(content, str) else json.dumps(content)
    return Reply(
        body={
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": 0,
            "model": "scripted",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": finish_reason,
                    "message": {"role": "assistant", "content": text},
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
    )


def error(status: int, message: str = "scripted error", **headers: str) -> Reply:
    return Reply(
        status=status, body={"error": {"message": message, "type": "test"}}, headers=headers
    )


class QuietHandler(BaseHTTPRequestHandler):
    """HTTP/1.1, no access log, and a client that goes away mid-request (a killed process, a
    timeout) is not an error."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def handle(self) -> None:
        with contextlib.suppress(ConnectionError):
            super().handle()


class ScriptedServer:
    """Serves queued replies in order; ``handler`` (if set) decides replies instead."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.script: list[Reply] = []
        self.handler: Callable[[dict[str, Any]], Reply] | None = None
        self.models: list[str] = []  # what GET /v1/models lists
        self._lock = threading.Lock()
        server = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                data = [{"id": m, "object": "model"} for m in server.models]
                payload = json.dumps({"object": "list", "data": data}).encode()
                self.send_response(200 if self.path.endswith("/models") else 404)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                reply = server._next(body, {k.lower(): v for k, v in self.headers.items()})
                if reply.delay:
                    time.sleep(reply.delay)
                payload = reply.raw if reply.raw is not None else json.dumps(reply.body).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    for key, value in reply.headers.items():
                        self.send_header(key.replace("_", "-"), value)
                    self.end_headers()
                    if not reply.trickle:
                        self.wfile.write(payload)
                    for i in range(len(payload) if reply.trickle else 0):
                        self.wfile.write(payload[i : i + 1])
                        self.wfile.flush()
                        time.sleep(reply.trickle)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def _next(self, body: dict[str, Any], headers: dict[str, str]) -> Reply:
        with self._lock:
            self.requests.append(body)
            self.headers.append(headers)
            if self.handler is not None:
                return self.handler(body)
            if self.script:
                return self.script.pop(0)
        return error(500, "script exhausted")

    def queue(self, *replies: Reply) -> None:
        with self._lock:
            self.script.extend(replies)

    @property
    def calls(self) -> int:
        return len(self.requests)

    def start(self) -> ScriptedServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
