"""The HTTP face of the button: a small Starlette app, and the demo paper page.

    GET  /v1/papers/{id}/key-findings   the stored result (200), 202 while generating, else 404;
                                        a catalogue paper with no result yet starts generating
    POST /v1/key-findings               paper JSON in (trusted callers: an API key when the
                                        server has keys); result (200) or 202 after the budget
    GET  /healthz                       liveness and which prompt and model answer
    GET  /                              the demo page with the "AI Key Findings" button

Errors are JSON ``{"error": {"type", "message", "request_id"}}``; every response carries
``X-Request-ID``. Upstream details (model server URLs and messages) stay in the server log
under that id; clients get one sentence.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keyfindings.errors import (
    BackendError,
    BusyError,
    ConflictError,
    InputError,
    KeyFindingsError,
    RequestRejectedError,
)
from keyfindings.loaders import load_papers
from keyfindings.paper import Paper
from keyfindings.schema import Result
from keyfindings.service.access import ApiKeys, ClientLimits, Limiter
from keyfindings.service.flight import Failed, FindingsService, Pending
from keyfindings.service.openapi import docs_page, openapi_document
from keyfindings.service.readiness import Readiness

log = logging.getLogger("keyfindings")
MAX_BODY_BYTES = 256 * 1024
MAX_REPORT_BYTES = 4 * 1024
DEFAULT_BUDGET_S = 25.0
MAX_BUDGET_S = 120.0
MODEL_RETRY_AFTER_S = 30
RESULT_MAX_AGE_S = 300
FLAGGED_MAX_AGE_S = 30
_KINDS = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_paper",
    429: "rate_limited",
}


@dataclass
class AccessPolicy:
    """Who may generate, and how much: see SECURITY.md.

    With no ``api_keys`` anyone may POST (a local demo); with keys only their holders may.
    ``limits`` caps generations per client (key, else address); ``body_timeout_s`` bounds how
    long a client may take to send its body. CORS is off unless ``cors_origins`` lists sites.
    """

    api_keys: ApiKeys = field(default_factory=lambda: ApiKeys([]))
    limits: Limiter = field(default_factory=lambda: ClientLimits(per_minute=30))
    body_timeout_s: float = 30.0
    cors_origins: tuple[str, ...] = ()  # browsers on these origins may call the API
    report_limits: Limiter = field(default_factory=lambda: ClientLimits(per_minute=10))


class RequestIds:
    """ASGI middleware: a fresh id per request, in ``request.state`` and ``X-Request-ID``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = secrets.token_hex(8)
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"x-request-id"]
                message = {**message, "headers": [*headers, (b"x-request-id", request_id.encode())]}
            await send(message)

        await self.app(scope, receive, send_with_id)


def _request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", "") or secrets.token_hex(8))


def _error(
    request: Request,
    status: int,
    message: str,
    *,
    kind: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    request_id = _request_id(request)
    body = {"type": kind or _KINDS.get(status, "error"), "message": message}
    return JSONResponse(
        {"error": {**body, "request_id": request_id}},
        status_code=status,
        headers={**(headers or {}), "x-request-id": request_id},
    )


def _location(paper_id: str) -> str:
    return f"/v1/papers/{quote(paper_id, safe='')}/key-findings"


def _answer(request: Request, outcome: Result | Pending | Failed) -> Response:
    """A result with validators for caches (ETag, Cache-Control, 304); where to poll while
    pending; a failure as failed, never as "not found"."""
    if isinstance(outcome, Pending):
        return JSONResponse(
            asdict(outcome),
            status_code=202,
            headers={
                "retry-after": f"{math.ceil(outcome.retry_after_s)}",
                "location": _location(outcome.paper_id),
                "cache-control": "no-store",
            },
        )
    if isinstance(outcome, Failed):
        return _error(
            request,
            503,
            f"{outcome.message}; try again in a minute",
            kind="generation_failed",
            headers={"retry-after": f"{math.ceil(outcome.retry_after_s)}"},
        )
    # A result never changes once stored: its paper, configuration and creation time name it,
    # with no second serialisation on the hit path. Weak: fresh and stored copies differ only
    # in ``cached``.
    version = f"{outcome.paper_id}|{outcome.prompt.ref}|{outcome.model}|{outcome.created_at}"
    etag = 'W/"' + hashlib.sha256(version.encode()).hexdigest()[:32] + '"'
    body = outcome.model_dump_json()
    # Accepted results change only when regenerated (a new ETag); flagged ones are retried soon.
    age = RESULT_MAX_AGE_S if outcome.status == "ok" else FLAGGED_MAX_AGE_S
    headers = {"etag": etag, "cache-control": f"public, max-age={age}"}
    if etag in (t.strip() for t in request.headers.get("if-none-match", "").split(",")):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


def _budget(request: Request) -> float:
    try:
        budget = float(request.query_params.get("budget_s", DEFAULT_BUDGET_S))
    except ValueError:
        raise HTTPException(400, "budget_s must be a number of seconds") from None
    if not math.isfinite(budget):
        raise HTTPException(400, "budget_s must be a number of seconds")
    return min(max(budget, 0.0), MAX_BUDGET_S)


async def _read_json(request: Request, timeout_s: float, limit: int = MAX_BODY_BYTES) -> Any:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"request body over {limit} bytes")
    body = bytearray()

    async def read() -> None:
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > limit:
                raise HTTPException(413, f"request body over {limit} bytes")

    try:
        await asyncio.wait_for(read(), timeout_s)
    except TimeoutError:
        raise HTTPException(408, f"the body took over {timeout_s:g} s to arrive") from None
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise HTTPException(400, "the body is not valid JSON") from None


