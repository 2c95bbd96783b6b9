"""Batch regeneration: stream papers, summarise them concurrently, append results safely.

Papers stream from the inputs through a bounded queue to twice ``concurrency`` workers (the
limiter keeps ``concurrency`` requests in flight; the other workers check answers meanwhile), so
memory stays flat however large the input (only the set of paper ids seen grows).
Results are appended to OUT and failures to OUT.errors.jsonl as they finish; a re-run skips what
OUT already holds, so an interrupted run resumes where it stopped and no paper is written twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from keyfindings.errors import (
    BackendConnectionError,
    BackendError,
    InputError,
    RetriesExhaustedError,
    StorageError,
)
from keyfindings.joblog import JsonlAppender, OutputLock, Produced, scan_results
from keyfindings.loaders import iter_papers
from keyfindings.paper import Paper
from keyfindings.ratelimit import PacedBackend, RateLimiter, estimate_tokens
from keyfindings.schema import Result
from keyfindings.summarizer import Summarizer

log = logging.getLogger("keyfindings")
# A run whose first papers all fail to connect stops instead of retrying a whole catalogue
# against a wrong URL.
STOP_AFTER_UNREACHABLE = 5
# Share of max_tokens a completion uses on average, for dry-run estimates (measured on the
# compact prompt with the embedded model: 150-300 of 400).
TYPICAL_COMPLETION_SHARE = 0.6


@dataclass
class BatchStats:
    """Counts of a batch run, updated as it goes (progress displays read them)."""

    total: int | None = None
    queued: int = 0
    written: int = 0
    cached: int = 0
    flagged: int = 0
    failed: int = 0
    skipped: int = 0
    duplicates: int = 0
    invalid: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    rate_limited: int = 0
    remote: str = ""  # Batch API runs: what the provider's batches are doing
    started: float = field(default_factory=time.monotonic)

    @property
    def finished(self) -> int:
        """Papers dealt with in this run, one way or another."""
        return self.written + self.failed + self.skipped + self.duplicates + self.invalid

    def add_usage(self, result: Result) -> None:
        """Count a fresh result's tokens and cost (a cached one cost nothing now)."""
        if result.cached:
            self.cached += 1
            return
        self.prompt_tokens += result.usage.prompt_tokens
        self.completion_tokens += result.usage.completion_tokens
        if result.usage.cost_usd is not None:
            self.cost_usd = (self.cost_usd or 0.0) + result.usage.cost_usd

    def as_dict(self) -> dict[str, object]:
        """Plain numbers for reports (elapsed seconds instead of the start time)."""
        data = asdict(self)
        data["elapsed_s"] = round(time.monotonic() - data.pop("started"), 2)
        return data


def errors_path(out: Path) -> Path:
    """``results.jsonl`` → ``results.errors.jsonl``."""
    return out.with_name(out.stem + ".errors.jsonl")


