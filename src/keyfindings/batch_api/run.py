"""``keyfindings batch --via openai-batch``: a catalogue through the OpenAI Batch API.

Each paper's attempt loop is the online one (``Conversation``): the same request, the same
checks, the same re-asks, only answered in bulk. The run is a fixed point: feed every paper
the answers already downloaded; submit the requests nobody has answered yet; wait; repeat.
Everything it needs to resume is on disk (OUT, ``OUT.batch/``), so re-running the command
after a crash anywhere continues without submitting anything twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keyfindings import pricing
from keyfindings.backends.base import Completion, WrappedBackend
from keyfindings.backends.openai_compat import OpenAICompatBackend
from keyfindings.batch import BatchStats, Selection, error_line, errors_path, write_line
from keyfindings.batch_api.files import (
    AnswerIndex,
    Failure,
    Limits,
    custom_id,
    request_ids,
    request_line,
    write_atomic,
)
from keyfindings.batch_api.remote import Remote
from keyfindings.batch_api.state import JobState, Submission
from keyfindings.errors import (
    BackendError,
    BatchUnansweredError,
    ConfigError,
    RequestRejectedError,
)
from keyfindings.joblog import JsonlAppender, OutputLock
from keyfindings.schema import Result
from keyfindings.summarizer import Conversation, Summarizer


@dataclass(frozen=True)
class BatchApiOptions:
    """How a Batch API run behaves; the defaults suit OpenAI."""

    poll_interval_s: float = 60.0
    reask_online: bool = False  # re-asks go to the online API instead of another batch round
    concurrency: int = 8  # online re-asks in flight
    limits: Limits = field(default_factory=Limits)
    max_submissions: int = 3  # a request left unanswered this often fails its papers


class BatchPriced(WrappedBackend):
    """The same model at Batch API prices."""

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        """Estimate at the table's batch prices (``keyfindings.pricing``)."""
        return pricing.cost(self.model, prompt_tokens, completion_tokens, batch=True)


def state_dir(out: Path) -> Path:
    """``results.jsonl`` → ``results.batch/``: request files, answers, state."""
    return out.with_name(out.stem + ".batch")


def batch_backend(summarizer: Summarizer) -> OpenAICompatBackend:
    """The summarizer's backend, if the Batch API can serve it."""
    backend = summarizer.backend
    while isinstance(backend, WrappedBackend):
        backend = backend.inner
    if not isinstance(backend, OpenAICompatBackend):
        raise ConfigError(
            "--via openai-batch needs an OpenAI model (OPENAI_API_KEY, or --base-url and "
            f"--model of a server with the Batch API), not the {backend.name} backend"
        )
    return backend


def batch_priced(summarizer: Summarizer) -> Summarizer:
    """A copy of ``summarizer`` whose results and estimates carry Batch API prices."""
    if isinstance(summarizer.backend, BatchPriced):
        return summarizer
    priced = copy.copy(summarizer)
    priced.backend = BatchPriced(batch_backend(summarizer))
    return priced


async def run_batch_api(
    summarizer: Summarizer,
    inputs: list[Path],
    out: Path,
    *,
    options: BatchApiOptions | None = None,
    stale_only: bool = False,
    total: int | None = None,
    on_update: Callable[[BatchStats], None] | None = None,
) -> BatchStats:
    """Summarise every selected paper of ``inputs`` into ``out`` through the Batch API."""
    with OutputLock(out):
        job = _Job(summarizer, out, options or BatchApiOptions(), total, on_update)
        try:
            return await job.run(inputs, stale_only)
        finally:
            await job.close()


async def cancel_batch_api(summarizer: Summarizer, out: Path) -> list[Submission]:
    """Cancel every batch of ``out``'s run that is still running; returns them. Running the
    batch command again later resubmits what they left unanswered."""
    state = JobState.open(state_dir(out))
    remote = Remote(batch_backend(summarizer), state)
    cancelled = []
    try:
        for sub in state.submissions:
            await remote.adopt(sub)
            if sub.batch_id and sub.live and not sub.ended:
                await remote.cancel(sub)
                cancelled.append(sub)
    finally:
        await remote.close()
    return cancelled


