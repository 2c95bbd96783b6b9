"""``PostgresStore``: results shared by every server and batch process that points at one
PostgreSQL database (psycopg 3, a connection pool).

One table holds every entry (accepted results, flagged results with an expiry, stored raw
answers), unique on (key, kind), indexed by paper id + configuration and by prompt, with the
Result as ``jsonb``. Single flight across machines is a claim row with a lease: the holder
deletes it when done, and a holder that dies simply lets it expire — no transaction is held
open while a model generates.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from keyfindings.errors import StorageError
from keyfindings.redact import redact_url
from keyfindings.schema import Result
from keyfindings.store import MAX_REPORTS_PER_RESULT

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS kf_meta (name text PRIMARY KEY, value text NOT NULL);
CREATE TABLE IF NOT EXISTS kf_entries (
    key text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('result', 'flagged', 'answers')),
    paper_id text NOT NULL,
    scope text,
    prompt text NOT NULL,
    model text NOT NULL,
    status text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    body jsonb NOT NULL,
    PRIMARY KEY (key, kind)
);
CREATE INDEX IF NOT EXISTS kf_entries_paper ON kf_entries (paper_id, scope, created_at DESC);
CREATE INDEX IF NOT EXISTS kf_entries_prompt ON kf_entries (prompt);
CREATE TABLE IF NOT EXISTS kf_claims (
    key text PRIMARY KEY,
    holder text NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS kf_reports (
    id bigserial PRIMARY KEY,
    key text NOT NULL,
    prompt text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    body jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS kf_reports_key ON kf_reports (key);
CREATE TABLE IF NOT EXISTS kf_rate (
    client text PRIMARY KEY,
    tokens float8 NOT NULL,
    updated_at timestamptz NOT NULL
);
"""
_LIVE = "(expires_at IS NULL OR expires_at > now())"
_KIND_COUNTS = {"result": "results", "flagged": "flagged", "answers": "answers"}


