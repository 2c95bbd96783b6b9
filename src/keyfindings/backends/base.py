"""What every backend offers: chat messages and a JSON schema in, raw answer text out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from keyfindings.prompts import GenerationParams

Messages = list[dict[str, str]]
# Total seconds per remote request (not per read: see ``deadline``). With the retry policy's 4
# attempts, a dead server costs a paper about 4 minutes at most.
DEFAULT_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class Completion:
    """One model answer, before any parsing; ``finish_reason`` "length" means cut off."""

    text: str
    finish_reason: str | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    request_id: str | None = None


class Backend(Protocol):
    """A model to call. ``identity`` goes into the cache key and the result's provenance."""

    name: str
    model: str

    def identity(self) -> dict[str, Any]:
        """Everything about this model that changes its answers (never a secret)."""
        ...

    def digest(self) -> str | None:
        """The weights' hash where known (local models), for provenance."""
        ...

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        """Estimated USD cost, or None when the price is unknown."""
        ...

    def complete(
        self, messages: Messages, schema: dict[str, Any], params: GenerationParams
    ) -> Completion:
        """One attempt; raises ``BackendError`` subclasses, never retries by itself."""
        ...

    def close(self) -> None:
        """Release connections (sync client)."""
        ...

    async def aclose(self) -> None:
        """Release async resources inside the event loop that used them."""
        ...

    async def acomplete(
        self, messages: Messages, schema: dict[str, Any], params: GenerationParams
    ) -> Completion:
        """Async form of ``complete``."""
        ...


class WrappedBackend:
    """A backend that passes everything to ``inner``; subclasses change one thing (pacing,
    pricing) without changing the identity, so results stay under the same cache keys."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.name = inner.name
        self.model = inner.model

    def identity(self) -> dict[str, Any]:
        """The wrapped backend's identity."""
        return self.inner.identity()

    def digest(self) -> str | None:
        """The wrapped backend's weights hash."""
        return self.inner.digest()

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        """The wrapped backend's cost estimate."""
        return self.inner.cost(prompt_tokens, completion_tokens)

    def close(self) -> None:
        """Close the wrapped backend's connections."""
        self.inner.close()

    async def aclose(self) -> None:
        """Close the wrapped backend's async resources."""
        await self.inner.aclose()

    def complete(
        self, messages: Messages, schema: dict[str, Any], params: GenerationParams
    ) -> Completion:
        """The wrapped backend's answer."""
        return self.inner.complete(messages, schema, params)

    async def acomplete(
        self, messages: Messages, schema: dict[str, Any], params: GenerationParams
    ) -> Completion:
        """The wrapped backend's answer."""
        return await self.inner.acomplete(messages, schema, params)
