"""Running the app with uvicorn, hardened against slow clients.

uvicorn bounds the idle time between requests but not the time a client takes to send its
headers: a slowloris trickling one header byte every few seconds holds a socket for ever. The
protocol below closes a connection whose request headers are not complete within
``header_timeout_s``; the body has its own deadline in the app.
"""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_TIMEOUT_S = 10.0


class _GuardedH11Protocol(H11Protocol):
    header_timeout_s = HEADER_TIMEOUT_S
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _in_request(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    def _too_slow(self) -> None:
        if not self._in_request() and not self.transport.is_closing():
            self.transport.close()

    def handle_events(self) -> None:
        super().handle_events()
        if self._in_request():  # a whole request line and headers arrived
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()  # the next request's headers get the same time

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def server_config(
    app: Any, *, host: str, port: int, header_timeout_s: float = HEADER_TIMEOUT_S, **kwargs: Any
) -> uvicorn.Config:
    """A uvicorn config with the guarded HTTP protocol and bounded connections."""
    protocol = type(
        "GuardedH11Protocol", (_GuardedH11Protocol,), {"header_timeout_s": header_timeout_s}
    )
    kwargs.setdefault("log_level", "warning")
    kwargs.setdefault("limit_concurrency", 1000)
    return uvicorn.Config(app, host=host, port=port, http=protocol, **kwargs)
