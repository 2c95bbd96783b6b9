"""The provider's side of a Batch API run: upload, create, poll, download, cancel.

Every call that creates something first looks for what an earlier, interrupted attempt may
already have created (a file by its unique name, a batch by its input file), so neither a
crash nor a timed-out request that in fact succeeded ever submits a batch twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import openai

from keyfindings.backends.openai_compat import OpenAICompatBackend
from keyfindings.batch_api.files import ENDPOINT, write_atomic
from keyfindings.batch_api.state import JobState, Submission
from keyfindings.retry import RetryPolicy

T = TypeVar("T")
# How far before the announced time to look for what an attempt created (clock skew).
_SKEW_S = 600


class Remote:
    """File and batch calls for one run's state; errors are keyfindings' ``BackendError``s."""

    def __init__(
        self, backend: OpenAICompatBackend, state: JobState, retry: RetryPolicy | None = None
    ) -> None:
        self.backend = backend
        self.state = state
        self.retry = retry or RetryPolicy(attempts=6, max_wait=60.0)
        self.client = backend.batch_client()

    async def close(self) -> None:
        await self.client.close()

    async def _call(self, fn: Callable[[], Awaitable[T]]) -> T:
        async def once() -> T:
            try:
                return await fn()
            except openai.OpenAIError as exc:
                raise self.backend.error_for(exc) from None

        return await self.retry.acall(once)

    async def _make_once(
        self,
        resumed: bool,
        find: Callable[[], Awaitable[T | None]],
        make: Callable[[], Awaitable[T]],
    ) -> T:
        """``make``, retried; a resumed step, and every retry, first ``find``s what an earlier
        attempt may have made all the same (a timeout is no proof that nothing happened)."""
        search = resumed

        async def attempt() -> T:
            nonlocal search
            if search and (found := await find()) is not None:
                return found
            search = True
            return await make()

        return await self._call(attempt)

    async def upload(self, sub: Submission) -> None:
        """Upload the request file, or adopt the copy an interrupted attempt left."""
        name = self.state.remote_name(sub)
        path = self.state.file(sub, "requests")

        async def make() -> str:
            with open(path, "rb") as handle:
                created = await self.client.files.create(file=(name, handle), purpose="batch")
            return created.id

        resumed = self.state.announce(sub, "uploading")
        sub.file_id = await self._make_once(
            resumed, lambda: self._find_file(name, sub.announced_at), make
        )
        sub.step = "uploaded"
        self.state.save()

    async def _find_file(self, name: str, since: float) -> str | None:
        listing = self.client.files.list(purpose="batch", order="desc")
        found = await _newest(listing, lambda item: item.filename == name, since)
        return found.id if found is not None else None

    async def create(self, sub: Submission) -> None:
        """Create the batch, or adopt the one an interrupted attempt created."""
        assert sub.file_id is not None
        file_id = sub.file_id

        async def make() -> Any:
            return await self.client.batches.create(
                input_file_id=file_id,
                endpoint=ENDPOINT,
                completion_window="24h",
                metadata={"keyfindings_run": self.state.run_id, "submission": sub.name},
            )

        resumed = self.state.announce(sub, "creating")
        batch = await self._make_once(
            resumed, lambda: self._find_batch(file_id, sub.announced_at), make
        )
        self._note(sub, batch)
        sub.step = "submitted"
        self.state.save()

    async def _find_batch(self, file_id: str, since: float) -> Any | None:
        listing = self.client.batches.list(limit=100)
        return await _newest(listing, lambda batch: batch.input_file_id == file_id, since)

    async def refresh(self, sub: Submission) -> None:
        """The batch's status and counts as the provider sees them now."""
        assert sub.batch_id is not None
        batch_id = sub.batch_id
        before = (sub.status, sub.completed, sub.failed)
        self._note(sub, await self._call(lambda: self.client.batches.retrieve(batch_id)))
        if (sub.status, sub.completed, sub.failed) != before:
            self.state.save()

    def _note(self, sub: Submission, batch: Any) -> None:
        sub.batch_id, sub.status = batch.id, batch.status
        counts = batch.request_counts
        if counts is not None:
            sub.completed, sub.failed = counts.completed, counts.failed
        if batch.in_progress_at:
            sub.in_progress_at = float(batch.in_progress_at)
        sub.output_file_id, sub.error_file_id = batch.output_file_id, batch.error_file_id
        if batch.status in ("failed", "expired", "cancelled"):
            reasons = [e.message for e in (batch.errors.data or [])] if batch.errors else []
            sub.problem = "; ".join([f"batch {batch.status}", *filter(None, reasons)])[:300]

    async def download(self, sub: Submission) -> None:
        """Save the output and error files locally, then mark the submission done."""
        for file_id, kind in ((sub.output_file_id, "output"), (sub.error_file_id, "errors")):
            if file_id:
                write_atomic(self.state.file(sub, kind), [await self._content(file_id)])
        sub.step = "done"
        self.state.save()

    async def _content(self, file_id: str) -> bytes:
        response = await self._call(lambda: self.client.files.content(file_id))
        return response.content

    async def adopt(self, sub: Submission) -> None:
        """Find the batch of a submission whose create was interrupted, if it exists."""
        if sub.step == "creating" and sub.file_id is not None:
            file_id = sub.file_id
            found = await self._call(lambda: self._find_batch(file_id, sub.announced_at))
            if found is not None:
                self._note(sub, found)
                sub.step = "submitted"
                self.state.save()

    async def cancel(self, sub: Submission) -> None:
        """Ask the provider to stop the batch (it ends as ``cancelled``, keeping what it did)."""
        assert sub.batch_id is not None
        batch_id = sub.batch_id
        self._note(sub, await self._call(lambda: self.client.batches.cancel(batch_id)))
        self.state.save()


async def _newest(listing: Any, match: Callable[[Any], bool], since: float) -> Any | None:
    """The first item ``match`` accepts in a newest-first listing, looking back no further
    than shortly before ``since`` (a provider keeps a long history)."""
    async for item in listing:
        if match(item):
            return item
        if item.created_at < since - _SKEW_S:
            break
    return None
