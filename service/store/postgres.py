"""The shared store: PostgreSQL with pgvector, for several replicas (QUOTES_STORE_URL=postgresql://…).

Search runs in the database: top-k is an ORDER BY cosine distance over the HNSW index, or an exact
scan while the store holds fewer than `EXACT_MAX_VARIANTS` variants (where the scan is cheap and an
approximate answer would be a needless difference from SQLite); the verbatim lookup is a btree on
the wording's key and a GIN full-text index. A worker keeps no copy of the store, only a cached
speaker registry, checked against the registry version on every read.

Every write is one transaction under a transaction-level advisory lock, so adds from every replica
are applied one at a time (canonicalisation compares each add with what is stored), while their
extraction and encoding, done before, run in parallel. A killed client's transaction is rolled
back by the server. Replicas see each other's writes at once: every read starts by reading the
store's version, and nothing is cached across versions.

psycopg 3 with its connection pool (one per process, opened after gunicorn forks); pgvector's
adapters for the vector type.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from . import migrations
from .base import Hits, Reader, Row, Store, StoreError, Writer, initial_meta
from .sql import SqlWriter

log = logging.getLogger(__name__)

# Below this many variants search is an exact scan; from here on the HNSW index answers. pgvector's
# scan costs about 3 us per variant here (5.7 ms at 1,600, 26 ms at 8,000, against 2 to 8 ms for
# HNSW; docs/store-scale.md), so exactness is kept only while it is that cheap.
EXACT_MAX_VARIANTS = 2_000
# HNSW candidates per query: at least this many, and at least k (pgvector returns at most ef_search
# rows). At 1M quotes (1.62M variants, m 16, ef_construction 64) recall@10 against exact search was
# 0.905 at 100, 0.949 at 200, 0.966 at 300 and 0.973 at 400, top-10 p50 about 8-12, 9-17, 15 and
# 24 ms on the loaded 2-core machine (docs/store-scale.md): 300 is the least that keeps 0.95.
EF_SEARCH = 300
EF_SEARCH_MAX = 1000  # pgvector's limit
# pg_advisory_xact_lock keys: one for writes, one for schema migrations.
WRITE_LOCK = 0x51_55_4F_54_45_53  # "QUOTES"
MIGRATE_LOCK = WRITE_LOCK + 1
_UPSERT = "ON CONFLICT (key) DO UPDATE SET value = excluded.value"


def redact(url: str) -> str:
    """The URL without its password, for messages and /v1/info."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[-1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def _psycopg() -> Any:
    import psycopg  # here: a SQLite deployment never imports it

    return psycopg


