"""The local record of a Batch API run, written before every remote step.

Each submission (one request file, one batch) moves through steps, and the step is saved
*before* the remote call it announces: a run killed anywhere finds, on restart, either the
finished step or an announced one it can reconcile with the provider (a file uploaded under
the submission's name, a batch made from the submission's file) instead of submitting twice.
Saves are atomic (write, fsync, rename), so a kill never leaves a half-written state.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from keyfindings.batch_api.files import write_atomic
from keyfindings.errors import StorageError

STATE_VERSION = 1
Step = Literal["written", "uploading", "uploaded", "creating", "submitted", "done"]
# Batch statuses after which nothing more will change on the provider's side.
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})


@dataclass
class Submission:
    """One request file and the batch made from it."""

    name: str
    requests: int
    bytes: int
    step: Step = "written"
    file_id: str | None = None
    batch_id: str | None = None
    status: str | None = None  # the provider's batch status, as last seen
    output_file_id: str | None = None
    error_file_id: str | None = None
    completed: int = 0
    failed: int = 0
    problem: str | None = None  # why requests came back unanswered (expired, failed: ...)
    announced_at: float = 0.0  # when the current remote step was announced (for reconciling)
    in_progress_at: float | None = None

    @property
    def ended(self) -> bool:
        """The provider will change nothing more about this batch."""
        return self.status in TERMINAL

    @property
    def live(self) -> bool:
        """Submitted or about to be, and its answers not yet downloaded."""
        return self.step != "done"


@dataclass
class JobState:
    """Every submission of one output file's Batch API run, in ``OUT.batch/state.json``."""

    directory: Path
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    submissions: list[Submission] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return self.directory / "state.json"

    @classmethod
    def open(cls, directory: Path) -> JobState:
        """The saved state in ``directory``, or a new one."""
        path = directory / "state.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(directory)
        except (OSError, ValueError) as exc:
            raise StorageError(f"cannot read {path}: {exc}") from None
        if data.get("version") != STATE_VERSION:
            raise StorageError(f"{path}: state version {data.get('version')} is not supported")
        return cls(
            directory,
            run_id=data["run_id"],
            submissions=[Submission(**s) for s in data["submissions"]],
        )

    def save(self) -> None:
        """Atomically replace the saved state."""
        data = {
            "version": STATE_VERSION,
            "run_id": self.run_id,
            "submissions": [asdict(s) for s in self.submissions],
        }
        write_atomic(self.path, [json.dumps(data, indent=1).encode()])

    def announce(self, submission: Submission, step: Step) -> bool:
        """Record that ``step`` is about to happen, before it does. True if it was announced
        already (an earlier run was interrupted there): its time stays the first attempt's,
        the earliest moment anything it made can date from."""
        if submission.step == step:
            return True
        submission.step = step
        submission.announced_at = time.time()
        self.save()
        return False

    def file(self, submission: Submission, kind: str) -> Path:
        """Where a submission's requests, output or errors live locally."""
        return self.directory / f"{submission.name}.{kind}.jsonl"

    def remote_name(self, submission: Submission) -> str:
        """The uploaded file's name: unique to this run and submission, so it can be found."""
        return f"keyfindings-{self.run_id}-{submission.name}.jsonl"

    def next_name(self) -> str:
        return f"s{len(self.submissions) + 1:04d}"
