"""Which model to call: explicit arguments win, environment variables are the fallback.

With no remote model configured (no base URL, no API key), keyfindings uses the embedded local
model, so it works offline out of the box.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

from keyfindings.backends.base import DEFAULT_TIMEOUT_S, Backend
from keyfindings.errors import ConfigError

BackendName = Literal["auto", "openai", "local"]
DEFAULT_REMOTE_MODEL = "gpt-4o-mini"
# Capable models cite their evidence; the small embedded model writes plain sentences instead.
DEFAULT_PROMPTS = {"openai": "key_findings@v1", "local": "key_findings_compact@v2"}


@dataclass(frozen=True)
class ModelConfig:
    """Where answers come from. ``backend`` is "auto", "openai" or "local"."""

    backend: BackendName = "auto"
    base_url: str | None = None
    model: str | None = None
    api_key: str | None = None
    model_path: str | None = None
    timeout: float = DEFAULT_TIMEOUT_S

    def resolved(self) -> ModelConfig:
        """Fill gaps from ``OPENAI_BASE_URL``, ``OPENAI_API_KEY``, ``KEYFINDINGS_MODEL``."""
        base_url = self.base_url or os.environ.get("OPENAI_BASE_URL") or None
        api_key = self.api_key or os.environ.get("OPENAI_API_KEY") or None
        backend = self.backend
        if backend == "auto":
            backend = "openai" if (base_url or api_key) and not self.model_path else "local"
        if backend not in DEFAULT_PROMPTS:
            raise ConfigError(f"unknown backend {backend!r}; use auto, openai or local")
        model = self.model or os.environ.get("KEYFINDINGS_MODEL") or None
        return ModelConfig(backend, base_url, model, api_key, self.model_path, self.timeout)

    def default_prompt(self) -> str:
        """The prompt version that suits this backend."""
        return DEFAULT_PROMPTS[self.resolved().backend]


def make_backend(config: ModelConfig) -> Backend:
    """Build the backend the configuration asks for."""
    config = config.resolved()
    if config.backend == "openai":
        from keyfindings.backends.openai_compat import OpenAICompatBackend

        return OpenAICompatBackend(
            config.model or DEFAULT_REMOTE_MODEL,
            base_url=config.base_url,
            api_key=config.api_key,
            timeout=config.timeout,
        )
    from keyfindings.backends.local import LocalBackend

    backend: Backend = LocalBackend.shared(config.model_path)
    return backend
