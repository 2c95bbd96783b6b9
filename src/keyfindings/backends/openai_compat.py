"""Any OpenAI-compatible server through the ``openai`` SDK (OpenAI, vLLM, llama.cpp, Ollama, …).

Servers differ on ``response_format``: OpenAI and vLLM enforce ``json_schema``; llama-cpp-python's
server rejects it but takes ``json_object`` with a ``schema``; others take only plain JSON mode.
The backend walks down that ladder on a rejection and remembers, per server and model, the first
mode that worked. Every answer is validated afterwards regardless.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import math
import re
import time
from typing import Any, ClassVar

import httpx2
import openai

from keyfindings import pricing
from keyfindings.backends._grammar import without_sentence_caps
from keyfindings.backends.base import DEFAULT_TIMEOUT_S, Completion, Messages
from keyfindings.backends.deadline import AsyncDeadlineTransport, DeadlineTransport
from keyfindings.errors import (
    BackendConnectionError,
    BackendError,
    BackendTimeoutError,
    FormatRejectedError,
    RateLimitedError,
    RequestRejectedError,
    ServerError,
)
from keyfindings.prompts import GenerationParams
from keyfindings.redact import redact_url

MODES = ("json_schema", "json_object_schema", "json_object", "none")
# What parsing a 200 that is not a chat completion raises inside the SDK or ``_completion``.
_MALFORMED = (ValueError, TypeError, AttributeError, KeyError, IndexError, RecursionError)
_FORMAT_REJECTED = re.compile(r"response_format|json_schema|json_object|schema|'text'", re.I)


def _seconds(value: str, scale: float = 1.0) -> float | None:
    """A positive, finite number of seconds; None for anything else (the backoff applies)."""
    try:
        seconds = float(value) * scale
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds > 0 else None


def _retry_after(response: httpx2.Response | None) -> float | None:
    """The server's wait in seconds; junk, negative or past values read as "not said"."""
    if response is None:
        return None
    headers = response.headers
    if "retry-after-ms" in headers:
        return _seconds(headers["retry-after-ms"], 0.001)
    value = headers.get("retry-after", "").strip()
    if not value:
        return None
    if value[:1].isdigit() or value[:1] in "-+.":
        return _seconds(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return _seconds(str(moment.timestamp() - time.time()))


def _response_format(mode: str, schema: dict[str, Any]) -> dict[str, Any] | None:
    if mode == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {"name": "key_findings", "strict": True, "schema": schema},
        }
    if mode == "json_object_schema":
        return {"type": "json_object", "schema": schema}
    if mode == "json_object":
        return {"type": "json_object"}
    return None


def _with_messages(body: dict[str, Any], messages: Messages) -> dict[str, Any]:
    """Keyword arguments for ``create``: the messages travel in ``extra_body`` (which the SDK
    merges into the JSON as is), since its per-request TypedDict walk over them cost ~2 ms of
    CPU a call (profiled: a fifth of a batch client's CPU)."""
    extra = {**body.get("extra_body", {}), "messages": messages}
    return {**body, "messages": [], "extra_body": extra}


def served_models(base_url: str, api_key: str | None, timeout: float = 5.0) -> list[str]:
    """The model names a server lists at ``/models`` (none if it cannot say)."""
    client = openai.OpenAI(
        base_url=base_url, api_key=api_key or "no-key-required", timeout=timeout, max_retries=0
    )
    try:
        return [model.id for model in client.models.list()]
    except (openai.OpenAIError, *_MALFORMED):
        return []
    finally:
        client.close()


class _HttpClient(openai.DefaultHttpxClient):
    """The SDK's default client over the deadline transport; closed when collected, as the
    SDK's own is, so an unclosed backend leaks no socket."""

    def __init__(self, timeout: float) -> None:
        super().__init__(transport=DeadlineTransport(httpx2.HTTPTransport(), timeout))

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            if not self.is_closed:
                self.close()


class _AsyncHttpClient(openai.DefaultAsyncHttpxClient):
    """Async form of ``_HttpClient``."""

    def __init__(self, timeout: float) -> None:
        super().__init__(transport=AsyncDeadlineTransport(httpx2.AsyncHTTPTransport(), timeout))

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            if not self.is_closed:
                asyncio.get_running_loop().create_task(self.aclose())


