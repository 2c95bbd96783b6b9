"""The embedded backend: llama.cpp in-process (``llama-cpp-python``), offline, no key.

The model is loaded once per process and reused. llama.cpp keeps the evaluated tokens of the last
call and only evaluates what differs, so with the fixed part of the prompt first only the paper is
read for each new abstract. One call at a time per model (llama.cpp contexts are not thread-safe).
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from pathlib import Path
from typing import Any, ClassVar

from keyfindings.backends._grammar import (
    GRAMMAR_VERSION,
    has_sentence_caps,
    sentence_capped_gbnf,
)
from keyfindings.backends.base import Completion, Messages
from keyfindings.errors import BackendError, ConfigError, ModelFileError
from keyfindings.models import DEFAULT_MODEL, assemble, file_sha256
from keyfindings.prompts import GenerationParams

N_CTX = 4096


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class LocalBackend:
    """A GGUF model run in-process; ``shared`` gives the per-process instance for a file."""

    name = "local"
    _instances: ClassVar[dict[str, LocalBackend]] = {}
    _instances_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        n_ctx: int = N_CTX,
        n_threads: int | None = None,
    ) -> None:
        if model_path is None:
            self.path = assemble(DEFAULT_MODEL)
            self.model = DEFAULT_MODEL.name
            self._digest: str | None = DEFAULT_MODEL.sha256
        else:
            self.path = Path(model_path).expanduser()
            if not self.path.is_file():
                raise ModelFileError(f"{self.path}: no such model file")
            self.model = self.path.stem
            self._digest = None
        self.n_ctx = n_ctx
        self.n_threads = n_threads or _cores()
        self._llama: Any = None
        self._lock = threading.Lock()
        self._grammars: dict[int, tuple[dict[str, Any], Any]] = {}

    @classmethod
    def shared(cls, model_path: str | Path | None = None) -> LocalBackend:
        """One instance per model file per process: loading takes seconds and ~2 GB."""
        key = str(Path(model_path).expanduser().resolve()) if model_path else ""
        with cls._instances_lock:
            if key not in cls._instances:
                cls._instances[key] = cls(model_path)
            return cls._instances[key]

    def digest(self) -> str:
        """sha256 of the weights (computed once for a user-supplied file)."""
        if self._digest is None:
            self._digest = file_sha256(self.path)
        return self._digest

    def identity(self) -> dict[str, Any]:
        """The weights' hash identifies the model, whatever the file is called."""
        return {
            "backend": self.name,
            "model": self.model,
            "sha256": self.digest(),
            "n_ctx": self.n_ctx,
            "grammar": GRAMMAR_VERSION,
        }

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """Local inference costs no money."""
        return 0.0

    @property
    def loaded(self) -> bool:
        """Whether the weights are in memory (a readiness probe asks; loading takes seconds)."""
        return self._llama is not None

    def load(self) -> None:
        """Load the weights now rather than on the first request."""
        with self._lock:
            self._load()

    def _load(self) -> Any:
        if self._llama is None:
            try:
                from keyfindings.backends._topk_grammar import TopKGrammarLlama
            except ImportError:
                raise ConfigError(
                    "the embedded model needs llama-cpp-python: pip install 'keyfindings[local]' "
                    "(or use a server with --base-url)"
                ) from None
            try:
                self._llama = TopKGrammarLlama(
                    model_path=str(self.path),
                    n_ctx=self.n_ctx,
                    n_threads=self.n_threads,
                    n_threads_batch=self.n_threads,
                    n_batch=512,
                    verbose=False,
                )
            except (ValueError, RuntimeError) as exc:
                raise ModelFileError(f"{self.path}: llama.cpp cannot load it ({exc})") from None
        return self._llama

    def _grammar(self, schema: dict[str, Any]) -> Any:
        """The llama.cpp grammar for an answer schema, built once per schema."""
        key = id(schema)
        if key not in self._grammars or self._grammars[key][0] is not schema:
            from llama_cpp.llama_grammar import LlamaGrammar

            if has_sentence_caps(schema):
                grammar = LlamaGrammar.from_string(sentence_capped_gbnf(schema), verbose=False)
            else:
                grammar = LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
            self._grammars[key] = (schema, grammar)
        return self._grammars[key][1]

    def complete(
        self,
        messages: Messages,
        schema: dict[str, Any],
        params: GenerationParams,
        cancelled: threading.Event | None = None,
    ) -> Completion:
        """Generate JSON constrained by a grammar made from ``schema``; a call whose
        ``cancelled`` is set while it waits for the model never starts generating."""
        with self._lock:
            if cancelled is not None and cancelled.is_set():
                raise BackendError("embedded model: cancelled before it started")
            llama = self._load()
            try:
                out = llama.create_chat_completion(
                    messages=messages,
                    grammar=self._grammar(schema),
                    temperature=params.temperature,
                    top_p=params.top_p,
                    max_tokens=params.max_tokens,
                    seed=params.seed,
                )
            except ValueError as exc:  # e.g. the prompt exceeds the context window
                raise BackendError(f"embedded model: {exc}") from None
        choice = out["choices"][0]
        usage = out.get("usage") or {}
        return Completion(
            text=choice["message"]["content"] or "",
            finish_reason=choice.get("finish_reason"),
            prompt_tokens=usage.get("prompt_tokens", 0),
            completion_tokens=usage.get("completion_tokens", 0),
        )

    def close(self) -> None:
        """Nothing to release per caller: the model stays loaded for the process."""

    async def aclose(self) -> None:
        """Nothing loop-bound to release: the model stays loaded for the process."""

    async def acomplete(
        self, messages: Messages, schema: dict[str, Any], params: GenerationParams
    ) -> Completion:
        """Runs ``complete`` in a worker thread so the event loop stays responsive.

        Cancelling the task cannot stop its thread, so it tells the thread not to start: on
        Ctrl-C or SIGTERM a batch stops after the generation in flight, not after every queued
        one has run in the background.
        """
        cancelled = threading.Event()
        try:
            return await asyncio.to_thread(self.complete, messages, schema, params, cancelled)
        except asyncio.CancelledError:
            cancelled.set()
            raise
