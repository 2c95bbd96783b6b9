"""Where results live: one small protocol, two engines.

``ResultCache`` (diskcache, a directory on one machine) is the embedded default. A
``postgresql://`` URL selects ``PostgresStore``, which several servers and batch processes
share. Everything that keeps results — the Summarizer, the button, batch runs and evals — talks
to this protocol only.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from keyfindings.schema import Result

STORE_ENV = "KEYFINDINGS_STORE"
# Reader reports kept per result: a flood adds nothing past this.
MAX_REPORTS_PER_RESULT = 100


@runtime_checkable
class ResultStore(Protocol):
    """Results by key, indexed by paper id under a configuration (``scope``)."""

    @property
    def directory(self) -> Path | str:
        """Where the results are (a directory, or the database URL without its password)."""

    def get(self, key: str) -> Result | None:
        """The accepted result under ``key`` (marked ``cached``), or None."""

    def get_recent(self, key: str) -> Result | None:
        """A flagged result stored in the last few minutes under ``key``, or None."""

    def put(
        self, key: str, result: Result, *, scope: str | None = None, recent_ttl_s: float = 300.0
    ) -> None:
        """Keep a result: accepted ones for good, flagged ones for ``recent_ttl_s``."""

    def put_answers(self, key: str, result: Result) -> None:
        """Keep a result with its raw answers, whatever its status (for re-judging)."""

    def get_answers(self, key: str) -> Result | None:
        """The result stored by ``put_answers`` under ``key``, or None."""

    def lookup(self, paper_id: str, scope: str) -> str | None:
        """The key of the latest result for a paper id under ``scope``."""

    def __contains__(self, key: str) -> bool: ...

    def add_report(self, key: str, report: dict[str, Any], *, tag: str) -> bool:
        """Keep a reader's report on the result under ``key``."""

    def reports(self) -> list[dict[str, Any]]:
        """Every reader report, each with its result's ``key``."""

    def stats(self) -> dict[str, Any]:
        """Counts of results, flagged results and stored answers, by prompt version."""

    def clear(self, prompt: str | None = None) -> dict[str, int]:
        """Remove everything, or one prompt version's entries; how many of each kind."""

    def single_flight(self, key: str) -> AbstractContextManager[None]:
        """Held by one caller at a time per key, across processes (and, for a shared store,
        machines); a holder that dies releases it (lock or lease)."""

    def served(self) -> list[dict[str, str]]:
        """The configurations the button serves, newest first (``prompt``, ``model``,
        ``scope``); the later ones still serve papers the first has not reached."""

    def set_served(self, history: list[dict[str, str]]) -> None:
        """Replace that list (``keyfindings store serve-config``)."""

    def close(self) -> None:
        """Release connections."""


def open_store(spec: str | Path | None = None) -> ResultStore:
    """A ``postgresql://`` URL → ``PostgresStore``; a directory or nothing → ``ResultCache``
    (``KEYFINDINGS_STORE`` is read when ``spec`` is None)."""
    spec = spec if spec is not None else os.environ.get(STORE_ENV) or None
    if isinstance(spec, str) and spec.startswith(("postgresql://", "postgres://")):
        from keyfindings.pg_store import PostgresStore

        return PostgresStore(spec)
    from keyfindings.cache import ResultCache

    return ResultCache(spec)
