"""Batch throughput against a loopback OpenAI-compatible server with a fixed latency.

The ideal throughput at concurrency N and latency L is N/L papers per second; the figure reported
is the measured throughput as a ratio of that, plus the client's peak memory at two input sizes
(flat memory means the input is streamed). Not a test.

    .venv/bin/python benchmarks/batch_throughput.py [--n 32] [--latency 0.5] [--papers 1000 10000]

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
source, out, base_url, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
backend = OpenAICompatBackend("bench", base_url=base_url, timeout=60)
summarizer = Summarizer(backend, prompt="key_findings@v1", use_cache=False)
start = time.perf_counter()
stats = asyncio.run(run_batch(summarizer, [Path(source)], Path(out), concurrency=n))
elapsed = time.perf_counter() - start
print(json.dumps({"written": stats.written, "failed": stats.failed, "elapsed": elapsed,
                  "cpu": resource.getrusage(resource.RUSAGE_SELF).ru_utime
                         + resource.getrusage(resource.RUSAGE_SELF).ru_stime,
                  "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_client(papers: int, concurrency: int, base_url: str, workdir: Path) -> dict[str, float]:
    source = write_jsonl(workdir / f"in-{papers}.jsonl", range(papers))
    out = workdir / f"out-{papers}-{concurrency}-{time.monotonic_ns()}.jsonl"
    done = subprocess.run(
        [sys.executable, "-c", CLIENT, str(source), str(out), base_url, str(concurrency)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    result: dict[str, float] = json.loads(done.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=32, help="concurrency")
    parser.add_argument("--latency", type=float, nargs="+", default=[0.5, 0.2])
    parser.add_argument("--papers", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--port", type=int, default=18731)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for i, latency in enumerate(args.latency):
            port = args.port + i
            server = multiprocessing.Process(target=serve, args=(port, latency), daemon=True)
            server.start()
            time.sleep(0.5)
            try:
                for papers in args.papers:
                    r = run_client(papers, args.n, f"http://127.0.0.1:{port}/v1", Path(tmp))
                    ideal = args.n / latency
                    rate = r["written"] / r["elapsed"]
                    print(
                        f"N={args.n} L={latency * 1000:.0f}ms papers={papers}: "
                        f"{rate:.1f}/s = {rate / ideal:.2f} x ideal N/L ({ideal:.0f}/s); "
                        f"client CPU {r['cpu'] / r['written'] * 1000:.2f} ms/paper; "
                        f"peak RSS {r['maxrss_mib']:.0f} MiB; failed {r['failed']:.0f}",
                        flush=True,
                    )
            finally:
                server.terminate()
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"(benchmark process peak RSS {own} MiB)")


if __name__ == "__main__":
    main()
