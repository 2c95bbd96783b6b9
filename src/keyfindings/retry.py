"""The one owner of retries (the SDK's own are off): transient faults, backoff, Retry-After.

Every attempt goes through here, so every attempt is counted and logged once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from keyfindings.errors import RetriesExhaustedError, TransientBackendError

log = logging.getLogger("keyfindings")
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: ``attempts`` in all, exponential backoff with jitter between them.

    ``RetryPolicy(attempts=1)`` disables retries; a server's Retry-After wins over the backoff but
    is capped at ``max_retry_after`` so one bad header cannot stall a batch for an hour.
    """

    attempts: int = 4
    initial_wait: float = 0.5
    max_wait: float = 20.0
    max_retry_after: float = 60.0
    # How waiting is done; tests pass recorders to see the waits without spending them.
    sleep: Callable[[float], None] = time.sleep
    asleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    def _wait(self, state: RetryCallState) -> float:
        backoff = wait_exponential_jitter(
            multiplier=self.initial_wait, max=self.max_wait, jitter=self.initial_wait
        )(state)
        error = state.outcome.exception() if state.outcome else None
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            return min(float(retry_after), self.max_retry_after)
        return backoff

    def _log(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning(
            "attempt %d failed (%s: %s); retrying",
            state.attempt_number,
            type(error).__name__,
            error,
        )

    def _kwargs(self) -> dict[str, object]:
        return {
            "stop": stop_after_attempt(self.attempts),
            "wait": self._wait,
            "retry": retry_if_exception_type(TransientBackendError),
            "before_sleep": self._log,
        }

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` until it succeeds, a non-transient error escapes, or attempts run out."""
        try:
            for attempt in Retrying(sleep=self.sleep, **self._kwargs()):  # type: ignore[arg-type]
                with attempt:
                    return fn()
        except RetryError as exc:
            raise self._exhausted(exc) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def acall(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Async form of ``call``."""
        try:
            retrying = AsyncRetrying(sleep=self.asleep, **self._kwargs())  # type: ignore[arg-type]
            async for attempt in retrying:
                with attempt:
                    return await fn()
        except RetryError as exc:
            raise self._exhausted(exc) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _exhausted(self, exc: RetryError) -> RetriesExhaustedError:
        last = exc.last_attempt.exception()
        assert isinstance(last, TransientBackendError)
        return RetriesExhaustedError(
            f"gave up after {self.attempts} attempts; last error: {type(last).__name__}: {last}",
            attempts=self.attempts,
            last=last,
        )