class PostgresStore:
    """The shared results store. ``lease_s`` bounds how long a dead holder can block a paper."""

    def __init__(self, dsn: str, *, lease_s: float = 600.0, poll_s: float = 0.2) -> None:
        self.dsn = dsn
        self.directory = redact_url(dsn, keep_user=True)  # what messages and `cache stats` show
        self.lease_s = lease_s
        self.poll_s = poll_s
        self._holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        with self._storage():
            self._pool = ConnectionPool(
                dsn, min_size=1, max_size=8, open=True, timeout=10.0, kwargs={"autocommit": True}
            )
            self._pool.wait(timeout=10.0)
            self.init()

    @contextmanager
    def _storage(self) -> Iterator[None]:
        try:
            yield
        except psycopg.Error as exc:  # the pool's timeouts and closures are psycopg errors too
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StorageError(f"the store at {self.directory} failed: {first}") from None

    def init(self) -> int:
        """Create or migrate the schema (idempotent); the schema version."""
        with self._storage(), self._pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(74657)")  # one migrator at a time
            conn.execute(_SCHEMA)
            conn.execute(
                "INSERT INTO kf_meta (name, value) VALUES ('schema_version', %s) "
                "ON CONFLICT (name) DO NOTHING",
                (str(SCHEMA_VERSION),),
            )
            row = conn.execute("SELECT value FROM kf_meta WHERE name = 'schema_version'").fetchone()
        return int(row[0]) if row else SCHEMA_VERSION

    def _one(self, sql: str, params: tuple[Any, ...] | dict[str, Any]) -> Any:
        with self._storage(), self._pool.connection() as conn:
            row = conn.execute(sql, params).fetchone()
        return row[0] if row else None

    @staticmethod
    def _read(body: Any) -> Result | None:
        if body is None:
            return None
        try:
            result = Result.model_validate(body)
        except ValueError:
            return None
        return result.model_copy(update={"cached": True})

    def get(self, key: str) -> Result | None:
        """The accepted result under ``key``."""
        return self._read(
            self._one("SELECT body FROM kf_entries WHERE key = %s AND kind = 'result'", (key,))
        )

    def get_recent(self, key: str) -> Result | None:
        """A flagged result still inside its time to live."""
        sql = f"SELECT body FROM kf_entries WHERE key = %s AND kind = 'flagged' AND {_LIVE}"
        return self._read(self._one(sql, (key,)))

    def get_answers(self, key: str) -> Result | None:
        """The result kept with its raw answers."""
        sql = "SELECT body FROM kf_entries WHERE key = %s AND kind = 'answers'"
        return self._read(self._one(sql, (key,)))

    def _upsert(
        self, key: str, kind: str, result: Result, scope: str | None, ttl: float | None
    ) -> None:
        body = json.loads(result.model_copy(update={"cached": False}).model_dump_json())
        with self._storage(), self._pool.connection() as conn:
            conn.execute(
                "INSERT INTO kf_entries (key, kind, paper_id, scope, prompt, model, status, "
                "expires_at, body) VALUES (%s, %s, %s, %s, %s, %s, %s, "
                "CASE WHEN %s::float8 IS NULL THEN NULL "
                "ELSE now() + %s::float8 * interval '1 second' END, %s) "
                "ON CONFLICT (key, kind) DO UPDATE SET paper_id = EXCLUDED.paper_id, "
                "scope = EXCLUDED.scope, prompt = EXCLUDED.prompt, model = EXCLUDED.model, "
                "status = EXCLUDED.status, created_at = now(), expires_at = EXCLUDED.expires_at, "
                "body = EXCLUDED.body",
                (
                    key,
                    kind,
                    result.paper_id,
                    scope,
                    result.prompt.ref,
                    result.model,
                    result.status,
                    ttl,
                    ttl,
                    Jsonb(body),
                ),
            )

    def put(
        self, key: str, result: Result, *, scope: str | None = None, recent_ttl_s: float = 300.0
    ) -> None:
        """Accepted results for good; flagged ones until ``recent_ttl_s`` has passed."""
        if result.status == "ok":
            self._upsert(key, "result", result, scope, None)
        else:
            self._upsert(key, "flagged", result, scope, recent_ttl_s)

    def put_answers(self, key: str, result: Result) -> None:
        """Keep the raw answers (any status, no expiry) for re-judging."""
        self._upsert(key, "answers", result, None, None)

    def lookup(self, paper_id: str, scope: str) -> str | None:
        """The key of the paper's latest live result under ``scope``."""
        sql = (
            "SELECT key FROM kf_entries WHERE paper_id = %s AND scope = %s "
            f"AND kind IN ('result', 'flagged') AND {_LIVE} ORDER BY created_at DESC LIMIT 1"
        )
        found = self._one(sql, (paper_id, scope))
        return str(found) if found is not None else None

    def __contains__(self, key: str) -> bool:
        sql = "SELECT 1 FROM kf_entries WHERE key = %s AND kind = 'result'"
        return self._one(sql, (key,)) is not None

    def add_report(self, key: str, report: dict[str, Any], *, tag: str) -> bool:
        """A reader's report, at most ``MAX_REPORTS_PER_RESULT`` per result."""
        with self._storage(), self._pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (key,))
            count = conn.execute("SELECT count(*) FROM kf_reports WHERE key = %s", (key,))
            row = count.fetchone()
            if row is not None and row[0] >= MAX_REPORTS_PER_RESULT:
                return False
            conn.execute(
                "INSERT INTO kf_reports (key, prompt, body) VALUES (%s, %s, %s)",
                (key, tag, Jsonb(report)),
            )
        return True

    def reports(self) -> list[dict[str, Any]]:
        """Every reader report, oldest first."""
        with self._storage(), self._pool.connection() as conn:
            rows = conn.execute("SELECT key, body FROM kf_reports ORDER BY id").fetchall()
        return [{**body, "key": key} for key, body in rows]

    def _counts(self, prompt: str | None) -> dict[str, dict[str, int]]:
        where = f"WHERE {_LIVE}" + (" AND prompt = %s" if prompt else "")
        with self._storage(), self._pool.connection() as conn:
            rows = conn.execute(
                f"SELECT kind, prompt, count(*) FROM kf_entries {where} GROUP BY kind, prompt",
                (prompt,) if prompt else (),
            ).fetchall()
        counts: dict[str, dict[str, int]] = {kind: {} for kind in _KIND_COUNTS.values()}
        for kind, tag, n in rows:
            counts[_KIND_COUNTS[kind]][tag] = n
        return counts

    def stats(self) -> dict[str, Any]:
        """Counts by SQL, never by scanning."""
        counts = self._counts(None)
        size = self._one("SELECT pg_total_relation_size('kf_entries')", ())
        return {
            "directory": self.directory,
            "entries": sum(counts["results"].values()),
            "flagged": sum(counts["flagged"].values()),
            "stored_answers": sum(counts["answers"].values()),
            "size_bytes": int(size or 0),
            "by_prompt": counts["results"],
            "flagged_by_prompt": counts["flagged"],
        }

    def clear(self, prompt: str | None = None) -> dict[str, int]:
        """Delete every entry, or one prompt version's; counts of what went."""
        counts = self._counts(prompt)
        with self._storage(), self._pool.connection() as conn:
            if prompt:
                conn.execute("DELETE FROM kf_entries WHERE prompt = %s", (prompt,))
            else:
                conn.execute("DELETE FROM kf_entries")
        return {kind: sum(by_prompt.values()) for kind, by_prompt in counts.items()}

    def _claim(self, key: str) -> bool:
        sql = (
            "INSERT INTO kf_claims (key, holder, expires_at) "
            "VALUES (%s, %s, now() + %s * interval '1 second') "
            "ON CONFLICT (key) DO UPDATE SET holder = EXCLUDED.holder, "
            "expires_at = EXCLUDED.expires_at WHERE kf_claims.expires_at < now() "
            "RETURNING holder"
        )
        return bool(self._one(sql, (key, self._holder, self.lease_s)) == self._holder)

    @contextmanager
    def single_flight(self, key: str) -> Iterator[None]:
        """A claim row with a lease: one holder per key on any machine; the others poll until
        it is gone (done, or expired with a dead holder)."""
        while not self._claim(key):
            time.sleep(self.poll_s)
        try:
            yield
        finally:
            sql = "DELETE FROM kf_claims WHERE key = %s AND holder = %s"
            with self._storage(), self._pool.connection() as conn:
                conn.execute(sql, (key, self._holder))

    def producers(self) -> dict[str, tuple[str, str, str, str]]:
        """Paper id → (prompt ref, prompt sha256, model, backend) of its latest accepted
        result, by SQL: what ``batch --stale-only`` compares with the current run."""
        sql = (
            "SELECT DISTINCT ON (paper_id) paper_id, prompt, body->'prompt'->>'sha256', model, "
            "body->>'backend' FROM kf_entries WHERE kind = 'result' "
            "ORDER BY paper_id, created_at DESC"
        )
        with self._storage(), self._pool.connection() as conn:
            rows = conn.execute(sql).fetchall()
        return {row[0]: (row[1], row[2] or "", row[3], row[4] or "") for row in rows}

    def served(self) -> list[dict[str, str]]:
        """The served configurations, newest first (see ``ResultStore.served``)."""
        value = self._one("SELECT value FROM kf_meta WHERE name = 'served'", ())
        return list(json.loads(value)) if value else []

    def set_served(self, history: list[dict[str, str]]) -> None:
        """Replace the served configurations (one statement: servers see old or new)."""
        with self._storage(), self._pool.connection() as conn:
            conn.execute(
                "INSERT INTO kf_meta (name, value) VALUES ('served', %s) "
                "ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
                (json.dumps(history),),
            )

    def take_token(self, client: str, per_minute: float, burst: float) -> float | None:
        """A token bucket per client shared by every server: None if a token was taken, else
        the seconds until one is available. One statement, so concurrent servers cannot both
        spend the last token."""
        rate = per_minute / 60.0
        refill = "LEAST(%(burst)s, kf_rate.tokens + "
        refill += "EXTRACT(EPOCH FROM now() - kf_rate.updated_at) * %(rate)s)"
        taken = self._one(
            "INSERT INTO kf_rate (client, tokens, updated_at) "
            "VALUES (%(client)s, %(burst)s - 1, now()) "
            f"ON CONFLICT (client) DO UPDATE SET tokens = {refill} - 1, updated_at = now() "
            f"WHERE {refill} >= 1 RETURNING tokens",
            {"client": client, "burst": burst, "rate": rate},
        )
        if taken is not None:
            return None
        sql = f"SELECT {refill} FROM kf_rate WHERE client = %(client)s"
        current = self._one(sql, {"client": client, "burst": burst, "rate": rate}) or 0.0
        return (1 - float(current)) / rate if rate else 60.0

    def close(self) -> None:
        """Close the pool's connections."""
        self._pool.close()
