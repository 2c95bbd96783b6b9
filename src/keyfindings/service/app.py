"""The HTTP face of the button: a small Starlette app, and the demo paper page.

    GET  /v1/papers/{id}/key-findings   the stored result (200), 202 while generating, else 404
    POST /v1/key-findings               paper JSON in; result (200) or 202 pending after the budget
    GET  /healthz                       liveness and which prompt and model answer
    GET  /                              the demo page with the "AI Key Findings" button

Errors are JSON ``{"error": {"type", "message"}}`` with a 4xx/5xx status; no stack trace reaches
a client.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from importlib import resources
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from keyfindings.errors import InputError, KeyFindingsError, TransientBackendError
from keyfindings.loaders import load_papers
from keyfindings.paper import Paper
from keyfindings.schema import Result
from keyfindings.service.flight import FindingsService, Pending

log = logging.getLogger("keyfindings")
MAX_BODY_BYTES = 256 * 1024
DEFAULT_BUDGET_S = 25.0


def _error(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status)


def _answer(outcome: Result | Pending) -> Response:
    if isinstance(outcome, Pending):
        return JSONResponse(
            asdict(outcome), status_code=202, headers={"retry-after": f"{outcome.retry_after_s:g}"}
        )
    return Response(outcome.model_dump_json(), media_type="application/json")


async def _read_json(request: Request) -> Any:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise HTTPException(413, f"request body over {MAX_BODY_BYTES} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise HTTPException(413, f"request body over {MAX_BODY_BYTES} bytes")
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise HTTPException(400, "the body is not valid JSON") from None


def _paper_json(paper: Paper) -> dict[str, Any]:
    data = paper.model_dump()
    data["sentences"] = [{"n": s.number, "text": s.text, "label": s.label} for s in paper.sentences]
    return data


def create_app(service: FindingsService, *, demo_paper: Path | None = None) -> Starlette:
    """The ASGI app over a ``FindingsService``; ``demo_paper`` is the file the demo page shows."""

    async def findings_by_id(request: Request) -> Response:
        outcome = service.by_id(request.path_params["paper_id"])
        if outcome is None:
            return _error(
                404,
                "not_found",
                "no key findings for this paper yet; POST the paper "
                "to /v1/key-findings to generate them",
            )
        return _answer(outcome)

    async def create_findings(request: Request) -> Response:
        data = await _read_json(request)
        if not isinstance(data, dict):
            raise HTTPException(400, "expected a JSON object with at least an 'abstract'")
        try:
            budget = float(request.query_params.get("budget_s", DEFAULT_BUDGET_S))
        except ValueError:
            raise HTTPException(400, "budget_s must be a number of seconds") from None
        paper = Paper.from_dict(data, where="body")
        return _answer(await service.aget_findings(paper, budget_s=min(max(budget, 0.0), 120.0)))

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

    async def demo(request: Request) -> Response:
        page = resources.files("keyfindings.service").joinpath("demo.html").read_text("utf-8")
        return HTMLResponse(page)

    async def demo_paper_json(request: Request) -> Response:
        if demo_paper is None:
            return _error(404, "not_found", "this server has no demo paper")
        return JSONResponse(_paper_json(load_papers(demo_paper)[0]))

    async def on_input_error(request: Request, exc: Exception) -> Response:
        return _error(422, "invalid_paper", str(exc))

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return _error(exc.status_code, "bad_request", str(exc.detail))

    async def on_backend_error(request: Request, exc: Exception) -> Response:
        status = 503 if isinstance(exc, TransientBackendError) else 502
        log.warning("model call failed: %s", exc)
        return _error(status, type(exc).__name__, str(exc))

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.exception("internal error")
        return _error(500, "internal_error", "internal error; the server log has the details")

    routes = [
        Route("/v1/papers/{paper_id:path}/key-findings", findings_by_id, methods=["GET"]),
        Route("/v1/key-findings", create_findings, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/", demo, methods=["GET"]),
        Route("/demo/paper.json", demo_paper_json, methods=["GET"]),
    ]
    handlers: dict[Any, Any] = {
        InputError: on_input_error,
        HTTPException: on_http_error,
        KeyFindingsError: on_backend_error,
        Exception: on_unexpected,
    }
    return Starlette(routes=routes, exception_handlers=handlers)