class _Job:
    """One run as passes over the inputs. A pass rebuilds each paper's conversation, replays
    the answers already downloaded (from disk, by custom_id) and writes the requests still
    missing; then the live batches are awaited and the next pass goes further. Nothing per
    paper stays in memory between passes but its request ids, so a catalogue streams."""

    def __init__(
        self,
        summarizer: Summarizer,
        out: Path,
        options: BatchApiOptions,
        total: int | None,
        on_update: Callable[[BatchStats], None] | None,
    ) -> None:
        self.summarizer = batch_priced(summarizer)
        self.backend = batch_backend(summarizer)
        self.out, self.options = out, options
        self.state = JobState.open(state_dir(out))
        self.remote = Remote(self.backend, self.state)
        self.stats = BatchStats(total=total)
        self.notify = on_update or (lambda _stats: None)
        self.results, self.errors = JsonlAppender(out), JsonlAppender(errors_path(out))
        self.answers = AnswerIndex()
        self.online = self.state.directory / "online.jsonl"
        self.live: dict[str, Submission] = {}  # custom_id → the live submission holding it
        self.tries: Counter[str] = Counter()  # custom_id → finished submissions that held it
        self.problems: dict[str, str] = {}  # custom_id → why its last batch left it unanswered
        self._inputs: list[Path] = []

    async def close(self) -> None:
        for appender in (self.results, self.errors):
            with contextlib.suppress(OSError):
                appender.close()
        self.answers.close()
        await self.remote.close()
        await self.backend.aclose()  # online re-asks' client belongs to this event loop
        self.notify(self.stats)

    async def run(self, inputs: list[Path], stale_only: bool) -> BatchStats:
        self._inputs = inputs
        selection = Selection(self.summarizer, self.out, stale_only, self.stats, self.errors)
        for sub in self.state.submissions:
            self._learn(sub)
        self.answers.add(self.online)
        first = True
        while True:
            wanted, reasks = self._pass(selection, first)
            first = False
            if reasks:
                await self._ask_online(reasks)
            elif wanted:
                await self._complete(wanted)
            else:
                return self.stats
            selection.again()

    # ---- one pass ----

    def _pass(
        self, selection: Selection, first: bool
    ) -> tuple[list[Submission], list[Conversation]]:
        """Advance every paper as far as the known answers go; the live submissions some
        paper waits for (new ones included) and, with ``reask_online``, the re-asks."""
        wanted: dict[str, Submission] = {}
        reasks: list[Conversation] = []
        writer = _RequestWriter(self.state, self.options.limits)
        for paper in selection.pick(self._inputs):
            if first:
                self.stats.queued += 1
                hit = None if self.summarizer.refresh else self.summarizer.cached(paper)
                if hit is not None:
                    self._write(hit)
                    selection.finished(paper.id)
                    continue
            conv = Conversation(self.summarizer, paper)
            request = self._advance(conv)
            if request is None:
                selection.finished(paper.id)
                continue
            cid, body = request
            if cid in self.live:
                wanted[self.live[cid].name] = self.live[cid]
            elif self.tries[cid] >= self.options.max_submissions:
                self._give_up(conv, cid)
                selection.finished(paper.id)
            elif self.options.reask_online and conv.answered:
                reasks.append(conv)
            else:
                writer.add(cid, body)
        for sub in writer.close():
            for cid in self._ids(sub):
                self.live[cid] = sub
            wanted[sub.name] = sub
        self.notify(self.stats)
        return list(wanted.values()), reasks

    def _advance(self, conv: Conversation) -> tuple[str, dict[str, Any]] | None:
        """Feed known answers; the request still unanswered, or None once the paper is done
        (written, or failed)."""
        while True:
            body = self.backend.request_body(
                conv.messages, self.summarizer.schema, self.summarizer.params
            )
            cid = custom_id(body)
            outcome = self.answers.get(cid)
            if outcome is None:
                return cid, body
            if isinstance(outcome, Failure):
                rejected = RequestRejectedError(outcome.message, status_code=outcome.status_code)
                self._fail(conv, rejected)
                return None
            try:
                result = conv.answer(self.backend.completion_from(outcome))
            except BackendError as exc:  # a 200 that is not a chat completion: asking again
                self._fail(conv, exc)  # sends the same request, so the paper fails here
                return None
            if result is not None:
                self._write(result)
                return None

    def _give_up(self, conv: Conversation, cid: str) -> None:
        reason = self.problems.get(cid, "no answer in the output file")
        message = f"no answer after {self.tries[cid]} batches ({reason})"
        self._fail(conv, BatchUnansweredError(message))

    async def _ask_online(self, convs: list[Conversation]) -> None:
        """Send re-asks as online requests; their answers are kept like downloaded ones."""
        gate = asyncio.Semaphore(self.options.concurrency)
        s = self.summarizer

        async def ask(conv: Conversation) -> None:
            async with gate:
                try:
                    completion = await s.retry.acall(
                        lambda: self.backend.acomplete(conv.messages, s.schema, s.params)
                    )
                except BackendError as exc:
                    self._fail(conv, exc)
                    return
            cid = custom_id(self.backend.request_body(conv.messages, s.schema, s.params))
            self.answers.record(self.online, cid, _as_body(completion, self.backend.model))

        await asyncio.gather(*map(ask, convs))

    def _write(self, result: Result) -> None:
        write_line(self.results, result.model_dump_json())
        self.stats.written += 1
        self.stats.flagged += result.status == "flagged"
        self.stats.add_usage(result)

    def _fail(self, conv: Conversation, error: BaseException) -> None:
        self.stats.failed += 1
        write_line(self.errors, error_line(conv.paper.id, error))

    # ---- submissions ----

    def _ids(self, sub: Submission) -> set[str]:
        return request_ids(self.state.file(sub, "requests"))

    def _learn(self, sub: Submission) -> None:
        """Index a submission: live, whose requests wait; or done, whose answers are known
        (transient failures stay unanswered and count as a try)."""
        if sub.live:
            for cid in self._ids(sub):
                self.live[cid] = sub
            return
        for cid in self._ids(sub):
            self.tries[cid] += 1
            if sub.problem:
                self.problems[cid] = sub.problem
            if self.live.get(cid) is sub:
                del self.live[cid]
        for kind in ("output", "errors"):
            self.answers.add(self.state.file(sub, kind))

    async def _complete(self, subs: list[Submission]) -> None:
        """Upload, create, wait for and download ``subs``."""
        for sub in subs:
            if sub.step in ("written", "uploading"):
                await self.remote.upload(sub)
            if sub.step in ("uploaded", "creating"):
                await self.remote.create(sub)
        while True:
            for sub in subs:
                if not sub.ended:
                    await self.remote.refresh(sub)
            self.stats.remote = _describe(subs)
            self.notify(self.stats)
            if all(sub.ended for sub in subs):
                break
            await asyncio.sleep(self.options.poll_interval_s)
        for sub in subs:
            await self.remote.download(sub)
            self._learn(sub)


