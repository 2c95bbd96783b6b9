"""Who may make the service spend model time: API keys, and a rate per client.

Keys are held only as SHA-256 digests and compared in constant time against every digest, so
neither the key file's contents nor timing reveal a key; logs see only a short key id.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Protocol

from keyfindings.errors import ConfigError

API_KEYS_ENV = "KEYFINDINGS_API_KEYS"


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class ApiKeys:
    """The keys of callers that may generate (the site's backend, the operator's tools)."""

    def __init__(self, keys: list[str]) -> None:
        if any(len(k) < 16 for k in keys):
            raise ConfigError("API keys must be at least 16 characters")
        self._digests = [_digest(k) for k in keys]

    @classmethod
    def load(cls, path: str | Path | None = None) -> ApiKeys:
        """Keys from ``path`` (one per line, ``#`` comments) and ``KEYFINDINGS_API_KEYS``
        (comma-separated)."""
        keys = [k.strip() for k in os.environ.get(API_KEYS_ENV, "").split(",") if k.strip()]
        if path is not None:
            try:
                lines = Path(path).read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise ConfigError(f"cannot read API keys file {path}: {exc.strerror}") from None
            keys += [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
        return cls(keys)

    def __bool__(self) -> bool:
        return bool(self._digests)

    def verify(self, presented: str | None) -> str | None:
        """A short id of the matching key (for logs and rate limits), or None."""
        if not presented:
            return None
        wanted = _digest(presented)
        match = None
        for digest in self._digests:  # every digest, always: the time does not depend on which
            if hmac.compare_digest(digest, wanted):
                match = digest
        return "key-" + match.hex()[:8] if match is not None else None


class ClientLimits:
    """A token bucket per client: ``per_minute`` generations, bursts of ``burst``.

    In memory, per server process; the least recently seen clients are forgotten past
    ``max_clients`` so a flood of addresses cannot grow it without bound.
    """

    def __init__(self, per_minute: float, *, burst: int = 5, max_clients: int = 100_000) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(max(1, burst))
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, client: str) -> float | None:
        """Spend one token; None if allowed, else the seconds until one is available."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.pop(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            wait = None if tokens >= 1 else (1 - tokens) / self.rate if self.rate else 60.0
            self._buckets[client] = (tokens - 1 if wait is None else tokens, now)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        return wait


class TokenStore(Protocol):
    """A store that keeps token buckets (``PostgresStore``)."""

    def take_token(self, client: str, per_minute: float, burst: float) -> float | None: ...


class Limiter(Protocol):
    """What the app asks before it spends model time for a client."""

    def take(self, client: str) -> float | None: ...


class SharedLimits:
    """``ClientLimits`` kept in the shared store, so every server behind the load balancer
    counts against the same budget per client."""

    def __init__(self, store: TokenStore, per_minute: float, *, burst: int = 5) -> None:
        self.store = store
        self.per_minute = per_minute
        self.burst = float(max(1, burst))

    def take(self, client: str) -> float | None:
        """Spend one token; None if allowed, else the seconds until one is available."""
        return self.store.take_token(client, self.per_minute, self.burst)
