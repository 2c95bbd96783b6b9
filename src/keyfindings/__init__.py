"""keyfindings: grounded, validated key findings from research-paper abstracts."""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from keyfindings.cache import ResultCache
from keyfindings.config import ModelConfig, make_backend
from keyfindings.errors import (
    AbstractError,
    BackendConnectionError,
    BackendError,
    BackendTimeoutError,
    BusyError,
    ConfigError,
    ConflictError,
    InputError,
    KeyFindingsError,
    LoaderError,
    ModelFileError,
    PromptError,
    RateLimitedError,
    RequestRejectedError,
    RetriesExhaustedError,
    ServerError,
    StorageError,
    TransientBackendError,
    ValidationFailedError,
)
from keyfindings.loaders import iter_papers, load_papers
from keyfindings.paper import Paper
from keyfindings.prompts import load_prompt
from keyfindings.retry import RetryPolicy
from keyfindings.schema import (
    SCHEMA_VERSION,
    Finding,
    Issue,
    IssueCode,
    KeyFindings,
    Result,
    StudyType,
    Usage,
)
from keyfindings.summarizer import Summarizer

try:
    __version__ = version("keyfindings")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "SCHEMA_VERSION",
    "AbstractError",
    "BackendConnectionError",
    "BackendError",
    "BackendTimeoutError",
    "BusyError",
    "ConfigError",
    "ConflictError",
    "Finding",
    "InputError",
    "Issue",
    "IssueCode",
    "KeyFindings",
    "KeyFindingsError",
    "LoaderError",
    "ModelConfig",
    "ModelFileError",
    "Paper",
    "PromptError",
    "RateLimitedError",
    "RequestRejectedError",
    "Result",
    "ResultCache",
    "RetriesExhaustedError",
    "RetryPolicy",
    "ServerError",
    "StorageError",
    "StudyType",
    "Summarizer",
    "TransientBackendError",
    "Usage",
    "ValidationFailedError",
    "__version__",
    "asummarize",
    "iter_papers",
    "load_papers",
    "load_prompt",
    "make_backend",
    "summarize",
]


def _summarizer(
    config: ModelConfig | None, prompt: str | None, kwargs: dict[str, Any]
) -> Summarizer:
    config = config or ModelConfig()
    return Summarizer(make_backend(config), prompt=prompt or config.default_prompt(), **kwargs)


def summarize(
    paper: Paper | Mapping[str, Any],
    *,
    config: ModelConfig | None = None,
    prompt: str | None = None,
    **kwargs: Any,
) -> Result:
    """One-shot summary; for many papers build one ``Summarizer`` and reuse it."""
    with _summarizer(config, prompt, kwargs) as summarizer:
        return summarizer.summarize(paper)


async def asummarize(
    paper: Paper | Mapping[str, Any],
    *,
    config: ModelConfig | None = None,
    prompt: str | None = None,
    **kwargs: Any,
) -> Result:
    """Async one-shot summary."""
    async with _summarizer(config, prompt, kwargs) as summarizer:
        return await summarizer.asummarize(paper)
