"""``/readyz``: can this server answer now? Cheap enough for a probe every second.

The embedded model is ready once its weights are loaded. A remote server is asked for its model
list (free, unlike a completion) at most every ``remote_every_s`` seconds; the answer is reused
in between. The store is ready if a lookup works.
"""

from __future__ import annotations

import threading
import time

from keyfindings.errors import KeyFindingsError
from keyfindings.service.flight import FindingsService


class Readiness:
    """Answers the probe for one service."""

    def __init__(self, service: FindingsService, *, remote_every_s: float = 30.0) -> None:
        self.service = service
        self.remote_every_s = remote_every_s
        self._remote: tuple[float, bool] | None = None
        self._lock = threading.Lock()

    def model_ready(self) -> bool:
        """The embedded model is loaded, or the remote server answered recently."""
        backend = self.service.summarizer.backend
        loaded = getattr(backend, "loaded", None)
        if isinstance(loaded, bool):
            return loaded
        base_url = getattr(backend, "base_url", None)
        if not isinstance(base_url, str):
            return True  # a backend with nothing to probe
        with self._lock:
            if self._remote and time.monotonic() - self._remote[0] < self.remote_every_s:
                return self._remote[1]
            from keyfindings.backends.openai_compat import served_models

            ready = bool(served_models(base_url, getattr(backend, "_api_key", None)))
            self._remote = (time.monotonic(), ready)
            return ready

    def store_ready(self) -> bool:
        """A lookup in the results store works."""
        try:
            return "readyz:probe" not in self.service.cache
        except KeyFindingsError:
            return False
