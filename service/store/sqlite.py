"""The embedded store: one SQLite file (the default; `./run serve` needs nothing else).

Every write is one transaction (BEGIN IMMEDIATE: one writer at a time, readers go on). The rollback
journal with full sync makes a committed add survive power loss, and lets a build replace the file
by rename (service/build.py) without a write-ahead log of the old file lying next to it.

Search runs in the process, on an `IdIndex` (service/vectors.py) over the variants' vectors: built
once from the file, then updated incrementally from `variant_changes`, the change log that triggers
fill in the same transaction as each write. A request that finds the index behind applies the
missing rows itself (a few per add) unless another thread is already doing so, in which case it
searches the index as it is: no request waits for another's update. Merging the accumulated rows
into a new base index (a rebuild, 40 s for a compact index at 1M quotes) runs in a background
thread. The verbatim lookup is an index lookup (`norm_key`) and an FTS5 query for the segment's rarest words.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..vectors import INDEX_KINDS, IdIndex
from . import migrations
from .base import Hits, Reader, Row, Store, StoreError, Writer, initial_meta
from .sql import SqlWriter

log = logging.getLogger(__name__)


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.execute("PRAGMA synchronous = FULL")
    return conn


def _vector(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.float32)


class SqliteStore(Store):
    """A quote store in one SQLite file. `vector_index`: exact, compact or auto (service/vectors.py)."""

    backend = "sqlite"

    def __init__(self, path: Path, model_name: str, model_revision: str, *, vector_index: str = "auto") -> None:
        super().__init__()
        if vector_index not in INDEX_KINDS:
            raise ValueError(f"unknown vector index {vector_index!r}: expected one of {', '.join(INDEX_KINDS)}")
        self.path = Path(path)
        self.model_name = model_name
        self.model_revision = model_revision
        self.vector_index = vector_index
        self._index: IdIndex | None = None
        self._epoch: str | None = None  # meta.built_at of the file the index was loaded from
        self._index_lock = threading.Lock()
        self._local = threading.local()
        self._merging: threading.Thread | None = None
        self.dim = self._open()

    @classmethod
    def create(cls, path: Path, model_name: str, model_revision: str, dim: int, **meta: str) -> SqliteStore:
        """A new, empty store file at the latest schema (the file must not exist)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            raise StoreError(f"{path} already exists")
        with contextlib.closing(connect(path)) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                migrations.sqlite_migrate(conn, 0)
                rows = initial_meta(migrations.LATEST, model_name, model_revision, dim, **meta)
                conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", rows)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        return cls(path, model_name, model_revision)

    @property
    def location(self) -> str:
        return str(self.path)

    # -- opening and upgrading -------------------------------------------------------------------

    def _open(self) -> int:
        if not self.path.is_file():
            raise StoreError(f"no quote store at {self.path}: build one with `python -m service build`")
        try:
            with contextlib.closing(connect(self.path)) as conn:
                meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
                schema = int(meta.get("schema_version") or 0)
                self._check(meta, schema)
                if schema < migrations.LATEST:
                    self._upgrade(conn)
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"{self.path} is not a quote store ({exc}): rebuild it with `python -m service build`"
            ) from None
        return int(meta["embedding_dim"])

    def _check(self, meta: dict[str, str], schema: int) -> None:
        if not 1 <= schema <= migrations.LATEST:
            raise StoreError(
                f"{self.path} has schema {meta.get('schema_version')!r}; this version reads 1 to {migrations.LATEST}: "
                "update the service, or rebuild the store with `python -m service build`"
            )
        if (meta.get("model_name"), meta.get("model_revision")) != (self.model_name, self.model_revision):
            raise StoreError(
                f"{self.path} was built with model {meta.get('model_name')} revision {meta.get('model_revision')}, "
                f"but the service runs {self.model_name} revision {self.model_revision}; vectors of two models "
                "cannot be compared: rebuild the store with `python -m service build`"
            )

    def _upgrade(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Read again under the write lock: another process may have upgraded it meanwhile.
            current = int(conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])
            if current < migrations.LATEST:
                migrations.sqlite_migrate(conn, current)
                log.info("store upgraded", extra={"store": str(self.path), "from": current, "to": migrations.LATEST})
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # -- transactions ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection, kept between calls (opening one costs more than a read). A new
        one when the file was replaced (a build renames a new file over it) or when this thread is
        already inside a transaction."""
        try:
            inode = self.path.stat().st_ino
        except FileNotFoundError:
            raise StoreError(f"no quote store at {self.path}: build one with `python -m service build`") from None
        cached: tuple[sqlite3.Connection, int] | None = getattr(self._local, "conn", None)
        if cached is not None and cached[1] == inode and not cached[0].in_transaction:
            yield cached[0]
            return
        conn = connect(self.path)
        if cached is not None and cached[0].in_transaction:
            with contextlib.closing(conn):  # a nested block: its own connection, closed after it
                yield conn
            return
        if cached is not None:
            cached[0].close()
        self._local.conn = (conn, inode)
        yield conn

    @contextlib.contextmanager
    def read(self) -> Iterator[Reader]:
        with self._connection() as conn:
            conn.execute("BEGIN")  # the first read takes the shared lock: one consistent view
            try:
                yield _SqliteWriter(self, conn)
            finally:
                conn.execute("ROLLBACK")

    @contextlib.contextmanager
    def write(self) -> Iterator[Writer]:
        with self._connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                writer = _SqliteWriter(self, conn, writing=True)
                yield writer
                writer.flush()
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        """Closes this thread's connection (other threads' close with their thread)."""
        cached = getattr(self._local, "conn", None)
        if cached is not None:
            cached[0].close()
            self._local.conn = None

    # -- the in-process vector index -------------------------------------------------------------

    def refresh(self) -> None:
        with self.read() as r:
            assert isinstance(r, _SqliteWriter)
            self.current_index(r.conn, wait=True)

    def current_kind(self) -> str | None:
        """The kind of the base index now in use ("auto" resolved), None before the first search."""
        return self._index.kind if self._index is not None else None

    def current_index(self, conn: sqlite3.Connection, wait: bool) -> IdIndex:
        """The index, brought up to the change log as `conn` sees it. With `wait=False` a thread
        that finds another one updating it searches the index as it is."""
        index = self._index
        latest, epoch = conn.execute(
            "SELECT (SELECT COALESCE(MAX(seq), 0) FROM variant_changes), "
            "(SELECT value FROM meta WHERE key = 'built_at')"
        ).fetchone()
        fresh = index is not None and self._epoch == epoch
        if fresh and index is not None and index.seq >= latest:
            return index
        if not self._index_lock.acquire(blocking=wait or not fresh):
            assert index is not None
            return index
        try:
            index = self._index
            if index is None or self._epoch != epoch:  # first use, or a build replaced the file
                index = self._load_index(conn)
                self._epoch = epoch
            elif index.seq < latest:
                index = self._apply_changes(conn, index)
            self._index = index
        finally:
            self._index_lock.release()
        if index.merge_due():
            self._start_merge()
        return index

    def _load_index(self, conn: sqlite3.Connection) -> IdIndex:
        seq = int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM variant_changes").fetchone()[0])
        rows = conn.execute("SELECT id, embedding FROM variants ORDER BY id").fetchall()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        matrix = np.zeros((len(rows), self.dim), dtype=np.float32)
        for i, r in enumerate(rows):
            matrix[i] = _vector(r[1])
        del rows
        return IdIndex.build(ids, matrix, self.vector_index, seq)

    def _apply_changes(self, conn: sqlite3.Connection, index: IdIndex) -> IdIndex:
        changes = conn.execute(
            "SELECT seq, variant_id, added FROM variant_changes WHERE seq > ? ORDER BY seq", (index.seq,)
        ).fetchall()
        if not changes:
            return index
        last: dict[int, bool] = {}
        removed: set[int] = set()
        for _, variant_id, added in changes:
            last[variant_id] = bool(added)
            if not added:
                removed.add(variant_id)
        added_ids = sorted(v for v, present in last.items() if present)
        vectors: dict[int, np.ndarray] = {}
        ids = json.dumps(added_ids)
        for r in conn.execute(
            "SELECT id, embedding FROM variants WHERE id IN (SELECT value FROM json_each(?))", (ids,)
        ):
            vectors[r[0]] = _vector(r[1])
        present = [v for v in added_ids if v in vectors]
        matrix = np.vstack([vectors[v] for v in present]) if present else np.zeros((0, self.dim), dtype=np.float32)
        return index.with_changes(
            np.asarray(present, dtype=np.int64), matrix, np.asarray(sorted(removed), dtype=np.int64), changes[-1][0]
        )

    def _start_merge(self) -> None:
        with self._index_lock:
            if self._merging is not None and self._merging.is_alive():
                return
            self._merging = threading.Thread(target=self._merge, name="vector-index-merge", daemon=True)
            self._merging.start()

    def _merge(self) -> None:
        """A new base index from every stored vector, built while requests use the current one."""
        try:
            with contextlib.closing(connect(self.path)) as conn:
                conn.execute("BEGIN")
                try:
                    merged = self._load_index(conn)
                finally:
                    conn.execute("ROLLBACK")
            with self._index_lock, contextlib.closing(connect(self.path)) as conn:
                conn.execute("BEGIN")
                try:
                    self._index = self._apply_changes(conn, merged)  # what was added while it was built
                finally:
                    conn.execute("ROLLBACK")
            log.info("vector index merged", extra={"rows": merged.size, "kind": merged.kind})
        except Exception:
            log.exception("merging the vector index failed; the layered index stays in use")

    def wait_for_merge(self, timeout: float | None = None) -> None:
        """For tests and benchmarks: until a background merge, if any, has finished."""
        merging = self._merging
        if merging is not None:
            merging.join(timeout)


class _SqliteWriter(SqlWriter):
    SPEAKER_ORDER = "rowid"
    BYTEWISE = ""  # SQLite compares text bytewise already

    def __init__(self, store: SqliteStore, conn: sqlite3.Connection, writing: bool = False) -> None:
        super().__init__(conn)
        self.store = store
        self.writing = writing

    def _all(self, sql: str, params: Sequence[Any] = (), binary: bool = False) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.conn.execute(sql, params).fetchall()]

    def _dicts(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return list(self.conn.execute(sql, params).fetchall())

    def _run(self, sql: str, params: Sequence[Any] = ()) -> int:
        return int(self.conn.execute(sql, params).rowcount)

    def _run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.conn.executemany(sql, rows)

    def _in(self, column: str, values: Sequence[Any]) -> tuple[str, Any]:
        return f"{column} IN (SELECT value FROM json_each(?))", json.dumps(list(values))

    def _vector(self, value: Any) -> np.ndarray:
        return _vector(value)

    def _embedding(self, vector: np.ndarray) -> Any:
        return np.asarray(vector, dtype=np.float32).tobytes()

    def _has_words(self, words: list[str]) -> tuple[str, Any]:
        # Each word an FTS5 string (a norm holds no double quote), all of them required.
        query = " AND ".join(f'"{w}"' for w in words)
        return "id IN (SELECT rowid FROM variants_fts WHERE variants_fts MATCH ?)", query

    def search(self, vectors: np.ndarray, k: int) -> list[Hits]:
        index = self.store.current_index(self.conn, wait=self.writing)
        found = index.search(np.asarray(vectors, dtype=np.float32), k)
        wanted = sorted({int(i) for ids in found for i in ids.tolist()})
        exact = index.vectors(np.asarray(wanted, dtype=np.int64))
        where, param = self._in("id", wanted)
        rows = self._all(
            f"SELECT id, quote_id{'' if exact is not None else ', embedding'} FROM variants WHERE {where}", (param,)
        )
        quote_of = {r[0]: r[1] for r in rows}
        stored = dict(zip(wanted, exact, strict=True)) if exact is not None else {r[0]: _vector(r[2]) for r in rows}
        out = []
        for ids in found:
            # A row the index still holds but the file no longer does (removed since) is dropped.
            kept = [int(i) for i in ids.tolist() if int(i) in quote_of]
            out.append(
                Hits(
                    np.asarray(kept, dtype=np.int64),
                    [quote_of[i] for i in kept],
                    np.vstack([stored[i] for i in kept]) if kept else np.zeros((0, self.store.dim), np.float32),
                    len(ids) < k,
                )
            )
        return out
