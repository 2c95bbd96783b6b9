"""Result cache: explicit string keys over ``diskcache``, values as JSON text (never pickle).

The key is a tagged hash of canonical JSON of everything that changes the answer, so a new prompt
version, model, parameter or schema can never be served an old result. Entries are tagged with
their prompt version for bulk invalidation. diskcache is safe across threads and processes on one
directory, so workers share results.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import diskcache
import platformdirs

from keyfindings.errors import ConfigError
from keyfindings.schema import Result

KEY_PREFIX = "kf1:sha256:"
_RECENT = "recent:"
_INDEX = "index:"
_ANSWERS = "answers:"


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


class ResultCache:
    """Results by key. A corrupt or foreign entry reads as a miss, never as an answer."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self.directory = Path(directory) if directory else default_cache_dir() / "results"
        try:
            self._cache = diskcache.Cache(
                str(self.directory), tag_index=True, eviction_policy="none", timeout=30
            )
        except OSError as exc:
            raise ConfigError(f"cannot open cache directory {self.directory}: {exc}") from None

    def get(self, key: str) -> Result | None:
        """The cached result, marked ``cached=True``, or None."""
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
        if result.status == "ok":
            self._cache.set(key, stored, tag=result.prompt.ref)
        else:
            self._cache.set(_RECENT + key, stored, expire=recent_ttl_s, tag=result.prompt.ref)
        if scope is not None:
            self._cache.set(f"{_INDEX}{scope}:{result.paper_id}", key, tag=result.prompt.ref)

    def put_answers(self, key: str, result: Result) -> None:
        """Keep a result with its raw answers under ``key`` (the configuration without the
        checks): flagged ones too, and with no expiry, so a new checks version can re-judge them
        instead of paying for them again."""
        self._cache.set(_ANSWERS + key, result.model_dump_json(), tag=result.prompt.ref)

    def get_answers(self, key: str) -> Result | None:
        """The latest result stored by ``put_answers`` for this key, if any."""
        return self._read(self._cache.get(_ANSWERS + key))

    def get_recent(self, key: str) -> Result | None:
        """A flagged result stored in the last few minutes for this key, if any."""
        return self._read(self._cache.get(_RECENT + key))

    def lookup(self, paper_id: str, scope: str) -> str | None:
        """The cache key of the latest result for this paper id under ``scope``."""
        key = self._cache.get(f"{_INDEX}{scope}:{paper_id}")
        return key if isinstance(key, str) else None

    def __contains__(self, key: str) -> bool:
        return key in self._cache

    def _results_by_prompt(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for key in self._cache.iterkeys():
            if isinstance(key, str) and key.startswith(KEY_PREFIX):
                _, tag = self._cache.get(key, tag=True)
                counts[str(tag)] = counts.get(str(tag), 0) + 1
        return counts

    def clear(self, prompt: str | None = None) -> int:
        """Remove every entry, or those of one prompt version (``name@vN``); returns how many
        results were removed."""
        counts = self._results_by_prompt()
        if prompt:
            self._cache.evict(prompt)
            return counts.get(prompt, 0)
        self._cache.clear()
        return sum(counts.values())

    def stats(self) -> dict[str, Any]:
        """Results stored, by prompt version; size on disk; directory."""
        counts = self._results_by_prompt()
        return {
            "directory": str(self.directory),
            "entries": sum(counts.values()),
            "size_bytes": self._cache.volume(),
            "by_prompt": counts,
        }

    def close(self) -> None:
        """Release the SQLite connection."""
        self._cache.close()
