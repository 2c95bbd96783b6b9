"""Schema-constrained greedy decoding without checking the grammar against the whole vocabulary.

llama-cpp-python puts the grammar sampler before greedy selection, so every generated token
checks all 151,936 vocabulary entries of the Qwen tokenizer against the grammar: measured at
25-39 ms per token, as much as generation itself. At temperature 0 only the best token the grammar
allows matters, so this sampler applies the grammar to the ``TOP_K`` most likely tokens first and
falls back to the whole vocabulary only when none of them is allowed. The output is the same as
full-vocabulary greedy decoding whenever an allowed token is among the top k (it is then the
best allowed token overall); otherwise the fallback computes exactly that.
"""

from __future__ import annotations

import ctypes
from typing import Any

import llama_cpp
import numpy as np
from llama_cpp import Llama, _internals
from llama_cpp.llama_grammar import LlamaGrammar

TOP_K = 64
# llama-cpp-python's internals are only partly typed; used here through Any.
internals: Any = _internals


class TopKGrammarSampler:
    """A llama.cpp sampler (C interface implemented in Python) wrapping a grammar sampler."""

    def __init__(self, vocab: Any, grammar: LlamaGrammar) -> None:
        self._grammar = llama_cpp.llama_sampler_init_grammar(
            vocab, grammar._grammar.encode("utf-8"), grammar._root.encode("utf-8")
        )
        self._small = (llama_cpp.llama_token_data * TOP_K)()
        self._small_np = np.ctypeslib.as_array(self._small)
        self._small_array = llama_cpp.llama_token_data_array(
            data=self._small, size=TOP_K, selected=-1, sorted=False
        )
        # Keep the callbacks referenced: llama.cpp holds only their C pointers.
        self._callbacks = (
            llama_cpp.llama_sampler_i_apply(self._apply),
            llama_cpp.llama_sampler_i_accept(self._accept),
            llama_cpp.llama_sampler_i_reset(self._reset),
        )
        iface = llama_cpp.llama_sampler_i()
        iface.apply, iface.accept, iface.reset = self._callbacks
        iface.name = llama_cpp.llama_sampler_i_name(0)
        iface.clone = llama_cpp.llama_sampler_i_clone(0)
        iface.free = llama_cpp.llama_sampler_i_free(0)
        self._iface = iface
        self.sampler = llama_cpp.llama_sampler()
        self.sampler.iface = ctypes.pointer(iface)
        self.sampler.ctx = None

    def _apply(self, _smpl: Any, cur_p: Any) -> None:
        array = cur_p.contents
        size = int(array.size)
        k = min(TOP_K, size)
        full = np.ctypeslib.as_array(array.data, shape=(size,))
        logits = full["logit"]
        top = np.argpartition(logits, size - k)[size - k :]
        small = self._small_np[:k]
        small["id"], small["logit"], small["p"] = full["id"][top], logits[top], 0.0
        self._small_array.size, self._small_array.selected = k, -1
        llama_cpp.llama_sampler_apply(self._grammar, ctypes.byref(self._small_array))
        allowed = np.isfinite(small["logit"])
        if allowed.any():
            kept = small["logit"][allowed].copy()
            logits[:] = -np.inf
            logits[top[allowed]] = kept
        else:  # no top-k token fits the grammar: check the whole vocabulary
            llama_cpp.llama_sampler_apply(self._grammar, cur_p)

    def _accept(self, _smpl: Any, token: int) -> None:
        llama_cpp.llama_sampler_accept(self._grammar, token)

    def _reset(self, _smpl: Any) -> None:
        llama_cpp.llama_sampler_reset(self._grammar)

    def __del__(self) -> None:
        if getattr(self, "_grammar", None) is not None:
            llama_cpp.llama_sampler_free(self._grammar)
            self._grammar = None


class TopKGrammarLlama(Llama):
    """``Llama`` whose greedy, grammar-constrained sampling uses ``TopKGrammarSampler``.

    Everything else (sampling with temperature, no grammar) is llama-cpp-python's own.
    """

    use_top_k = True  # False gives llama-cpp-python's own sampler (benchmarks compare the two)

    def _init_sampler(self, *args: Any, **kwargs: Any) -> Any:
        grammar = kwargs.get("grammar")
        greedy = kwargs.get("temp", 0.8) == 0.0 and not kwargs.get("logits_processor")
        if grammar is None or not greedy or not self.use_top_k:
            return super()._init_sampler(*args, **kwargs)
        chain = internals.LlamaSampler()
        custom = TopKGrammarSampler(self._model.vocab, grammar)
        llama_cpp.llama_sampler_chain_add(chain.sampler, ctypes.pointer(custom.sampler))
        # Registered like llama-cpp-python's own custom samplers, so the chain never frees it.
        chain.custom_samplers.append((llama_cpp.llama_sampler_chain_n(chain.sampler) - 1, custom))
        chain.add_greedy()
        return chain