class PostgresStore(Store):
    backend = "postgresql"

    def __init__(self, url: str, model_name: str, model_revision: str, *, pool_size: int = 4) -> None:
        super().__init__()
        self.url = url
        self.model_name = model_name
        self.model_revision = model_revision
        psycopg = _psycopg()
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
                self.dim = self._open(conn)
        except psycopg.OperationalError as exc:
            raise StoreError(f"cannot connect to the quote store at {redact(url)}: {_first_line(exc)}") from None
        from pgvector.psycopg import register_vector
        from psycopg_pool import ConnectionPool

        self.pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max(1, pool_size),
            kwargs={"autocommit": True},
            configure=register_vector,
            name="quotes-store",
            open=True,
        )

    @classmethod
    def create(cls, url: str, model_name: str, model_revision: str, dim: int, **meta: str) -> PostgresStore:
        """A new, empty store in the database at `url` (which must hold none yet)."""
        psycopg = _psycopg()
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn, conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
                if conn.execute("SELECT to_regclass('meta')").fetchone()[0] is not None:
                    raise StoreError(f"the database at {redact(url)} already holds a quote store")
                migrations.pg_migrate(conn, 0, dim)
                rows = initial_meta(migrations.LATEST, model_name, model_revision, dim, **meta)
                with conn.cursor() as cur:
                    cur.executemany(f"INSERT INTO meta (key, value) VALUES (%s, %s) {_UPSERT}", rows)
        except psycopg.OperationalError as exc:
            raise StoreError(f"cannot connect to the quote store at {redact(url)}: {_first_line(exc)}") from None
        return cls(url, model_name, model_revision)

    @staticmethod
    def exists(url: str) -> bool:
        """Whether the database at `url` holds a quote store (it is reachable, or this raises StoreError)."""
        psycopg = _psycopg()
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
                return conn.execute("SELECT to_regclass('meta')").fetchone()[0] is not None
        except psycopg.OperationalError as exc:
            raise StoreError(f"cannot connect to the quote store at {redact(url)}: {_first_line(exc)}") from None

    @property
    def location(self) -> str:
        return redact(self.url)

    def close(self) -> None:
        self.pool.close()

    # -- opening and upgrading -------------------------------------------------------------------

    def _open(self, conn: Any) -> int:
        if conn.execute("SELECT to_regclass('meta')").fetchone()[0] is None:
            raise StoreError(
                f"no quote store in the database at {self.location}: build one with `python -m service build`"
            )
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        schema = int(meta.get("schema_version") or 0)
        if not 1 <= schema <= migrations.LATEST:
            raise StoreError(
                f"the store at {self.location} has schema {meta.get('schema_version')!r}; this version reads 1 to "
                f"{migrations.LATEST}: update the service"
            )
        if (meta.get("model_name"), meta.get("model_revision")) != (self.model_name, self.model_revision):
            raise StoreError(
                f"the store at {self.location} was built with model {meta.get('model_name')} revision "
                f"{meta.get('model_revision')}, but the service runs {self.model_name} revision {self.model_revision}; "
                "vectors of two models cannot be compared: build a new store with `python -m service build`"
            )
        if schema < migrations.LATEST:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
                current = int(conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])
                if current < migrations.LATEST:  # another process may have upgraded it meanwhile
                    migrations.pg_migrate(conn, current, int(meta["embedding_dim"]))
                    log.info("store upgraded", extra={"store": self.location, "from": current, "to": migrations.LATEST})
        return int(meta["embedding_dim"])

    # -- transactions ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def read(self) -> Iterator[Reader]:
        with self.pool.connection() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield _PgWriter(self, conn)

    @contextlib.contextmanager
    def write(self) -> Iterator[Writer]:
        with self.pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            writer = _PgWriter(self, conn)
            yield writer
            writer.flush()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class _PgWriter(SqlWriter):
    SPEAKER_ORDER = "seq"
    BYTEWISE = ' COLLATE "C"'  # a locale's collation would skip the dashes of dates

    def __init__(self, store: PostgresStore, conn: Any) -> None:
        super().__init__(conn)
        self.store = store

    def _all(self, sql: str, params: Sequence[Any] = (), binary: bool = False) -> list[tuple[Any, ...]]:
        with self.conn.cursor(binary=binary) as cur:
            return list(cur.execute(sql.replace("?", "%s"), params).fetchall())

    def _dicts(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        from psycopg.rows import dict_row

        with self.conn.cursor(row_factory=dict_row) as cur:
            return list(cur.execute(sql.replace("?", "%s"), params).fetchall())

    def _run(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self.conn.cursor() as cur:
            cur.execute(sql.replace("?", "%s"), params)
            return int(cur.rowcount)

    def _run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self.conn.cursor() as cur:
            cur.executemany(sql.replace("?", "%s"), rows)  # psycopg pipelines them: one round trip

    def _in(self, column: str, values: Sequence[Any]) -> tuple[str, Any]:
        return f"{column} = ANY(?)", list(values)

    def _vector(self, value: Any) -> np.ndarray:
        return np.asarray(value.to_numpy(), dtype=np.float32)

    def _embedding(self, vector: np.ndarray) -> Any:
        return np.asarray(vector, dtype=np.float32)

    def _has_words(self, words: list[str]) -> tuple[str, Any]:
        return "to_tsvector('simple'::regconfig, norm) @@ plainto_tsquery('simple'::regconfig, ?)", " ".join(words)

    def search(self, vectors: np.ndarray, k: int) -> list[Hits]:
        queries = [np.asarray(v, dtype=np.float32) for v in vectors]
        if not queries:
            return []
        exact = self.state().variants < EXACT_MAX_VARIANTS
        if exact:  # a plain scan: the planner would otherwise walk the HNSW graph (approximate)
            self._run("SET LOCAL enable_indexscan = off")
        else:
            self._run(f"SET LOCAL hnsw.ef_search = {min(EF_SEARCH_MAX, max(EF_SEARCH, int(k)))}")
        try:
            rows = self._all(
                "SELECT q.i, v.id, v.quote_id, v.embedding FROM unnest(?::vector[]) WITH ORDINALITY AS q(vec, i) "
                "CROSS JOIN LATERAL (SELECT id, quote_id, embedding FROM variants ORDER BY embedding <=> q.vec "
                "LIMIT ?) v ORDER BY q.i",
                (queries, int(k)),
                binary=True,
            )
        finally:
            if exact:
                self._run("SET LOCAL enable_indexscan = on")
        grouped: list[list[tuple[Any, ...]]] = [[] for _ in queries]
        for r in rows:
            grouped[int(r[0]) - 1].append(r)
        return [
            Hits(
                np.asarray([r[1] for r in found], dtype=np.int64),
                [r[2] for r in found],
                np.vstack([self._vector(r[3]) for r in found]) if found else np.zeros((0, self.store.dim), np.float32),
                len(found) < k,
            )
            for found in grouped
        ]
