"""Batch throughput against a loopback OpenAI-compatible server with a fixed latency.

The ideal throughput at concurrency N and latency L is N/L papers per second. Each round runs
``keyfindings batch`` (checks, a diskcache store, OUT.jsonl) and a bare ``openai`` async loop
sending the same payload (the same system prompt, user message and ``json_schema`` response
format, rendered before its clock starts) against the same server, alternately, and reports
both as a ratio of N/L and keyfindings as a ratio of the bare loop: the cost of everything
keyfindings adds. Peak memory at two input sizes shows whether the input is streamed.

    .venv/bin/python benchmarks/batch_throughput.py [--n 32] [--latency 0.5] [--papers 800]

The server is a minimal asyncio HTTP/1.1 server in its own process, so its CPU is not the
client's; on 2 cores they still share the machine, which is part of what this measures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.synthetic import good_answer, write_jsonl  # noqa: E402

_LENGTH = re.compile(rb"content-length:\s*(\d+)", re.I)


def _response(body: bytes) -> bytes:
    request = json.loads(body)
    answer = good_answer(request["messages"][1]["content"])
    payload = json.dumps(
        {
            "id": "bench",
            "object": "chat.completion",
            "created": 0,
            "model": "bench",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": json.dumps(answer)},
                }
            ],
            "usage": {"prompt_tokens": 400, "completion_tokens": 120, "total_tokens": 520},
        }
    ).encode()
    head = (
        f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        f"content-length: {len(payload)}\r\n\r\n"
    ).encode()
    return head + payload


def serve(port: int, latency: float) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                match = _LENGTH.search(head)
                body = await reader.readexactly(int(match.group(1)) if match else 0)
                await asyncio.sleep(latency)
                writer.write(_response(body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


CLIENT = """
import asyncio, json, resource, sys, time
from pathlib import Path
from keyfindings import Summarizer
from keyfindings.backends.openai_compat import OpenAICompatBackend
from keyfindings.batch import run_batch
from keyfindings.cache import ResultCache
source, out, base_url, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
backend = OpenAICompatBackend("bench", base_url=base_url, timeout=60)
store = ResultCache(out + ".store")
summarizer = Summarizer(backend, prompt="key_findings@v1", cache=store)
start = time.perf_counter()
stats = asyncio.run(run_batch(summarizer, [Path(source)], Path(out), concurrency=n))
elapsed = time.perf_counter() - start
print(json.dumps({"written": stats.written, "failed": stats.failed, "elapsed": elapsed,
                  "cpu": resource.getrusage(resource.RUSAGE_SELF).ru_utime
                         + resource.getrusage(resource.RUSAGE_SELF).ru_stime,
                  "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


BARE = """
import asyncio, json, resource, sys, time
import openai
from keyfindings import Summarizer
from keyfindings.backends.openai_compat import OpenAICompatBackend
from keyfindings.loaders import iter_papers
source, out, base_url, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
# The same payload keyfindings sends, rendered before the clock starts.
backend = OpenAICompatBackend("bench", base_url=base_url)
s = Summarizer(backend, use_cache=False)
bodies = [backend.request_body(s.prompt.render(p), s.schema, s.params) for p in iter_papers(source)]
client = openai.AsyncOpenAI(base_url=base_url, api_key="x", max_retries=0, timeout=60)

async def main():
    queue = list(reversed(bodies))
    done = []
    async def worker():
        while queue:
            body = dict(queue.pop())
            response_format = body.pop("response_format")
            r = await client.chat.completions.create(
                **body, extra_body={"response_format": response_format})
            done.append(json.loads(r.choices[0].message.content))
    await asyncio.gather(*(worker() for _ in range(n)))
    await client.close()
    return done

start = time.perf_counter()
done = asyncio.run(main())
elapsed = time.perf_counter() - start
print(json.dumps({"written": len(done), "failed": 0, "elapsed": elapsed,
                  "cpu": resource.getrusage(resource.RUSAGE_SELF).ru_utime
                         + resource.getrusage(resource.RUSAGE_SELF).ru_stime,
                  "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_client(
    papers: int, concurrency: int, base_url: str, workdir: Path, code: str = CLIENT
) -> dict[str, float]:
    source = workdir / f"in-{papers}.jsonl"
    if not source.exists():
        write_jsonl(source, range(papers))
    out = workdir / f"out-{papers}-{concurrency}-{time.monotonic_ns()}.jsonl"
    done = subprocess.run(
        [sys.executable, "-c", code, str(source), str(out), base_url, str(concurrency)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if done.returncode:
        raise SystemExit(f"client failed:\n{done.stderr[-3000:]}")
    result: dict[str, float] = json.loads(done.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=32, help="concurrency")
    parser.add_argument("--latency", type=float, nargs="+", default=[0.5])
    parser.add_argument("--papers", type=int, nargs="+", default=[800])
    parser.add_argument("--rounds", type=int, default=2, help="alternating runs of each client")
    parser.add_argument("--port", type=int, default=18731)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for i, latency in enumerate(args.latency):
            port = args.port + i
            server = multiprocessing.Process(target=serve, args=(port, latency), daemon=True)
            server.start()
            time.sleep(0.5)
            url, ideal = f"http://127.0.0.1:{port}/v1", args.n / latency
            try:
                for papers in args.papers:
                    rates: dict[str, list[float]] = {"bare SDK loop": [], "keyfindings": []}
                    for _ in range(args.rounds):
                        for name, code in (("bare SDK loop", BARE), ("keyfindings", CLIENT)):
                            r = run_client(papers, args.n, url, Path(tmp), code)
                            rate = r["written"] / r["elapsed"]
                            rates[name].append(rate)
                            print(
                                f"N={args.n} L={latency * 1000:.0f}ms papers={papers} {name}: "
                                f"{rate:.1f}/s = {rate / ideal:.2f} x N/L; client CPU "
                                f"{r['cpu'] / r['written'] * 1000:.2f} ms/paper; peak RSS "
                                f"{r['maxrss_mib']:.0f} MiB; failed {r['failed']:.0f}",
                                flush=True,
                            )
                    bare, ours = (sum(v) / len(v) for v in rates.values())
                    print(
                        f"  keyfindings / bare SDK loop = {ours / bare:.3f} "
                        f"(means of {args.rounds} alternating runs each)",
                        flush=True,
                    )
            finally:
                server.terminate()
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"(benchmark process peak RSS {own} MiB)")


if __name__ == "__main__":
    main()
