"""The button's path: instant on a cache hit, one model call per paper however many click.

Concurrent requests for one paper share a single generation:
- in one process (threads or asyncio tasks) through one ``Future`` per cache key;
- across processes sharing a store through the store's ``single_flight`` (a file lock per key
  for a cache directory; a claim row with a lease for PostgreSQL, across machines): the holder
  generates, the others wait for it and then read the store.
Generation runs in a background thread, so a caller whose time budget runs out gets ``Pending``
and the result still lands in the cache for the next request. At most ``max_pending``
generations wait or run at once; past that, callers get ``BusyError`` instead of a longer queue.

A paper id means one paper: a paper whose id the catalogue or an earlier result already gives
to different content is refused with ``ConflictError``, never stored over the other.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from keyfindings.errors import (
    BackendError,
    BusyError,
    ConfigError,
    ConflictError,
    KeyFindingsError,
)
from keyfindings.paper import Paper
from keyfindings.schema import SECTIONS, Result
from keyfindings.service.catalogue import Catalogue
from keyfindings.summarizer import Summarizer

log = logging.getLogger("keyfindings")


@dataclass(frozen=True)
class Pending:
    """The answer is being generated; ask again in ``retry_after_s`` seconds."""

    paper_id: str
    retry_after_s: float = 2.0
    status: str = "pending"


@dataclass(frozen=True)
class Failed:
    """The last generation for this paper failed moments ago; ``message`` is for readers (the
    details are in the server log). Asking again after ``retry_after_s`` tries again."""

    paper_id: str
    message: str
    retry_after_s: float
    status: str = "failed"


# How long a failure is reported for a paper before a request may try it again.
FAILED_TTL_S = 60.0
# How often a server re-reads which configuration the store says to serve.
SERVED_REFRESH_S = 10.0


class FindingsService:
    """``get_findings`` over one Summarizer; safe to share between threads and tasks."""

    def __init__(
        self,
        summarizer: Summarizer,
        *,
        workers: int = 4,
        max_pending: int = 32,
        catalogue: Catalogue | None = None,
        failure_ttl_s: float = FAILED_TTL_S,
        fallback_scopes: Sequence[str] = (),
        follow_served: bool = False,
        served_refresh_s: float = SERVED_REFRESH_S,
    ) -> None:
        if summarizer.cache is None:
            raise ConfigError("the button needs a cache: build the Summarizer with use_cache=True")
        self.summarizer = summarizer
        self.cache = summarizer.cache
        self.catalogue = catalogue or Catalogue()
        self.max_pending = max_pending
        self.busy_retry_after_s = 10.0
        self.failure_ttl_s = failure_ttl_s
        # Earlier served configurations: their results stand until this one reaches the paper.
        self.fallback_scopes = [s for s in fallback_scopes if s != summarizer.scope()]
        self.follow_served, self.served_refresh_s = follow_served, served_refresh_s
        self._served_at = -served_refresh_s
        self._unservable: set[str] = set()  # served scopes this server cannot generate for
        self._inflight: dict[str, Future[Result]] = {}
        self._inflight_ids: dict[str, str] = {}
        self._failures: dict[str, tuple[float, str]] = {}
        self._guard = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="keyfindings")

    def _follow(self) -> Summarizer:
        """The summarizer to use now. With ``follow_served``, the store's served configuration
        (``keyfindings store serve-config``) is re-read every ``served_refresh_s``: a switch
        reaches every server without a restart, and lookups fall back along its history."""
        if not self.follow_served or time.monotonic() - self._served_at < self.served_refresh_s:
            return self.summarizer
        self._served_at = time.monotonic()
        try:
            served = self.cache.served()
        except KeyFindingsError as exc:
            log.warning("cannot read the served configuration: %s", exc)
            return self.summarizer
        if served and served[0]["scope"] != self.summarizer.scope():
            switched = self._summarizer_for(served[0])
            if switched is not None:
                log.info("now serving %s · %s", served[0]["prompt"], served[0]["model"])
                self.summarizer = switched
        current = self.summarizer.scope()
        self.fallback_scopes = [c["scope"] for c in served if c["scope"] != current]
        return self.summarizer

    def _summarizer_for(self, config: Mapping[str, str]) -> Summarizer | None:
        """This server's model under the served prompt, if that is the served configuration
        (same model, parameters and checks); else None, and the server keeps its own."""
        if config["scope"] in self._unservable:
            return None
        current = self.summarizer
        candidate = None
        if config["model"] == current.backend.model:
            try:
                candidate = Summarizer(
                    current.backend,
                    prompt=config["prompt"],
                    cache=self.cache,
                    max_reasks=current.max_reasks,
                    retry=current.retry,
                    on_invalid=current.on_invalid,
                )
            except KeyFindingsError:
                candidate = None
        if candidate is None or candidate.scope() != config["scope"]:
            self._unservable.add(config["scope"])
            log.warning(
                "the store serves %s · %s, which this server cannot generate; it keeps %s · %s",
                config["prompt"],
                config["model"],
                current.prompt.ref.ref,
                current.backend.model,
            )
            return None
        return candidate

    def _lookup(self, key: str) -> Result | None:
        return self.cache.get(key) or self.cache.get_recent(key)

    def _generate(self, summarizer: Summarizer, paper: Paper, key: str) -> Result:
        try:
            with self.cache.single_flight(key):
                found = self._lookup(key)  # another process may have made it meanwhile
                if found is not None:
                    return found
                return summarizer.summarize(paper)
        except KeyFindingsError as exc:
            log.warning("generation for %s failed: %s", paper.id, exc)
            reader = (
                "the model is unavailable right now"
                if isinstance(exc, BackendError)
                else "key findings could not be generated for this paper"
            )
            now = time.monotonic()
            with self._guard:
                if len(self._failures) > 10_000:  # forget the stale ones before growing more
                    self._failures = {
                        k: v for k, v in self._failures.items() if now - v[0] < self.failure_ttl_s
                    }
                self._failures[paper.id] = (now, reader)
            raise
        finally:
            with self._guard:
                self._inflight.pop(key, None)
                self._inflight_ids.pop(paper.id, None)

    def submit(self, paper: Paper | Mapping[str, Any]) -> Future[Result]:
        """The shared future for this paper's result (a finished one on a cache hit)."""
        paper = paper if isinstance(paper, Paper) else Paper.from_dict(paper)
        summarizer = self._follow()
        key = summarizer.key_for(paper)
        hit = self._lookup(key)  # a flagged result kept briefly counts: never queue behind work
        if hit is not None:
            done: Future[Result] = Future()
            done.set_result(hit)
            return done
        self._check_identity(paper, key)
        with self._guard:
            future = self._inflight.get(key)
            if self._inflight_ids.get(paper.id, key) != key:
                raise ConflictError(f"paper id {paper.id!r} is being generated for other content")
            if future is None:
                if len(self._inflight) >= self.max_pending:
                    raise BusyError(
                        f"{len(self._inflight)} generations already queued",
                        retry_after=self.busy_retry_after_s,
                    )
                future = self._pool.submit(self._generate, summarizer, paper, key)
                self._inflight[key] = future
                self._inflight_ids[paper.id] = key
        return future

    def _check_identity(self, paper: Paper, key: str) -> None:
        known = self.catalogue.get(paper.id)
        if known is not None and self.summarizer.key_for(known) != key:
            raise ConflictError(f"paper id {paper.id!r} is in the catalogue with other content")
        served = self.cache.lookup(paper.id, self.summarizer.scope())
        if served is not None and served != key:
            raise ConflictError(f"paper id {paper.id!r} was already served for other content")

    def cached(self, paper: Paper) -> Result | None:
        """The stored result for this paper (accepted, or flagged moments ago): no queue, no
        rate limit."""
        return self._lookup(self._follow().key_for(paper))

    def get_findings(
        self, paper: Paper | Mapping[str, Any], *, budget_s: float = 30.0
    ) -> Result | Pending:
        """The result within ``budget_s`` seconds, else ``Pending`` (generation goes on)."""
        future = self.submit(paper)
        try:
            return future.result(timeout=budget_s)
        except FutureTimeout:
            paper_id = paper.id if isinstance(paper, Paper) else Paper.from_dict(paper).id
            return Pending(paper_id)

    async def aget_findings(
        self, paper: Paper | Mapping[str, Any], *, budget_s: float = 30.0
    ) -> Result | Pending:
        """Async form: awaits the shared future without blocking the event loop."""
        wrapped = asyncio.wrap_future(self.submit(paper))
        try:
            return await asyncio.wait_for(asyncio.shield(wrapped), budget_s)
        except TimeoutError:
            # Nobody awaits it any more: its outcome is read from the store (or the failure
            # record) by whoever polls, so a failure here is not "never retrieved".
            wrapped.add_done_callback(lambda done: done.cancelled() or done.exception())
            paper_id = paper.id if isinstance(paper, Paper) else Paper.from_dict(paper).id
            return Pending(paper_id)

    def by_id(self, paper_id: str) -> Result | Pending | Failed | None:
        """A stored result for a paper id (this prompt and model), ``Pending``, ``Failed`` (in
        the minute after a failure), or None."""
        with self._guard:
            if paper_id in self._inflight_ids:
                return Pending(paper_id)
            failure = self._failures.get(paper_id)
        found = None
        for scope in (self._follow().scope(), *self.fallback_scopes):
            key = self.cache.lookup(paper_id, scope)
            found = self._lookup(key) if key else None
            if found is not None:
                break
        if found is None and failure is not None:
            left = self.failure_ttl_s - (time.monotonic() - failure[0])
            if left > 0:
                return Failed(paper_id, failure[1], retry_after_s=round(left, 1))
        return found

    def report(self, paper_id: str, section: str, index: int, reason: str) -> bool:
        """Record a reader's "this finding is wrong" against the result shown for the paper
        (kept with that result's key, for the operator: ``keyfindings reports``). Returns False
        when there is no such finding."""
        key = self.cache.lookup(paper_id, self.summarizer.scope())
        result = self._lookup(key) if key else None
        if key is None or result is None or result.findings is None or section not in SECTIONS:
            return False
        findings = result.findings.section(section)
        if not 0 <= index < len(findings):
            return False
        record = {
            "paper_id": paper_id,
            "section": section,
            "index": index,
            "finding": findings[index].text,
            "reason": " ".join(reason.split())[:500],
            "prompt": result.prompt.ref,
            "model": result.model,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        self.cache.add_report(key, record, tag=result.prompt.ref)
        return True

    def close(self) -> None:
        """Stop accepting work, let running generations finish, release connections."""
        self._pool.shutdown(wait=True)
        self.summarizer.close()
