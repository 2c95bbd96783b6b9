"""How a batch run shows itself: a live progress bar, or a log line every few seconds.

The bar reads ``BatchStats`` (done / cached / flagged / failed, rate, ETA, tokens, cost); the run
itself never prints, so the same runner serves the CLI, a notebook or a service.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Column, Table
from rich.text import Text

from keyfindings.batch import BatchStats


def describe(stats: BatchStats) -> str:
    """One line: counts, rate, tokens, cost."""
    elapsed = max(time.monotonic() - stats.started, 1e-9)
    rate = (stats.written + stats.failed) / elapsed
    tokens = stats.prompt_tokens + stats.completion_tokens
    cost = f" · ${stats.cost_usd:.4f}" if stats.cost_usd is not None else ""
    remote = f" · {stats.remote}" if stats.remote else ""
    return (
        f"new {stats.written - stats.cached} · cached {stats.cached} · flagged "
        f"{stats.flagged} · failed {stats.failed} · skipped {stats.skipped} · "
        f"{rate:.2f}/s · {tokens / 1000:.1f}k tok{cost}{remote}"
    )


def eta_seconds(stats: BatchStats) -> float | None:
    """Time left at the run's overall pace (papers done / time so far). Rich's own estimate
    follows the last seconds' speed, which cache hits and skips at the start make ~40% hopeful."""
    if not stats.total:
        return None
    worked = stats.written + stats.failed
    elapsed = time.monotonic() - stats.started
    if worked == 0 or elapsed <= 0:
        return None
    left = max(0, stats.total - stats.finished)
    return left * elapsed / worked


class _EtaColumn(ProgressColumn):
    def __init__(self, progress: BatchProgress) -> None:
        super().__init__(table_column=Column(no_wrap=True, min_width=12))
        self._progress = progress

    def render(self, task: Task) -> Text:
        stats = self._progress.last
        seconds = eta_seconds(stats) if stats is not None else None
        if seconds is None:
            return Text("ETA -:--:--")
        minutes, secs = divmod(int(seconds), 60)
        return Text(f"ETA {minutes // 60}:{minutes % 60:02d}:{secs:02d}")


class BatchProgress:
    """Context manager: ``update(stats)`` as the run goes, a summary table at the end."""

    def __init__(
        self,
        total: int | None,
        *,
        quiet: bool = False,
        every_s: float = 10.0,
        console: Console | None = None,
    ) -> None:
        self.console = console or Console(stderr=True)
        self.quiet = quiet or not self.console.is_terminal
        self.every_s = every_s
        self._last = 0.0
        self.last: BatchStats | None = None
        # Count, bar and ETA always fit in 80 columns; the secondary stats get what is left.
        self._progress = Progress(
            BarColumn(bar_width=20),
            MofNCompleteColumn(table_column=Column(no_wrap=True)),
            TimeElapsedColumn(table_column=Column(no_wrap=True)),
            _EtaColumn(self),
            TextColumn(
                "{task.fields[info]}",
                table_column=Column(no_wrap=True, overflow="ellipsis", ratio=1, min_width=0),
            ),
            console=self.console,
            disable=self.quiet,
            expand=True,
        )
        self._task: TaskID = self._progress.add_task("batch", total=total, info="")

    def __enter__(self) -> BatchProgress:
        self._progress.__enter__()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._progress.__exit__(kind, error, trace)

    def update(self, stats: BatchStats) -> None:
        """Refresh the bar (or, when quiet, log at most every ``every_s`` seconds)."""
        self.last = stats
        self._progress.update(self._task, completed=stats.finished, info=describe(stats))
        now = time.monotonic()
        if self.quiet and now - self._last >= self.every_s:
            self._last = now
            done = f"{stats.finished}/{stats.total}" if stats.total else str(stats.finished)
            print(f"keyfindings batch: {done} · {describe(stats)}", file=sys.stderr, flush=True)

    def summary(self, stats: BatchStats, out: str) -> None:
        """The closing table."""
        table = Table(title=f"keyfindings batch → {out}", show_header=False)
        for key, value in stats.as_dict().items():
            if value not in (None, 0) or key in ("written", "failed"):
                table.add_row(key.replace("_", " "), str(value))
        self.console.print(table)
