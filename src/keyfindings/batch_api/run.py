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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keyfindings import pricing
from keyfindings.backends.base import WrappedBackend
from keyfindings.backends.openai_compat import OpenAICompatBackend
from keyfindings.batch import BatchStats, Selection, error_line, errors_path, write_line
from keyfindings.batch_api.files import (
    Failure,
    Limits,
    custom_id,
    read_results,
    request_ids,
    request_line,
    split,
    write_atomic,
)
from keyfindings.batch_api.remote import Remote
from keyfindings.batch_api.state import JobState, Submission
from keyfindings.errors import (
    BackendError,
    BatchUnansweredError,
    ConfigError,
    RequestRejectedError,
    StorageError,
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
        self.answers: dict[str, dict[str, Any] | Failure] = {}
        self.ids: dict[str, set[str]] = {}  # submission → the custom_ids it holds

    async def close(self) -> None:
        for appender in (self.results, self.errors):
            with contextlib.suppress(OSError):
                appender.close()
        await self.remote.close()
        await self.backend.aclose()  # online re-asks' client belongs to this event loop
        self.notify(self.stats)

    async def run(self, inputs: list[Path], stale_only: bool) -> BatchStats:
        waiting = self._select(inputs, stale_only)
        for sub in self.state.submissions:
            self._learn(sub)
        while waiting := self._feed(waiting):
            needed = dict(map(self._request, waiting))
            live = [s for s in self.state.submissions if s.live and self._ids(s) & needed.keys()]
            if live:
                await self._complete(live)
                continue
            waiting = self._give_up(waiting)
            reasks = [c for c in waiting if c.answered] if self.options.reask_online else []
            if reasks:
                waiting = [c for c in waiting if not c.answered] + await self._ask_online(reasks)
            elif waiting:
                self._submit({cid: needed[cid] for cid, _ in map(self._request, waiting)})
        return self.stats

    # ---- papers ----

    def _select(self, inputs: list[Path], stale_only: bool) -> list[Conversation]:
        selection = Selection(self.summarizer, self.out, stale_only, self.stats, self.errors)
        waiting = []
        for paper in selection.pick(inputs):
            self.stats.queued += 1
            hit = None if self.summarizer.refresh else self.summarizer.cached(paper)
            if hit is not None:
                self._write(hit)
            else:
                waiting.append(Conversation(self.summarizer, paper))
        self.notify(self.stats)
        return waiting

    def _request(self, conv: Conversation) -> tuple[str, dict[str, Any]]:
        body = self.backend.request_body(
            conv.messages, self.summarizer.schema, self.summarizer.params
        )
        return custom_id(body), body

    def _feed(self, waiting: list[Conversation]) -> list[Conversation]:
        """Answer every paper from what has been downloaded; the ones still waiting."""
        still = []
        for conv in waiting:
            while True:
                outcome = self.answers.get(self._request(conv)[0])
                if outcome is None:
                    still.append(conv)
                elif isinstance(outcome, Failure):
                    self._fail(
                        conv, RequestRejectedError(outcome.message, status_code=outcome.status_code)
                    )
                elif not self._answer(conv, outcome):
                    continue  # a re-ask: its answer may be known too
                break
        self.notify(self.stats)
        return still

    def _answer(self, conv: Conversation, body: dict[str, Any]) -> bool:
        """Feed one answer; True when the paper is done (written or failed)."""
        try:
            result = conv.answer(self.backend.completion_from(body))
        except StorageError:
            raise
        except BackendError as exc:  # a 200 that is not a chat completion: asking again is
            self._fail(conv, exc)  # the same request, so the paper fails; a re-run retries
            return True
        if result is not None:
            self._write(result)
        return result is not None

    def _give_up(self, waiting: list[Conversation]) -> list[Conversation]:
        """Fail the papers whose request went unanswered ``max_submissions`` times."""
        keep = []
        for conv in waiting:
            cid = self._request(conv)[0]
            tried = [s for s in self.state.submissions if cid in self._ids(s)]
            if len(tried) < self.options.max_submissions:
                keep.append(conv)
                continue
            reason = tried[-1].problem or "no answer in the output file"
            message = f"no answer after {len(tried)} batches ({reason})"
            self._fail(conv, BatchUnansweredError(message))
        return keep

    async def _ask_online(self, convs: list[Conversation]) -> list[Conversation]:
        """Send re-asks as online requests; the papers that want yet another re-ask."""
        gate = asyncio.Semaphore(self.options.concurrency)
        s = self.summarizer

        async def ask(conv: Conversation) -> Conversation | None:
            async with gate:
                try:
                    completion = await s.retry.acall(
                        lambda: self.backend.acomplete(conv.messages, s.schema, s.params)
                    )
                except BackendError as exc:
                    self._fail(conv, exc)
                    return None
            result = conv.answer(completion)
            if result is None:
                return conv
            self._write(result)
            return None

        return [c for c in await asyncio.gather(*map(ask, convs)) if c is not None]

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
        if sub.name not in self.ids:
            self.ids[sub.name] = request_ids(self.state.file(sub, "requests"))
        return self.ids[sub.name]

    def _learn(self, sub: Submission) -> None:
        """Take in a finished submission's answers; transient failures stay unanswered."""
        if sub.live:
            return
        for kind in ("output", "errors"):
            path = self.state.file(sub, kind)
            if path.exists():
                for cid, outcome in read_results(path):
                    if not isinstance(outcome, Failure) or outcome.permanent:
                        self.answers.setdefault(cid, outcome)

    def _submit(self, needed: dict[str, dict[str, Any]]) -> None:
        """Write request files within the limits and record them; nothing is sent yet."""
        lines = (request_line(cid, body) for cid, body in needed.items())
        for chunk in split(lines, self.options.limits):
            sub = Submission(self.state.next_name(), len(chunk), sum(map(len, chunk)))
            write_atomic(self.state.file(sub, "requests"), chunk)
            self.state.submissions.append(sub)
            self.state.save()

    async def _complete(self, live: list[Submission]) -> None:
        """Upload, create, wait for and download ``live`` submissions."""
        for sub in live:
            if sub.step in ("written", "uploading"):
                await self.remote.upload(sub)
            if sub.step in ("uploaded", "creating"):
                await self.remote.create(sub)
        while True:
            for sub in live:
                if not sub.ended:
                    await self.remote.refresh(sub)
            self.stats.remote = _describe(live)
            self.notify(self.stats)
            if all(sub.ended for sub in live):
                break
            await asyncio.sleep(self.options.poll_interval_s)
        for sub in live:
            await self.remote.download(sub)
            self._learn(sub)


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
