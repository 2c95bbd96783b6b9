"""Embedded-model benchmark: summary latency, decoding cost of the JSON constraint, memory.

Figures are ratios against baselines measured in the same run on the same GGUF and the same
loaded model: unconstrained decoding (no grammar) for the per-token cost, llama-cpp-python's own
grammar sampler for the constraint overhead. Not a test.

    .venv/bin/python benchmarks/local_latency.py [--n 8] [--data ../shared/data/pubmedqa_dev.jsonl]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time
from pathlib import Path
from typing import Any

import llama_cpp

from keyfindings import Paper, Summarizer
from keyfindings.backends.local import LocalBackend

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "pubmedqa_dev.jsonl"
PROMPT = "key_findings_compact@v2"


def papers(path: Path, n: int) -> list[Paper]:
    with path.open() as handle:
        rows = [json.loads(line) for _, line in zip(range(n), handle, strict=False)]
    return [Paper.from_dict({k: v for k, v in r.items() if k != "sections"}) for r in rows]


def decode_seconds_per_token(llm: Any, batch: list[list[dict[str, str]]], grammar: Any) -> float:
    """Seconds per generated token after the prompt is read (decoding + sampling)."""
    seconds = tokens = 0.0
    for messages in batch:
        llama_cpp.llama_perf_context_reset(llm._ctx.ctx)
        start = time.perf_counter()
        out = llm.create_chat_completion(
            messages=messages, temperature=0, max_tokens=320, seed=0, grammar=grammar
        )
        wall = time.perf_counter() - start
        prompt_s = llama_cpp.llama_perf_context(llm._ctx.ctx).t_p_eval_ms / 1000
        seconds += wall - prompt_s
        tokens += out["usage"]["completion_tokens"]
    return seconds / max(tokens, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    sample = papers(args.data, args.n)

    backend = LocalBackend.shared()
    summarizer = Summarizer(backend, prompt=PROMPT, use_cache=False)
    latencies, tokens = [], []
    for paper in sample:
        t = time.perf_counter()
        result = summarizer.summarize(paper)
        latencies.append(time.perf_counter() - t)
        tokens.append(result.usage.completion_tokens)
        print(
            f"  {paper.id}: {latencies[-1]:.1f}s {result.status} "
            f"{result.usage.prompt_tokens}+{result.usage.completion_tokens} tok, "
            f"{result.usage.attempts} request(s)",
            flush=True,
        )
    cold = latencies[0]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    llm = backend._load()
    batch = [summarizer.prompt.render(p) for p in sample[:3]]
    capped = backend._grammar(summarizer._schema)
    base = decode_seconds_per_token(llm, batch, None)
    ours = decode_seconds_per_token(llm, batch, capped)
    llm.use_top_k = False
    stock = decode_seconds_per_token(llm, batch, capped)
    llm.use_top_k = True

    warm = latencies[1:] or latencies
    print(f"\nabstracts: {len(sample)}; first summary (model load included): {cold:.1f}s")
    print(
        f"warm summary latency: median {statistics.median(warm):.1f}s, max {max(warm):.1f}s; "
        f"median output {statistics.median(tokens):.0f} tokens"
    )
    print(
        f"decoding per token: unconstrained {base * 1000:.0f} ms | llama-cpp-python grammar "
        f"sampler {stock * 1000:.0f} ms | top-k grammar sampler (ours) {ours * 1000:.0f} ms"
    )
    print(
        f"constraint overhead: stock {stock / base - 1:+.0%}, ours {ours / base - 1:+.0%}; "
        f"our tokens/s = {base / ours:.2f} x unconstrained llama.cpp"
    )
    print(f"peak RSS: {rss:.0f} MiB")


if __name__ == "__main__":
    main()
