"""Embedded-model benchmark: latency per abstract, decoding speed against raw llama.cpp, memory.

Everything is measured in one run on one machine and reported as ratios against a baseline
measured in the same run (raw llama-cpp-python on the same GGUF, unconstrained), so the figures
travel between machines. Not a test: nothing here passes or fails.

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
from llama_cpp import Llama

from keyfindings import Paper, Summarizer
from keyfindings.backends._topk_grammar import TopKGrammarLlama
from keyfindings.backends.local import LocalBackend
from keyfindings.models import assemble
from keyfindings.prompts import load_prompt
from keyfindings.schema import TextAnswer, strict_json_schema

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "pubmedqa_dev.jsonl"
PROMPT = "key_findings_compact@v1"


def papers(path: Path, n: int) -> list[Paper]:
    with path.open() as handle:
        rows = [json.loads(line) for _, line in zip(range(n), handle, strict=False)]
    return [Paper.from_dict({k: v for k, v in r.items() if k != "sections"}) for r in rows]


def decode(
    llm: Llama, messages: list[dict[str, str]], response_format: Any, max_tokens: int
) -> tuple[float, int]:
    """Seconds spent after the prompt was read (decoding + sampling), and tokens generated."""
    llama_cpp.llama_perf_context_reset(llm._ctx.ctx)
    start = time.perf_counter()
    out = llm.create_chat_completion(
        messages=messages,
        temperature=0,
        max_tokens=max_tokens,
        seed=0,
        response_format=response_format,
    )
    wall = time.perf_counter() - start
    prompt_seconds = llama_cpp.llama_perf_context(llm._ctx.ctx).t_p_eval_ms / 1000
    return wall - prompt_seconds, out["usage"]["completion_tokens"]


def per_token(llm: Llama, batch: list[list[dict[str, str]]], response_format: Any) -> float:
    """Seconds per generated token over the batch (after one warm-up call)."""
    decode(llm, batch[0], response_format, 64)
    seconds = tokens = 0.0
    for messages in batch:
        dt, n = decode(llm, messages, response_format, 400)
        seconds, tokens = seconds + dt, tokens + n
    return seconds / max(tokens, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    sample = papers(args.data, args.n)
    prompt = load_prompt(PROMPT)
    schema = {"type": "json_object", "schema": strict_json_schema(TextAnswer)}
    batch = [prompt.render(p) for p in sample[:3]]
    path = str(assemble())

    start = time.perf_counter()
    summarizer = Summarizer(LocalBackend.shared(), prompt=PROMPT, use_cache=False)
    latencies = []
    for paper in sample:
        t = time.perf_counter()
        result = summarizer.summarize(paper)
        latencies.append(time.perf_counter() - t)
        print(
            f"  {paper.id}: {latencies[-1]:.1f}s {result.status} "
            f"{result.usage.completion_tokens} tok, {result.usage.attempts} request(s)",
            flush=True,
        )
    cold = time.perf_counter() - start - sum(latencies[1:])
    rss_pipeline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    raw = Llama(model_path=path, n_ctx=4096, verbose=False)
    base = per_token(raw, batch, None)
    stock = per_token(raw, batch, schema)
    del raw
    fast = per_token(TopKGrammarLlama(model_path=path, n_ctx=4096, verbose=False), batch, schema)

    print(f"\nabstracts: {len(sample)}  cold first summary (load + assemble check): {cold:.1f}s")
    print(
        f"warm summary latency: median {statistics.median(latencies[1:]):.1f}s, "
        f"max {max(latencies[1:]):.1f}s"
    )
    print(
        f"per generated token: raw llama.cpp {base * 1000:.0f} ms | stock schema grammar "
        f"{stock * 1000:.0f} ms | top-k grammar (ours) {fast * 1000:.0f} ms"
    )
    print(
        f"constraint overhead vs raw: stock {(stock / base - 1):.0%}, ours {(fast / base - 1):.0%};"
        f" our tokens/s = {base / fast:.2f} x raw"
    )
    print(f"peak RSS of the pipeline: {rss_pipeline:.0f} MiB")


if __name__ == "__main__":
    main()
