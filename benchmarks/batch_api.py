"""Client cost of a Batch API run: CPU per paper and peak memory, against the loopback Batch API.

The provider's side (the scripted server in ``tests/batch_api_server.py``) runs in a child
process, so the CPU and peak memory reported are the client's own. Not a test.

    .venv/bin/python benchmarks/batch_api.py [--papers 5000] [--max-requests 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from keyfindings import Summarizer  # noqa: E402
from keyfindings.backends.openai_compat import OpenAICompatBackend  # noqa: E402
from keyfindings.batch_api import BatchApiOptions, Limits, run_batch_api, state_dir  # noqa: E402
from keyfindings.batch_api.state import JobState  # noqa: E402
from keyfindings.cache import ResultCache  # noqa: E402
from tests.batch_api_server import BatchApiServer  # noqa: E402
from tests.synthetic import write_jsonl  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=5000)
    parser.add_argument("--max-requests", type=int, default=2000, help="requests per file")
    args = parser.parse_args()
    urls: multiprocessing.Queue[str] = multiprocessing.Queue()
    server = multiprocessing.Process(target=_serve, args=(urls,), daemon=True)
    server.start()
    base_url = urls.get(timeout=30)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            source = write_jsonl(Path(tmp) / "papers.jsonl", range(args.papers))
            out = Path(tmp) / "out.jsonl"
            backend = OpenAICompatBackend("gpt-4o-mini", base_url=base_url, api_key="x")
            summarizer = Summarizer(backend, cache=ResultCache(Path(tmp) / "store"))
            options = BatchApiOptions(
                poll_interval_s=0.01, limits=Limits(max_requests=args.max_requests)
            )
            cpu, wall = time.process_time(), time.perf_counter()
            stats = asyncio.run(run_batch_api(summarizer, [source], out, options=options))
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            files = sorted(state_dir(out).glob("*.requests.jsonl"))
            request_bytes = sum(f.stat().st_size for f in files)
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(
                f"{args.papers} papers: {stats.written} written, {stats.failed} failed, "
                f"{len(JobState.open(state_dir(out)).submissions)} batches of <= "
                f"{args.max_requests} requests\n"
                f"client CPU {cpu / args.papers * 1000:.2f} ms/paper (render, files, checks, "
                f"store, OUT); wall {wall:.1f} s on loopback\n"
                f"request line {request_bytes / args.papers / 1024:.1f} KB; process peak RSS "
                f"{peak:.0f} MiB",
                flush=True,
            )
    finally:
        server.terminate()


def _serve(urls: multiprocessing.Queue[str]) -> None:
    server = BatchApiServer().start()
    urls.put(server.base_url)
    threading.Event().wait()


if __name__ == "__main__":
    main()
