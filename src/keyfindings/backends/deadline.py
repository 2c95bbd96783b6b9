"""A total deadline per HTTP request, which httpx does not have.

httpx's timeouts apply per read: a server trickling one byte a second never trips a 3 s read
timeout. These transports wrap the real one and fail the request once its deadline has passed
between two chunks of the body, with httpx's own ``ReadTimeout`` so the SDK reports a timeout.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import httpx2


def _expired(request: httpx2.Request, seconds: float) -> httpx2.ReadTimeout:
    return httpx2.ReadTimeout(f"no complete answer within {seconds:g} s", request=request)


class _DeadlineStream(httpx2.SyncByteStream):
    def __init__(
        self, inner: httpx2.SyncByteStream, request: httpx2.Request, total: float, deadline: float
    ) -> None:
        self._inner, self._request, self._total, self._deadline = inner, request, total, deadline

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:
            if time.monotonic() > self._deadline:
                raise _expired(self._request, self._total)
            yield chunk

    def close(self) -> None:
        self._inner.close()


class _AsyncDeadlineStream(httpx2.AsyncByteStream):
    def __init__(
        self, inner: httpx2.AsyncByteStream, request: httpx2.Request, total: float, deadline: float
    ) -> None:
        self._inner, self._request, self._total, self._deadline = inner, request, total, deadline

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            if time.monotonic() > self._deadline:
                raise _expired(self._request, self._total)
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


class DeadlineTransport(httpx2.BaseTransport):
    """``inner`` with at most ``total`` seconds from sending a request to its last byte."""

    def __init__(self, inner: httpx2.BaseTransport, total: float) -> None:
        self._inner, self._total = inner, total

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        deadline = time.monotonic() + self._total
        response = self._inner.handle_request(request)
        assert isinstance(response.stream, httpx2.SyncByteStream)
        response.stream = _DeadlineStream(response.stream, request, self._total, deadline)
        return response

    def close(self) -> None:
        self._inner.close()


class AsyncDeadlineTransport(httpx2.AsyncBaseTransport):
    """Async form of ``DeadlineTransport``."""

    def __init__(self, inner: httpx2.AsyncBaseTransport, total: float) -> None:
        self._inner, self._total = inner, total

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        deadline = time.monotonic() + self._total
        response = await self._inner.handle_async_request(request)
        assert isinstance(response.stream, httpx2.AsyncByteStream)
        response.stream = _AsyncDeadlineStream(response.stream, request, self._total, deadline)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()