class _RequestWriter:
    """Streams request lines into files within the limits, recording each file in the state
    once it is complete on disk (a kill mid-file leaves nothing recorded, and nothing sent)."""

    def __init__(self, state: JobState, limits: Limits) -> None:
        self.state, self.limits = state, limits
        self.written: list[Submission] = []
        self.seen: set[str] = set()  # papers with the same content share one request
        self.chunk: list[bytes] = []
        self.size = 0

    def add(self, cid: str, body: dict[str, Any]) -> None:
        if cid in self.seen:
            return
        self.seen.add(cid)
        line = request_line(cid, body)
        full = len(self.chunk) >= self.limits.max_requests
        if self.chunk and (full or self.size + len(line) > self.limits.max_bytes):
            self._flush()
        self.chunk.append(line)
        self.size += len(line)

    def _flush(self) -> None:
        sub = Submission(self.state.next_name(), len(self.chunk), self.size)
        write_atomic(self.state.file(sub, "requests"), self.chunk)
        self.state.submissions.append(sub)
        self.state.save()
        self.written.append(sub)
        self.chunk, self.size = [], 0

    def close(self) -> list[Submission]:
        if self.chunk:
            self._flush()
        return self.written


def _as_body(completion: Completion, model: str) -> dict[str, Any]:
    """An online answer in the shape of a Batch API response body, to be kept with them."""
    return {
        "id": completion.request_id or "online",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [
            {
                "index": 0,
                "finish_reason": completion.finish_reason or "stop",
                "message": {"role": "assistant", "content": completion.text},
            }
        ],
        "usage": {
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
            "total_tokens": completion.prompt_tokens + completion.completion_tokens,
        },
    }


def _describe(subs: list[Submission]) -> str:
    """The provider's progress in a few words: states, requests done, time left."""
    states: dict[str, int] = {}
    for sub in subs:
        states[sub.status or "?"] = states.get(sub.status or "?", 0) + 1
    done = sum(s.completed + s.failed for s in subs)
    total = sum(s.requests for s in subs)
    text = "batch " + ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
    text += f" · {done:,}/{total:,} requests"
    started = [s.in_progress_at for s in subs if s.in_progress_at]
    if started and 0 < done < total:
        elapsed = time.time() - min(started)
        left = int((total - done) * elapsed / done)
        text += f" · ETA {left // 3600}:{left % 3600 // 60:02d}:{left % 60:02d}"
    return text