class OpenAICompatBackend:
    """Chat completions against ``base_url``; retries are left to ``RetryPolicy``."""

    name = "openai"
    _modes: ClassVar[dict[str, str]] = {}  # server+model -> first response_format mode that worked

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        http_client: httpx2.Client | None = None,
        async_http_client: httpx2.AsyncClient | None = None,
    ) -> None:
        self.model = model
        self.base_url = (base_url or "https://api.openai.com/v1").rstrip("/")
        self.shown_url = redact_url(self.base_url)  # for messages: no user:password@
        # Local servers need no key, but the SDK insists on one.
        self._api_key = api_key or "no-key-required"
        self._timeout = timeout
        self._http_client = http_client
        self._async_http_client = async_http_client
        self._client: openai.OpenAI | None = None
        self._aclient: openai.AsyncOpenAI | None = None
        self._bodies: dict[tuple[str, int, int], tuple[object, object, dict[str, Any]]] = {}

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAICompatBackend(model={self.model!r}, base_url={self.shown_url!r})"

    def identity(self) -> dict[str, Any]:
        """Server and model name: the same name on another server may be another model."""
        return {"backend": self.name, "base_url": self.shown_url, "model": self.model}

    def digest(self) -> str | None:
        """Remote weights are unknown."""
        return None

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        """Estimate at online list prices (``keyfindings.pricing``); None when unknown."""
        return pricing.cost(self.model, prompt_tokens, completion_tokens)

    @property
    def client(self) -> openai.OpenAI:
        """The SDK client, built on first use, with the SDK's own retries off."""
        if self._client is None:
            self._client = openai.OpenAI(
                api_key=self._api_key,
                base_url=self.base_url,
                max_retries=0,
                timeout=self._timeout,
                http_client=self._http_client or _HttpClient(self._timeout),
            )
        return self._client

    def close(self) -> None:
        """Close the sync client's connections."""
        if self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        """Close the async client in the loop that used it (httpx clients are loop-bound)."""
        if self._aclient is not None:
            await self._aclient.close()
            self._aclient = None

    @property
    def aclient(self) -> openai.AsyncOpenAI:
        """The async SDK client, built on first use."""
        if self._aclient is None:
            self._aclient = openai.AsyncOpenAI(
                api_key=self._api_key,
                base_url=self.base_url,
                max_retries=0,
                timeout=self._timeout,
                http_client=self._async_http_client or _AsyncHttpClient(self._timeout),
            )
        return self._aclient

    @property
    def mode(self) -> str:
        """The response_format mode this server is known (or assumed) to accept."""
        return self._modes.get(f"{self.base_url}|{self.model}", MODES[0])

    def _body(self, mode: str, schema: dict[str, Any], params: GenerationParams) -> dict[str, Any]:
        # Built once per (mode, schema) and reused: per-call schema conversion shows on 2 cores.
        key = (mode, id(schema), id(params))
        cached = self._bodies.get(key)
        if cached is not None and cached[0] is schema and cached[1] is params:
            return cached[2]
        body: dict[str, Any] = {"model": self.model, **params.model_dump(exclude_none=True)}
        response_format = _response_format(mode, without_sentence_caps(schema))
        if response_format is not None:
            # Sent as extra_body: the SDK otherwise walks the whole JSON schema through its
            # TypedDict transform on every request (profiled: ~1/4 of the client's CPU per call).
            body["extra_body"] = {"response_format": response_format}
        self._bodies[key] = (schema, params, body)
        return body

    def error_for(self, exc: Exception) -> BackendError:
        """Map an SDK exception to ours, with any secret scrubbed from the message."""
        message = str(exc).replace(self._api_key, "***").replace(self.base_url, self.shown_url)
        url = self.shown_url
        request_id = getattr(exc, "request_id", None)
        if isinstance(exc, openai.APITimeoutError):
            return BackendTimeoutError(f"{url}: no complete answer within {self._timeout:g}s")
        if isinstance(exc, openai.APIConnectionError):
            return BackendConnectionError(f"{url}: cannot connect ({message})")
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            text = f"{url}: HTTP {status}: {message}"
            if request_id:
                text += f" (request id {request_id})"
            if status == 429:
                return RateLimitedError(
                    text, retry_after=_retry_after(exc.response), request_id=request_id
                )
            if status in (408, 409) or status >= 500:
                error = ServerError(text, status_code=status, request_id=request_id)
                error.retry_after = _retry_after(exc.response)
                return error
            return RequestRejectedError(text, status_code=status, request_id=request_id)
        # A 200 whose body is not a chat completion (truncated, wrong shape, absurdly nested):
        # usually a proxy or server fault that passes, so it is retried.
        return ServerError(f"{url}: malformed answer ({type(exc).__name__})")

    def _fall_back(self, mode: str, error: BackendError) -> str | None:
        """The next mode to try if ``error`` is a rejection of ``mode``'s response_format.

        llama-cpp-python's server (0.3.36, measured) answers a ``json_schema`` request with HTTP
        500 carrying a validation error about ``response_format``, so a 500 that names
        response_format counts as a rejection too.
        """
        message = str(error)
        rejected = (
            error.status_code in (400, 422) and _FORMAT_REJECTED.search(message) is not None
        ) or (error.status_code == 500 and "response_format" in message)
        if not rejected or mode == MODES[-1]:
            return None
        return MODES[MODES.index(mode) + 1]

    def batch_client(self, timeout: float = 600.0) -> openai.AsyncOpenAI:
        """A client for Batch API files and batches: a long timeout (input files run to 200 MB)
        and no SDK retries, since a blind retry of a create could submit a batch twice."""
        return openai.AsyncOpenAI(
            api_key=self._api_key, base_url=self.base_url, max_retries=0, timeout=timeout
        )

    def request_body(
        self, messages: Messages, schema: dict[str, Any], params: GenerationParams
    ) -> dict[str, Any]:
        """The chat-completions request exactly as the online path sends it in ``json_schema``
        mode (the Batch API takes one per line; OpenAI enforces the schema there too)."""
        body = dict(self._body(MODES[0], schema, params))
        extra = body.pop("extra_body", {})
        return {**body, **extra, "messages": messages}

    def completion_from(self, body: Any) -> Completion:
        """A Batch API output line's response body → Completion; ``ServerError`` if it is not
        a chat completion."""
        try:
            return self._completion(openai.types.chat.ChatCompletion.model_validate(body))
        except _MALFORMED as exc:  # pydantic's ValidationError is a ValueError
            raise self.error_for(exc) from None

    def _completion(self, response: Any) -> Completion:
        choice = response.choices[0] if response.choices else None
        if choice is None:
            raise ServerError(f"{self.shown_url}: answer with no choices")
        usage = response.usage
        return Completion(
            text=choice.message.content or "",
            finish_reason=choice.finish_reason,
            prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
            completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
            request_id=getattr(response, "_request_id", None),
        )

    def _rejected(self, mode: str, exc: openai.OpenAIError) -> BackendError:
        """Our error for ``exc``; a rejection of ``mode``'s response_format moves this server
        down the ladder and is retried like any transient fault, so each request is counted
        and paced."""
        error = self.error_for(exc)
        fallback = self._fall_back(mode, error)
        if fallback is None:
            return error
        self._modes[f"{self.base_url}|{self.model}"] = fallback
        return FormatRejectedError(
            f"{self.shown_url}: the server rejected response_format {mode}; next: {fallback}",
            status_code=error.status_code,
        )

    def complete(
        self, messages: Messages, schema: dict[str, Any], params: GenerationParams
    ) -> Completion:
        """One request in the response_format mode this server is known to accept."""
        mode = self.mode
        body = self._body(mode, schema, params)
        create: Any = self.client.chat.completions.create
        try:
            return self._finish(mode, create(**_with_messages(body, messages)))
        except openai.OpenAIError as exc:
            raise self._rejected(mode, exc) from None
        except _MALFORMED as exc:
            raise self.error_for(exc) from None

    async def acomplete(
        self, messages: Messages, schema: dict[str, Any], params: GenerationParams
    ) -> Completion:
        """Async form of ``complete``; the deadline also covers a server slow to send headers."""
        mode = self.mode
        body = self._body(mode, schema, params)
        create: Any = self.aclient.chat.completions.create
        try:
            response = await asyncio.wait_for(
                create(**_with_messages(body, messages)), self._timeout + 1.0
            )
            return self._finish(mode, response)
        except TimeoutError:
            raise self.error_for(openai.APITimeoutError(httpx2.Request("POST", ""))) from None
        except openai.OpenAIError as exc:
            raise self._rejected(mode, exc) from None
        except _MALFORMED as exc:
            raise self.error_for(exc) from None

    def _finish(self, mode: str, response: Any) -> Completion:
        completion = self._completion(response)
        self._modes[f"{self.base_url}|{self.model}"] = mode
        return completion
