"""Client-side pacing for batch runs: requests/tokens per minute, and backing off on 429.

``PacedBackend`` wraps any backend so that *every* request — first tries, retries and re-asks —
passes the limiter, and a 429 slows all workers down, not just the one that received it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from keyfindings.backends.base import Backend, Completion, Messages, WrappedBackend
from keyfindings.errors import RateLimitedError
from keyfindings.prompts import GenerationParams


class RateLimiter:
    """Spaces requests to stay under ``rpm`` and ``tpm`` and adapts concurrency to 429s.

    Pacing is a virtual clock per budget (GCRA): each request books 60/rpm seconds (and
    tokens·60/tpm) and waits until its booking starts, with ``burst_s`` of slack so a short
    burst is allowed. A 429 pauses everyone (Retry-After up to ``max_pause_s``, else 1 s) and
    halves the number of requests allowed in flight; each 20 successes give one slot back.
    """

    def __init__(
        self,
        *,
        rpm: float | None = None,
        tpm: float | None = None,
        concurrency: int = 8,
        burst_s: float = 1.0,
        max_pause_s: float = 60.0,
    ) -> None:
        self.rpm, self.tpm, self.burst_s, self.max_pause_s = rpm, tpm, burst_s, max_pause_s
        self.max_concurrency = max(1, concurrency)
        self.limit = self.max_concurrency
        self.in_flight = 0
        self.rate_limited = 0
        self._next_request = self._next_tokens = self._pause_until = 0.0
        self._successes = 0
        self._cond = asyncio.Condition()

    def _booking_delay(self, tokens: int) -> float:
        now = time.monotonic()
        delay = max(0.0, self._pause_until - now)
        if self.rpm:
            start = max(self._next_request, now - self.burst_s)
            self._next_request = start + 60.0 / self.rpm
            delay = max(delay, start - now)
        if self.tpm:
            start = max(self._next_tokens, now - self.burst_s)
            self._next_tokens = start + tokens * 60.0 / self.tpm
            delay = max(delay, start - now)
        return delay

    async def acquire(self, tokens: int) -> None:
        """Wait for a slot and for the pacing budget."""
        async with self._cond:
            await self._cond.wait_for(lambda: self.in_flight < self.limit)
            self.in_flight += 1
            delay = self._booking_delay(tokens)
        if delay > 0:
            await asyncio.sleep(delay)

    async def release(self, *, rate_limited: RateLimitedError | None = None) -> None:
        """Give the slot back; after a 429 pause everyone and shrink the window."""
        async with self._cond:
            self.in_flight -= 1
            if rate_limited is not None:
                self.rate_limited += 1
                said = rate_limited.retry_after
                # Capped like the retry policy's wait: one "Retry-After: 100000" must not stop
                # every worker for a day.
                pause = min(said, self.max_pause_s) if said is not None else 1.0
                self._pause_until = max(self._pause_until, time.monotonic() + pause)
                self.limit = max(1, self.limit // 2)
                self._successes = 0
            else:
                self._successes += 1
                if self._successes >= 20 and self.limit < self.max_concurrency:
                    self.limit += 1
                    self._successes = 0
            self._cond.notify_all()


def estimate_tokens(messages: Messages) -> int:
    """A rough prompt-token count (4 characters a token) for pacing and dry runs."""
    return sum(len(m["content"]) for m in messages) // 4 + 8 * len(messages)


HANDOFF_S = 0.002


class PacedBackend(WrappedBackend):
    """A backend whose async requests all pass one ``RateLimiter`` (batch runs use that path)."""

    def __init__(self, inner: Backend, limiter: RateLimiter) -> None:
        super().__init__(inner)
        self.limiter = limiter

    async def acomplete(
        self, messages: Messages, schema: dict[str, Any], params: GenerationParams
    ) -> Completion:
        """One request inside the limiter."""
        await self.limiter.acquire(estimate_tokens(messages) + params.max_tokens)
        try:
            completion = await self.inner.acomplete(messages, schema, params)
        except RateLimitedError as exc:
            await self.limiter.release(rate_limited=exc)
            raise
        except BaseException:
            await self.limiter.release()
            raise
        await self.limiter.release()
        # Let the papers waiting for slots send their requests before this answer is checked:
        # answers to concurrent requests arrive together, and checking them all before sending
        # anything adds their check time to the next requests' latency (measured: -4 to -8 %
        # throughput at 32 in flight). A timer runs only after the ready callbacks (the sends).
        await asyncio.sleep(HANDOFF_S)
        return completion
