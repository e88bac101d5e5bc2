"""Schema migrations upgrade an existing store in place, in both backends.

tests/data/store-schema1.sqlite3 is the corpus store exactly as the first release wrote it (schema
1, built by `python -m service build` at commit 08a30aa). The PostgreSQL case loads the same rows
into a database at schema 1 (service/store/migrations.py's first step) and opens it.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import sqlite3
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pgdb
import psycopg
import pytest
from pgvector.psycopg import register_vector

from service.corpus import ArticleMeta, make_article
from service.embed import Embedder
from service.ingest import add_article
from service.match import Matcher
from service.records import CueClass
from service.store import SqliteStore, Store, StoreError, migrations, open_store
from tests.conftest import REPO_ROOT

SCHEMA_1 = REPO_ROOT / "tests" / "data" / "store-schema1.sqlite3"
PESKOV = (
    "Kremlin spokesman Dmitry Peskov stressed that Moscow will keep up a constant dialogue with the new Syrian "
    "authorities."
)


def v1_rows() -> dict[str, list[tuple[Any, ...]]]:
    with contextlib.closing(sqlite3.connect(SCHEMA_1)) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("1",)
        return {
            table: conn.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()
            for table in ("meta", "articles", "speakers", "aliases", "quotes", "variants")
        }


def v1_statements() -> set[tuple[str, str, str | None, str]]:
    """(quote id, wording, speaker, article) of every variant, as schema 1 holds them."""
    return {(r[1], r[4], r[8], r[2]) for r in v1_rows()["variants"]}


def statements(store: Store) -> set[tuple[str, str, str | None, str]]:
    _, quotes = store.quotes(limit=10_000)
    return {(q.id, v.text, v.speaker_id, v.source.article_id) for q in quotes for v in q.variants}


def check_upgraded(store: Store, embedder: Embedder, nlp: object) -> None:
    info = store.info()
    assert info["schema_version"] == migrations.LATEST
    assert statements(store) == v1_statements(), "every quote and variant, with its id, is still there"
    v1 = v1_rows()
    assert (info["articles"], info["quotes"], info["variants"], info["speakers"]) == tuple(
        len(v1[t]) for t in ("articles", "quotes", "variants", "speakers")
    )
    assert info["store_version"] == int(dict((k, v) for k, v in v1["meta"])["store_version"])
    _, quotes = store.quotes(limit=10_000)
    assert all(v.cue_class is CueClass.SPEECH and v.content == () for q in quotes for v in q.variants)
    # The wording index was filled from the old rows: a stored wording is found word for word.
    matcher = Matcher(store, embedder, nlp)
    quote = store.quotes(search="deep strategic interests")[1][0]
    (m,) = matcher.match_text(f'"{quote.text}"')
    assert m.label == "verbatim" and m.quote is not None and m.quote.id == quote.id
    (m,) = matcher.match_text(PESKOV)
    assert m.label == "paraphrase" and m.quote is not None and m.quote.speaker_id == "dmitry-peskov"
    # And it takes new articles.
    text = '"The harvest in the north will be the largest in a decade," Dmitry Peskov told reporters.'
    report = add_article(store, make_article(text, ArticleMeta("Wire", "https://example.org/h", None)), embedder, nlp)
    assert report.status == "added" and report.store_version == info["store_version"] + 1
    (m,) = matcher.match_text(text)
    assert m.label == "verbatim" and m.quote is not None and m.quote.id == report.new_quotes[0]


def test_a_schema_1_sqlite_store_is_upgraded_in_place(tmp_path: Path, embedder: Embedder, nlp: object) -> None:
    path = tmp_path / "quotes.sqlite3"
    shutil.copy(SCHEMA_1, path)
    store = SqliteStore(path, embedder.name, embedder.revision)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    check_upgraded(store, embedder, nlp)
    again = SqliteStore(path, embedder.name, embedder.revision)  # opening it again changes nothing
    assert again.info() == store.info()


def test_a_failed_upgrade_leaves_the_old_store(tmp_path: Path, embedder: Embedder, monkeypatch: Any) -> None:
    path = tmp_path / "quotes.sqlite3"
    shutil.copy(SCHEMA_1, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()

    def broken(conn: sqlite3.Connection) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(migrations, "_sqlite_backfill", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        SqliteStore(path, embedder.name, embedder.revision)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


def test_processes_opening_an_old_store_at_once_upgrade_it_once(tmp_path: Path, embedder: Embedder) -> None:
    path = tmp_path / "quotes.sqlite3"
    shutil.copy(SCHEMA_1, path)
    opened: list[Store] = []
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            opened.append(SqliteStore(path, embedder.name, embedder.revision))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(opened) == 4
    assert {s.info()["schema_version"] for s in opened} == {migrations.LATEST}
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT COUNT(*) FROM variant_changes").fetchone()[0] == 0  # no duplicate steps
        assert conn.execute("SELECT COUNT(*) FROM variants_fts").fetchone()[0] == len(v1_rows()["variants"])


def test_a_store_of_a_newer_schema_is_refused(tmp_path: Path, embedder: Embedder) -> None:
    path = tmp_path / "quotes.sqlite3"
    shutil.copy(SCHEMA_1, path)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
        conn.commit()
    with pytest.raises(StoreError, match="update the service"):
        SqliteStore(path, embedder.name, embedder.revision)


def load_schema_1_into_postgres(url: str) -> None:
    """The schema-1 rows in a PostgreSQL database at schema 1, as that schema would hold them."""
    rows = v1_rows()
    dim = int(dict(rows["meta"])["embedding_dim"])
    with psycopg.connect(url, autocommit=True) as conn:
        with conn.transaction():
            migrations.pg_migrate(conn, 0, dim, target=1)
        register_vector(conn)
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany("INSERT INTO meta VALUES (%s, %s)", rows["meta"])
            cur.executemany(f"INSERT INTO articles VALUES ({', '.join(['%s'] * 11)})", rows["articles"])
            cur.executemany("INSERT INTO speakers (id, name, kind, role) VALUES (%s, %s, %s, %s)", rows["speakers"])
            cur.executemany("INSERT INTO aliases VALUES (%s, %s, %s)", rows["aliases"])
            cur.executemany("INSERT INTO quotes VALUES (%s, %s)", rows["quotes"])
            cur.executemany(
                f"INSERT INTO variants VALUES ({', '.join(['%s'] * 11)})",
                [(*r[:10], np.frombuffer(r[10], dtype=np.float32)) for r in rows["variants"]],
            )
            # Identity columns continue after the ids loaded.
            cur.execute("SELECT setval(pg_get_serial_sequence('variants', 'id'), (SELECT MAX(id) FROM variants))")


def test_a_schema_1_postgres_store_is_upgraded_in_place(pg_server: str, embedder: Embedder, nlp: object) -> None:
    url = pgdb.new_database(pg_server, "schema1")
    load_schema_1_into_postgres(url)
    store = open_store(url, embedder.name, embedder.revision)
    try:
        check_upgraded(store, embedder, nlp)
    finally:
        store.close()