def error_line(paper_id: str | None, error: BaseException, where: str | None = None) -> str:
    if isinstance(error, BackendError):  # the full text (server URL, its words) only in the log
        log.info("%s: %s", paper_id, error)
    record: dict[str, object] = {
        "paper_id": paper_id,
        "error": type(error).__name__,
        "message": error.brief() if isinstance(error, BackendError) else str(error),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if where:
        record["where"] = where
    if isinstance(error, BackendError) and error.request_id:
        record["request_id"] = error.request_id
    if isinstance(error, RetriesExhaustedError):
        record["attempts"] = error.attempts
        record["last_error"] = type(error.last).__name__
    return json.dumps(record, ensure_ascii=False)


def _previous(summarizer: Summarizer, out: Path, stale_only: bool) -> dict[str, Produced]:
    """What produced each paper's latest result. Resuming skips what OUT holds; with
    ``--stale-only`` and a shared store, the store answers by SQL for every server's results."""
    from keyfindings.pg_store import PostgresStore

    if stale_only and isinstance(summarizer.cache, PostgresStore):
        return {
            paper_id: Produced(*produced)
            for paper_id, produced in summarizer.cache.producers().items()
        }
    return scan_results(out)


def current_producer(summarizer: Summarizer) -> Produced:
    """What this run would record as having produced a result."""
    ref = summarizer.prompt.ref
    return Produced(ref.ref, ref.sha256, summarizer.backend.model, summarizer.backend.name)


class Selection:
    """Decides, paper by paper, what this run has to do; counts what it skips."""

    def __init__(
        self,
        summarizer: Summarizer,
        out: Path,
        stale_only: bool,
        stats: BatchStats,
        errors: JsonlAppender | None,
    ) -> None:
        self.previous = _previous(summarizer, out, stale_only)
        self.current = current_producer(summarizer)
        self.stale_only, self.stats, self.errors = stale_only, stats, errors
        self.seen: set[str] = set()

    def pick(self, inputs: Iterable[Path]) -> Iterator[Paper]:
        for path in inputs:
            for item in iter_papers(path):
                if isinstance(item, InputError):
                    self.stats.invalid += 1
                    if self.errors is not None:
                        self.errors.write(error_line(None, item, where=str(path)))
                    continue
                if item.id in self.seen:
                    self.stats.duplicates += 1
                    continue
                self.seen.add(item.id)
                before = self.previous.get(item.id)
                wanted = (
                    before is not None and before != self.current
                    if self.stale_only
                    else before is None
                )
                if not wanted:
                    self.stats.skipped += 1
                    continue
                yield item

    def finished(self, paper_id: str) -> None:
        """This run has dealt with the paper: a further pass skips it."""
        self.previous[paper_id] = self.current

    def again(self) -> None:
        """Prepare another pass over the same inputs, counted and reported only once."""
        self.seen.clear()
        self.stats, self.errors = BatchStats(), None


async def run_batch(
    summarizer: Summarizer,
    inputs: list[Path],
    out: Path,
    *,
    concurrency: int = 8,
    rpm: float | None = None,
    tpm: float | None = None,
    stale_only: bool = False,
    total: int | None = None,
    on_update: Callable[[BatchStats], None] | None = None,
) -> BatchStats:
    """Summarise every selected paper of ``inputs`` into ``out``; returns the counts.

    Cancelling the task (Ctrl-C) stops the workers; everything finished is already on disk. A
    cache or output that cannot be written (disk full, corrupt) stops the run with
    ``StorageError``; another batch writing ``out`` makes this one refuse to start.
    """
    with OutputLock(out):
        return await _run_locked(
            summarizer, inputs, out, concurrency, rpm, tpm, stale_only, total, on_update
        )


def _cannot_connect(error: BaseException) -> bool:
    if isinstance(error, RetriesExhaustedError):
        error = error.last
    return isinstance(error, BackendConnectionError)


def write_line(appender: JsonlAppender, line: str) -> None:
    try:
        appender.write(line)
    except OSError as exc:
        raise StorageError(
            f"cannot write to {appender.path}: {exc.strerror or exc}; the results written so far "
            "are kept: make room and run the same command again to resume"
        ) from None


async def _run_locked(
    summarizer: Summarizer,
    inputs: list[Path],
    out: Path,
    concurrency: int,
    rpm: float | None,
    tpm: float | None,
    stale_only: bool,
    total: int | None,
    on_update: Callable[[BatchStats], None] | None,
) -> BatchStats:
    stats = BatchStats(total=total)
    limiter = RateLimiter(rpm=rpm, tpm=tpm, concurrency=concurrency)
    paced = copy.copy(summarizer)
    paced.backend = PacedBackend(summarizer.backend, limiter)
    results, errors = JsonlAppender(out), JsonlAppender(errors_path(out))
    selection = Selection(summarizer, out, stale_only, stats, errors)
    # Twice as many papers in progress as requests in flight: while some answers are checked,
    # the next papers' requests are already out (the limiter holds the in-flight count).
    workers = 2 * concurrency
    queue: asyncio.Queue[Paper | None] = asyncio.Queue(maxsize=2 * workers)
    notify = on_update or (lambda _stats: None)

    async def produce() -> None:
        for paper in selection.pick(inputs):
            stats.queued += 1
            await queue.put(paper)
        for _ in range(workers):
            await queue.put(None)

    unreachable = 0

    async def work() -> None:
        nonlocal unreachable
        while (paper := await queue.get()) is not None:
            try:
                result = await paced.asummarize(paper)
            except StorageError:
                raise  # the cache is unusable: every further paper would fail the same way
            except Exception as exc:  # one paper's failure, typed or not, must not stop the rest
                stats.failed += 1
                write_line(errors, error_line(paper.id, exc))
                if _cannot_connect(exc) and stats.written == 0:
                    unreachable += 1
                    if unreachable >= STOP_AFTER_UNREACHABLE:
                        raise BackendConnectionError(
                            f"stopped: the first {unreachable} papers could not reach the model "
                            "server; check --base-url and that the server is running"
                        ) from None
            else:
                write_line(results, result.model_dump_json())
                stats.written += 1
                stats.flagged += result.status == "flagged"
                stats.add_usage(result)
            stats.rate_limited = limiter.rate_limited
            notify(stats)

    tasks = [asyncio.ensure_future(produce())]
    tasks += [asyncio.ensure_future(work()) for _ in range(workers)]
    try:
        await asyncio.gather(*tasks)
    except (StorageError, BackendConnectionError) as exc:
        with contextlib.suppress(OSError, StorageError):
            write_line(errors, error_line(None, exc))
        raise
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(OSError):
            results.close()
        with contextlib.suppress(OSError):
            errors.close()
        notify(stats)
        await paced.aclose()
    return stats


@dataclass
class DryRun:
    """What a batch would do, without calling any model."""

    papers: int = 0
    to_generate: int = 0
    cache_hits: int = 0
    skipped: int = 0
    duplicates: int = 0
    invalid: int = 0
    prompt_tokens: int = 0
    completion_tokens_max: int = 0
    completion_tokens_typical: int = 0
    cost_usd_typical: float | None = None
    cost_usd_max: float | None = None

    def text(self) -> str:
        """For people: what would run, and what it would cost."""
        cost = (
            f"about ${self.cost_usd_typical:.2f}, at most ${self.cost_usd_max:.2f}"
            if self.cost_usd_typical is not None and self.cost_usd_max is not None
            else "unknown for this model (no price on record)"
        )
        return "\n".join(
            [
                f"papers:   {self.papers} ({self.to_generate} to generate, {self.cache_hits} "
                f"cached, {self.skipped} already in the output)",
                f"skipped:  {self.duplicates} duplicate ids, {self.invalid} invalid records",
                f"tokens:   ~{self.prompt_tokens:,} prompt, ~{self.completion_tokens_typical:,} "
                f"completion (at most {self.completion_tokens_max:,})",
                f"cost:     {cost}",
            ]
        )


def dry_run(
    summarizer: Summarizer, inputs: list[Path], out: Path, *, stale_only: bool = False
) -> DryRun:
    """Count papers, cache hits and estimated tokens and cost; no model is called."""
    stats = BatchStats()
    selection = Selection(summarizer, out, stale_only, stats, None)
    report = DryRun()
    for paper in selection.pick(inputs):
        if summarizer.cached(paper) is not None:
            report.cache_hits += 1
            continue
        report.to_generate += 1
        report.prompt_tokens += estimate_tokens(summarizer.prompt.render(paper))
    report.skipped, report.duplicates, report.invalid = (
        stats.skipped,
        stats.duplicates,
        stats.invalid,
    )
    report.papers = report.to_generate + report.cache_hits + report.skipped
    report.completion_tokens_max = report.to_generate * summarizer.params.max_tokens
    report.completion_tokens_typical = int(report.completion_tokens_max * TYPICAL_COMPLETION_SHARE)
    cost = summarizer.backend.cost
    report.cost_usd_typical = cost(report.prompt_tokens, report.completion_tokens_typical)
    report.cost_usd_max = cost(report.prompt_tokens, report.completion_tokens_max)
    return report
