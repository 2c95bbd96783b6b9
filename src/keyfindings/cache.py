"""Result cache: explicit string keys over ``diskcache``, values as JSON text (never pickle).

The cache directory is data, not code: ``JsonOnlyDisk`` never unpickles, so a row planted in
``cache.db`` reads as a miss. A corrupt database or a full disk raises ``StorageError`` naming
the directory and the fix, never ``sqlite3`` tracebacks.

The key is a tagged hash of canonical JSON of everything that changes the answer, so a new prompt
version, model, parameter or schema can never be served an old result. Entries are tagged with
their prompt version for bulk invalidation. diskcache is safe across threads and processes on one
directory, so workers share results.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import diskcache
import platformdirs
from filelock import FileLock

from keyfindings.errors import StorageError
from keyfindings.schema import Result
from keyfindings.store import MAX_REPORTS_PER_RESULT

KEY_PREFIX = "kf1:sha256:"
_RECENT = "recent:"
_INDEX = "index:"
_ANSWERS = "answers:"
_REPORTS = "reports:"
_SERVED = "meta:served"


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 as is: equal data gives equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def cache_key(parts: dict[str, Any]) -> str:
    """``kf1:sha256:<hex>``; the prefix names the key format, so a change is detectable."""
    return KEY_PREFIX + hashlib.sha256(canonical_json(parts).encode()).hexdigest()


def default_cache_dir() -> Path:
    """``KEYFINDINGS_CACHE_DIR``, else the user cache directory."""
    env = os.environ.get("KEYFINDINGS_CACHE_DIR")
    return Path(env) if env else Path(platformdirs.user_cache_dir("keyfindings"))


class JsonOnlyDisk(diskcache.Disk):  # type: ignore[misc]
    """A diskcache ``Disk`` that stores text, bytes and numbers, and never unpickles."""

    def put(self, key: Any) -> Any:
        if not isinstance(key, str):
            raise TypeError("cache keys are strings")
        return super().put(key)

    def get(self, key: Any, raw: bool) -> Any:
        return key if raw else None  # a pickled key was not written by keyfindings

    def store(self, value: Any, read: bool, key: Any = diskcache.core.UNKNOWN) -> Any:
        if not read and not isinstance(value, str | bytes | int | float):
            raise TypeError("cache values are JSON text")
        return super().store(value, read, key=key)

    def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
        if mode == diskcache.core.MODE_PICKLE:
            return None  # planted: reads as a miss
        return super().fetch(mode, filename, value, read)


def _results_dir(directory: str | Path | None) -> Path:
    return Path(directory) if directory else default_cache_dir() / "results"


class ResultCache:
    """Results by key. A corrupt or foreign entry reads as a miss, never as an answer."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self.directory = _results_dir(directory)
        with self._storage():
            self._cache = diskcache.Cache(
                str(self.directory),
                tag_index=True,
                eviction_policy="none",
                timeout=30,
                disk=JsonOnlyDisk,
            )

    @contextmanager
    def _storage(self) -> Iterator[None]:
        """sqlite and OS failures as one typed error that says what to do."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            text = str(exc)
            if "not a database" in text or "malformed" in text:
                raise StorageError(
                    f"the cache at {self.directory} is corrupt ({text}); "
                    "`keyfindings cache clear --force` rebuilds it empty"
                ) from None
            raise StorageError(f"the cache at {self.directory} failed: {text}") from None
        except OSError as exc:
            raise StorageError(
                f"the cache at {self.directory} failed: {exc.strerror or exc}"
            ) from None

    @classmethod
    def rebuild(cls, directory: str | Path | None = None) -> Path:
        """Delete the cache directory whatever state it is in; the next open starts empty."""
        path = _results_dir(directory)
        if path.exists():
            shutil.rmtree(path)
        return path

    def get(self, key: str) -> Result | None:
        """The cached result, marked ``cached=True``, or None."""
        with self._storage():
            return self._read(self._cache.get(key))

    @staticmethod
    def _read(text: object) -> Result | None:
        if not isinstance(text, str):
            return None
        try:
            result = Result.model_validate_json(text)
        except ValueError:
            return None
        return result.model_copy(update={"cached": True})

    def put(
        self, key: str, result: Result, *, scope: str | None = None, recent_ttl_s: float = 300.0
    ) -> None:
        """Store a result. Accepted ones are kept; flagged ones only for ``recent_ttl_s``
        (see ``get_recent``), so they are retried later but not by every concurrent caller.

        ``scope`` (the configuration without the paper) indexes the result by paper id.
        """
        stored = result.model_copy(update={"cached": False}).model_dump_json()
        tag = result.prompt.ref
        with self._storage():
            if result.status == "ok":
                self._cache.set(key, stored, tag=tag)
            else:
                self._cache.set(_RECENT + key, stored, expire=recent_ttl_s, tag=tag)
            if scope is not None:
                self._cache.set(f"{_INDEX}{scope}:{result.paper_id}", key, tag=tag)

    def put_answers(self, key: str, result: Result) -> None:
        """Keep a result with its raw answers under ``key`` (the configuration without the
        checks): flagged ones too, and with no expiry, so a new checks version can re-judge them
        instead of paying for them again."""
        with self._storage():
            self._cache.set(_ANSWERS + key, result.model_dump_json(), tag=result.prompt.ref)

    def get_answers(self, key: str) -> Result | None:
        """The latest result stored by ``put_answers`` for this key, if any."""
        with self._storage():
            return self._read(self._cache.get(_ANSWERS + key))

    def get_recent(self, key: str) -> Result | None:
        """A flagged result stored in the last few minutes for this key, if any."""
        with self._storage():
            return self._read(self._cache.get(_RECENT + key))

    def lookup(self, paper_id: str, scope: str) -> str | None:
        """The cache key of the latest result for this paper id under ``scope``."""
        with self._storage():
            key = self._cache.get(f"{_INDEX}{scope}:{paper_id}")
        return key if isinstance(key, str) else None

    def add_report(self, key: str, report: dict[str, Any], *, tag: str) -> bool:
        """Keep a reader's report on the result stored under ``key``; False once that result
        already has ``MAX_REPORTS_PER_RESULT`` (a flood adds nothing)."""
        with self._storage(), self._cache.transact():
            reports = json.loads(self._cache.get(_REPORTS + key) or "[]")
            if len(reports) >= MAX_REPORTS_PER_RESULT:
                return False
            reports.append(report)
            self._cache.set(_REPORTS + key, canonical_json(reports), tag=tag)
        return True

    def reports(self) -> list[dict[str, Any]]:
        """Every reader report, each with the key of the result it is about."""
        out: list[dict[str, Any]] = []
        with self._storage():
            for key in self._cache.iterkeys():
                if str(key).startswith(_REPORTS):
                    value = self._cache.get(key)
                    for report in json.loads(value) if isinstance(value, str) else []:
                        out.append({**report, "key": str(key)[len(_REPORTS) :]})
        return out

    def __contains__(self, key: str) -> bool:
        with self._storage():
            return key in self._cache

    def _counts(self, prompt: str | None = None) -> dict[str, dict[str, int]]:
        """Entries by kind (accepted results, flagged results still kept, stored answers), each
        by prompt version; expired entries are not counted."""
        kinds = {"results": KEY_PREFIX, "flagged": _RECENT + KEY_PREFIX, "answers": _ANSWERS}
        counts: dict[str, dict[str, int]] = {kind: {} for kind in kinds}
        for key in self._cache.iterkeys():
            kind = next((k for k, p in kinds.items() if str(key).startswith(p)), None)
            if kind is None:
                continue
            value, tag = self._cache.get(key, tag=True)
            if value is None or (prompt and tag != prompt):
                continue
            counts[kind][str(tag)] = counts[kind].get(str(tag), 0) + 1
        return counts

    def clear(self, prompt: str | None = None) -> dict[str, int]:
        """Remove every entry, or those of one prompt version (``name@vN``); returns how many
        of each kind were removed (results, flagged, answers)."""
        with self._storage():
            counts = self._counts(prompt)
            if prompt:
                self._cache.evict(prompt)
            else:
                self._cache.clear()
        return {kind: sum(by_prompt.values()) for kind, by_prompt in counts.items()}

    def stats(self) -> dict[str, Any]:
        """Results stored (accepted and flagged), by prompt version; size on disk; directory."""
        with self._storage():
            counts = self._counts()
            size = self._cache.volume()
        return {
            "directory": str(self.directory),
            "entries": sum(counts["results"].values()),
            "flagged": sum(counts["flagged"].values()),
            "stored_answers": sum(counts["answers"].values()),
            "size_bytes": size,
            "by_prompt": counts["results"],
            "flagged_by_prompt": counts["flagged"],
        }

    def served(self) -> list[dict[str, str]]:
        """The served configurations, newest first (see ``ResultStore.served``)."""
        with self._storage():
            value = self._cache.get(_SERVED)
        return list(json.loads(value)) if isinstance(value, str) else []

    def set_served(self, history: list[dict[str, str]]) -> None:
        """Replace the served configurations."""
        with self._storage():
            self._cache.set(_SERVED, canonical_json(history))

    @contextmanager
    def single_flight(self, key: str) -> Iterator[None]:
        """A file lock per key in the cache directory: processes on this machine take turns;
        the kernel releases the lock of one that dies."""
        locks = self.directory / "locks"
        locks.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha256(key.encode()).hexdigest()[:32] + ".lock"
        with FileLock(str(locks / name)):
            yield

    def close(self) -> None:
        """Release the SQLite connection."""
        self._cache.close()
