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
        text = self._cache.get(key)
        if not isinstance(text, str):
            return None
        try:
            result = Result.model_validate_json(text)
        except ValueError:
            return None
        return result.model_copy(update={"cached": True})

    def put(self, key: str, result: Result) -> None:
        """Store an accepted result; flagged ones are not cached (they should be retried)."""
        if result.status != "ok":
            return
        stored = result.model_copy(update={"cached": False})
        self._cache.set(key, stored.model_dump_json(), tag=stored.prompt.ref)

    def __contains__(self, key: str) -> bool:
        return key in self._cache

    def clear(self, prompt: str | None = None) -> int:
        """Remove every entry, or only those of one prompt version (``name@vN``); returns count."""
        removed: int = self._cache.evict(prompt) if prompt else self._cache.clear()
        return removed

    def stats(self) -> dict[str, Any]:
        """Entries, size on disk and directory, plus entries per prompt version."""
        per_prompt: dict[str, int] = {}
        for key in self._cache.iterkeys():
            _, tag = self._cache.get(key, tag=True)
            if tag:
                per_prompt[tag] = per_prompt.get(tag, 0) + 1
        return {
            "directory": str(self.directory),
            "entries": len(self._cache),
            "size_bytes": self._cache.volume(),
            "by_prompt": per_prompt,
        }

    def close(self) -> None:
        """Release the SQLite connection."""
        self._cache.close()
