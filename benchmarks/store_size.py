"""What the shared PostgreSQL store holds per result: rows, bytes and index sizes, measured on
100,000 synthetic results (a real Result of the RCT fixture, given new keys and paper ids), and
the cost of a hit at that size against a hit on an almost empty table (same run).

    .venv/bin/python benchmarks/store_size.py [N]
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from psycopg.types.json import Jsonb  # noqa: E402

from keyfindings import Paper, Summarizer  # noqa: E402
from keyfindings.backends.openai_compat import OpenAICompatBackend  # noqa: E402
from keyfindings.pg_store import PostgresStore  # noqa: E402
from tests.conftest import rct_answer  # noqa: E402
from tests.postgres import PostgresServer  # noqa: E402
from tests.scripted_server import ScriptedServer, chat  # noqa: E402


def hit_p50(store: PostgresStore, key: str, n: int = 2000) -> float:
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        store.get(key)
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def main(count: int) -> None:
    database = PostgresServer.start()
    server = ScriptedServer().start()
    server.handler = lambda body: chat(rct_answer())
    try:
        store = PostgresStore(database.create_database("size"))
        paper = Paper.model_validate_json((ROOT / "tests/fixtures/rct.json").read_text())
        backend = OpenAICompatBackend("bench", base_url=server.base_url)
        with Summarizer(backend, cache=store) as summarizer:
            result = summarizer.summarize(paper)
            scope, key = summarizer.scope(), summarizer.key_for(paper)
        empty = hit_p50(store, key)
        body = json.loads(result.model_dump_json())
        with store._pool.connection() as conn, conn.cursor() as cursor:
            with cursor.copy(
                "COPY kf_entries (key, kind, paper_id, scope, prompt, model, status, body) "
                "FROM STDIN"
            ) as copy:
                for i in range(count):
                    row = {**body, "paper_id": f"pmid-{i}"}
                    copy.write_row(
                        (f"kf1:sha256:{i:064x}", "result", f"pmid-{i}", scope,
                         result.prompt.ref, result.model, "ok", Jsonb(row))
                    )  # fmt: skip
            conn.execute("VACUUM ANALYZE kf_entries")
            sizes = conn.execute(
                "SELECT pg_relation_size('kf_entries'), pg_total_relation_size('kf_entries'), "
                "pg_relation_size('kf_entries_pkey'), pg_relation_size('kf_entries_paper'), "
                "pg_relation_size('kf_entries_prompt')"
            ).fetchone()
        assert sizes is not None
        full = hit_p50(store, key)
        rows = count + 1
        table, total, pkey, by_paper, by_prompt = sizes
        print(f"{rows:,} results in PostgreSQL:")
        print(
            f"  table (with TOAST) {total - pkey - by_paper - by_prompt:,} bytes total; "
            f"heap {table:,}; {(total - pkey - by_paper - by_prompt) / rows:,.0f} bytes/result"
        )
        print(
            f"  indexes: key {pkey / rows:,.0f} B/result, paper+configuration "
            f"{by_paper / rows:,.0f} B/result, prompt {by_prompt / rows:,.0f} B/result"
        )
        print(f"  all: {total / rows:,.0f} bytes per result ({total / 2**20:,.1f} MiB)")
        print(f"  result JSON as text: {len(result.model_dump_json()):,} bytes")
        print(f"  hit p50 {full * 1e6:.0f} us at {rows:,} rows vs {empty * 1e6:.0f} us at 1 row "
              f"(ratio {full / empty:.2f})")  # fmt: skip
        store.close()
    finally:
        server.stop()
        database.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
