"""The API described for site developers: an OpenAPI 3.1 document built from the same pydantic
models the service returns, and a plain docs page rendered from it (no script, no CDN)."""

from __future__ import annotations

import html
from functools import cache
from typing import Any

from pydantic import BaseModel, TypeAdapter

from keyfindings import __version__
from keyfindings.schema import Result
from keyfindings.service.flight import Pending


class ErrorBody(BaseModel):
    """What every error response carries."""

    type: str
    message: str
    request_id: str


class ErrorResponse(BaseModel):
    """``{"error": {...}}``."""

    error: ErrorBody


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(name: str, description: str, **headers: str) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": _ref(name)}},
    }
    if headers:
        response["headers"] = {
            h: {"description": d, "schema": {"type": "string"}} for h, d in headers.items()
        }
    return response


def _errors(*codes: int) -> dict[str, Any]:
    meaning = {
        400: "bad request (invalid JSON, bad budget_s)",
        401: "an API key is needed to generate",
        404: "no findings for this paper, and the catalogue does not know it",
        405: "method not allowed (see Allow)",
        408: "the body took too long to arrive",
        409: "the paper id already stands for other content",
        413: "payload too large (over 256 KiB)",
        415: "send application/json",
        422: "the paper is not usable (e.g. the abstract is too short)",
        429: "too many generation requests from this client (see Retry-After)",
        500: "internal error (the log has details under the request id)",
        502: "key findings could not be generated",
        503: "busy, model unavailable or generation failed (see Retry-After)",
    }
    return {str(c): _json("ErrorResponse", meaning[c]) for c in codes}


@cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of ``/v1``, with every response code the service can give."""
    schemas = {}
    for name, model in (("Result", Result), ("Pending", Pending), ("ErrorResponse", ErrorResponse)):
        schema = TypeAdapter(model).json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[name] = schema
    paper_id = {"name": "paper_id", "in": "path", "required": True, "schema": {"type": "string"}}
    budget = {
        "name": "budget_s",
        "in": "query",
        "required": False,
        "schema": {"type": "number", "minimum": 0, "maximum": 120, "default": 25},
        "description": "seconds to wait for a fresh generation before answering 202",
    }
    pending = _json(
        "Pending",
        "generating: poll Location after Retry-After",
        **{"Location": "where to poll", "Retry-After": "seconds"},
    )
    result = _json("Result", "the key findings", ETag="validator", **{"Cache-Control": "policy"})
    return {
        "openapi": "3.1.0",
        "info": {"title": "keyfindings", "version": __version__},
        "paths": {
            "/v1/papers/{paper_id}/key-findings": {
                "get": {
                    "summary": "Key findings of a paper, by id (public)",
                    "parameters": [paper_id, budget],
                    "responses": {
                        "200": result,
                        "202": pending,
                        "304": {"description": "not modified (If-None-Match matched the ETag)"},
                        **_errors(400, 404, 405, 429, 500, 503),
                    },
                }
            },
            "/v1/key-findings": {
                "post": {
                    "summary": "Key findings for a paper sent as JSON (trusted callers)",
                    "security": [{"bearer": []}],
                    "parameters": [budget],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"type": "object", "required": ["abstract"]}
                            }
                        },
                    },
                    "responses": {
                        "200": result,
                        "202": pending,
                        **_errors(400, 401, 405, 408, 409, 413, 415, 422, 429, 500, 502, 503),
                    },
                }
            },
            "/v1/papers/{paper_id}/key-findings/reports": {
                "post": {
                    "summary": "A reader reports a finding as wrong (public, paced)",
                    "parameters": [paper_id],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["section", "index"],
                                    "properties": {
                                        "section": {"type": "string"},
                                        "index": {"type": "integer"},
                                        "reason": {"type": "string", "maxLength": 500},
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "202": {"description": "received"},
                        **_errors(400, 404, 413, 415, 429),
                    },
                }
            },
            "/healthz": {
                "get": {"summary": "Liveness", "responses": {"200": {"description": "alive"}}}
            },
            "/readyz": {
                "get": {
                    "summary": "Readiness: model loaded or reachable, store reachable",
                    "responses": {
                        "200": {"description": "ready"},
                        "503": {"description": "not ready"},
                    },
                }
            },
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def docs_page(document: dict[str, Any]) -> str:
    """A readable list of the operations and their responses."""
    rows = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            codes = ", ".join(
                f"<code>{html.escape(code)}</code> {html.escape(r['description'])}"
                for code, r in operation["responses"].items()
            )
            rows.append(
                f"<h2><code>{method.upper()} {html.escape(path)}</code></h2>"
                f"<p>{html.escape(operation['summary'])}</p><p>{codes}</p>"
            )
    return (
        "<!doctype html><html lang=en><meta charset=utf-8><title>keyfindings API</title>"
        "<body style='font-family:system-ui;max-width:50rem;margin:2rem auto'>"
        "<h1>keyfindings API</h1><p>Machine-readable: <a href='/openapi.json'>/openapi.json</a>"
        "</p>" + "".join(rows) + "</body></html>"
    )