def _paper_json(paper: Paper) -> dict[str, Any]:
    data = paper.model_dump()
    data["sentences"] = [{"n": s.number, "text": s.text, "label": s.label} for s in paper.sentences]
    return data


def _not_json(request: Request) -> Response | None:
    """415 unless the body is declared JSON: no cross-site form or text/plain POSTs."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type == "application/json":
        return None
    return _error(request, 415, "send JSON (Content-Type: application/json)")


def _presented_key(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return request.headers.get("x-api-key")


def default_demo_paper() -> Path:
    """The demo page's paper: the checkout's ``examples/paper.xml``, else the copy a wheel
    carries, so ``serve`` works from any directory."""
    checkout = Path(__file__).resolve().parents[3] / "examples" / "paper.xml"
    if checkout.is_file():
        return checkout
    return Path(str(resources.files("keyfindings.service").joinpath("demo_paper.xml")))


def create_app(
    service: FindingsService,
    *,
    demo_paper: Path | None = None,
    access: AccessPolicy | None = None,
) -> Starlette:
    """The ASGI app over a ``FindingsService``; ``demo_paper`` is the file the demo page shows
    (it joins the catalogue, so the page only ever GETs by id)."""
    policy = access or AccessPolicy()
    readiness = Readiness(service)
    demo = load_papers(demo_paper)[0] if demo_paper is not None else None
    if demo is not None:
        service.catalogue.add(demo)

    def client_of(request: Request) -> str:
        return "ip-" + (request.client.host if request.client else "unknown")

    def rate_limited(
        request: Request, client: str, limits: Limiter | None = None, what: str = "generation"
    ) -> Response | None:
        wait = (limits or policy.limits).take(client)
        if wait is None:
            return None
        return _error(
            request,
            429,
            f"too many {what} requests from this client; try again later",
            headers={"retry-after": str(math.ceil(wait))},
        )

    async def findings_by_id(request: Request) -> Response:
        paper_id = request.path_params["paper_id"]
        outcome = service.by_id(paper_id)
        if outcome is not None:
            return _answer(request, outcome)
        paper = service.catalogue.get(paper_id)
        if paper is None:
            return _error(request, 404, "no key findings for this paper")
        budget = _budget(request)
        return rate_limited(request, client_of(request)) or _answer(
            request, await service.aget_findings(paper, budget_s=budget)
        )

    async def create_findings(request: Request) -> Response:
        if (refused := _not_json(request)) is not None:
            return refused
        client = client_of(request)
        if policy.api_keys:
            key_id = policy.api_keys.verify(_presented_key(request))
            if key_id is None:
                return _error(
                    request,
                    401,
                    "generating needs an API key (Authorization: Bearer …); readers GET by id",
                    headers={"www-authenticate": "Bearer"},
                )
            client = key_id
        budget = _budget(request)
        data = await _read_json(request, policy.body_timeout_s)
        if not isinstance(data, dict):
            raise HTTPException(400, "expected a JSON object with at least an 'abstract'")
        paper = await run_in_threadpool(Paper.from_dict, data, where="body")
        hit = service.cached(paper)
        if hit is not None:
            return _answer(request, hit)
        return rate_limited(request, client) or _answer(
            request, await service.aget_findings(paper, budget_s=budget)
        )

    async def report_finding(request: Request) -> Response:
        """A reader says a finding is wrong. Public, so small, paced, and it changes nothing
        anyone is shown: it is kept for the operator."""
        if (refused := _not_json(request)) is not None:
            return refused
        data = await _read_json(request, policy.body_timeout_s, limit=MAX_REPORT_BYTES)
        section, index = (
            (data.get("section"), data.get("index")) if isinstance(data, dict) else (None, None)
        )
        reason = data.get("reason", "") if isinstance(data, dict) else ""
        if (
            not isinstance(section, str)
            or not isinstance(index, int)
            or not isinstance(reason, str)
        ):
            raise HTTPException(400, 'expected {"section": "results", "index": 0, "reason": "..."}')
        limited = rate_limited(request, client_of(request), policy.report_limits, "report")
        if limited is not None:
            return limited
        found = await run_in_threadpool(
            service.report, request.path_params["paper_id"], section, index, reason
        )
        if not found:
            return _error(request, 404, "no such finding for this paper")
        return JSONResponse({"status": "received"}, status_code=202)

    async def healthz(request: Request) -> Response:
        summarizer = service.summarizer
        return JSONResponse(
            {
                "status": "ok",
                "prompt": summarizer.prompt.ref.ref,
                "backend": summarizer.backend.name,
                "model": summarizer.backend.model,
            }
        )

    async def readyz(request: Request) -> Response:
        model = await run_in_threadpool(readiness.model_ready)
        store = await run_in_threadpool(readiness.store_ready)
        body = {"ready": model and store, "model": model, "store": store}
        return JSONResponse(body, status_code=200 if model and store else 503)

    async def openapi(request: Request) -> Response:
        return JSONResponse(openapi_document())

    async def docs(request: Request) -> Response:
        return HTMLResponse(docs_page(openapi_document()))

    async def demo_page(request: Request) -> Response:
        page = resources.files("keyfindings.service").joinpath("demo.html").read_text("utf-8")
        return HTMLResponse(page)

    async def demo_paper_json(request: Request) -> Response:
        if demo is None:
            return _error(request, 404, "this server has no demo paper")
        return JSONResponse(_paper_json(demo))

    async def on_input_error(request: Request, exc: Exception) -> Response:
        return _error(request, 422, str(exc))

    async def on_conflict(request: Request, exc: Exception) -> Response:
        return _error(request, 409, f"{exc}; results are never overwritten")

    async def on_busy(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, BusyError)
        log.warning("request %s: shed: %s", _request_id(request), exc)
        return _error(
            request,
            503,
            "the server is busy generating key findings; try again shortly",
            kind="busy",
            headers={"retry-after": f"{math.ceil(exc.retry_after)}"},
        )

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return _error(request, exc.status_code, str(exc.detail), headers=exc.headers)

    async def on_model_error(request: Request, exc: Exception) -> Response:
        log.warning("request %s: model call failed: %s", _request_id(request), exc)
        if isinstance(exc, BackendError) and not isinstance(exc, RequestRejectedError):
            return _error(
                request,
                503,
                "the model is unavailable right now; try again later",
                kind="model_unavailable",
                headers={"retry-after": str(MODEL_RETRY_AFTER_S)},
            )
        return _error(request, 502, "key findings could not be generated", kind="model_error")

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.exception("request %s: internal error", _request_id(request))
        return _error(request, 500, "internal error; the server log has the details")

    routes = [
        Route("/v1/papers/{paper_id:path}/key-findings", findings_by_id, methods=["GET"]),
        Route("/v1/key-findings", create_findings, methods=["POST"]),
        Route("/v1/papers/{paper_id:path}/key-findings/reports", report_finding, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
        Route("/", demo_page, methods=["GET"]),
        Route("/demo/paper.json", demo_paper_json, methods=["GET"]),
    ]
    handlers: dict[Any, Any] = {
        InputError: on_input_error,
        ConflictError: on_conflict,
        BusyError: on_busy,
        HTTPException: on_http_error,
        KeyFindingsError: on_model_error,
        Exception: on_unexpected,
    }
    middleware = [Middleware(RequestIds)]
    if policy.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(policy.cors_origins),
                allow_methods=["GET", "POST"],
                allow_headers=["content-type", "authorization", "if-none-match"],
                expose_headers=["etag", "location", "retry-after", "x-request-id"],
            )
        )
    return Starlette(routes=routes, exception_handlers=handlers, middleware=middleware)
