"""Versioned schema migrations, one list per backend; a store is upgraded in place when opened.

`meta.schema_version` says which migrations a store has. Opening a store applies the missing ones in
order, all in one transaction (SQLite: BEGIN IMMEDIATE; PostgreSQL: under an advisory lock), so a
failed or interrupted upgrade leaves the store at its old version, and two processes opening an old
store at once upgrade it once. A store of a newer schema than this code knows is refused.

Version 1 is the schema of the first release (SQLite), and the same tables in PostgreSQL.
Version 2:
- variants keep what the extractor now says of a mention: its cue class, the clause an outlet
  attributes around a partial quote (`content`), where the source is named (`speaker_span`);
- the normalised wording (`norm`, canon.normalise_text) with a 64-bit key, indexed: the verbatim
  lookup and canonicalisation's same-words test are index lookups; a full-text index finds
  wordings that contain a segment (SQLite FTS5, PostgreSQL tsvector + GIN);
- PostgreSQL: an HNSW index (cosine) on the embeddings, so top-k runs in the database;
- SQLite: a change log of variants (`variant_changes`, filled by triggers), from which each process
  updates its in-memory vector index incrementally;
- speakers and aliases carry the registry version that stored them, and meta the registry version
  and row counts, so that an add can tell whether the registry changed under its extraction and a
  reader need not count rows.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from .. import canon
from .base import norm_key

LATEST = 2

_SQLITE_1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE articles (
    id TEXT PRIMARY KEY, url TEXT NOT NULL UNIQUE, outlet TEXT NOT NULL, title TEXT NOT NULL,
    published TEXT, language TEXT NOT NULL, file TEXT, wire TEXT, content_hash TEXT NOT NULL,
    text TEXT NOT NULL, added_at TEXT NOT NULL);
CREATE TABLE speakers (id TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL, role TEXT);
CREATE TABLE aliases (
    speaker_id TEXT NOT NULL REFERENCES speakers(id), alias TEXT NOT NULL, origin TEXT NOT NULL,
    PRIMARY KEY (speaker_id, alias));
CREATE TABLE quotes (id TEXT PRIMARY KEY, created_at TEXT NOT NULL);
CREATE TABLE variants (
    id INTEGER PRIMARY KEY, quote_id TEXT NOT NULL REFERENCES quotes(id),
    article_id TEXT NOT NULL REFERENCES articles(id), kind TEXT NOT NULL, text TEXT NOT NULL,
    spans TEXT NOT NULL, cue TEXT NOT NULL, speaker_mention TEXT NOT NULL,
    speaker_id TEXT REFERENCES speakers(id), confidence REAL NOT NULL, embedding BLOB NOT NULL);
CREATE INDEX variants_quote ON variants(quote_id);
CREATE INDEX variants_article ON variants(article_id);
CREATE INDEX variants_speaker ON variants(speaker_id);
"""

# Words are runs of anything but spaces in canon.normalise_text's output (letters, digits, "'", "_"):
# with these token characters and no diacritic folding, an FTS5 phrase is exactly a run of words.
SQLITE_FTS_TOKENIZE = "unicode61 remove_diacritics 0 tokenchars '''_'"

_SQLITE_2 = f"""
ALTER TABLE variants ADD COLUMN cue_class TEXT NOT NULL DEFAULT 'speech';
ALTER TABLE variants ADD COLUMN content TEXT;
ALTER TABLE variants ADD COLUMN speaker_span TEXT;
ALTER TABLE variants ADD COLUMN norm TEXT NOT NULL DEFAULT '';
ALTER TABLE variants ADD COLUMN norm_key INTEGER NOT NULL DEFAULT 0;
ALTER TABLE speakers ADD COLUMN registry_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE aliases ADD COLUMN registry_version INTEGER NOT NULL DEFAULT 0;
CREATE INDEX speakers_registry_version ON speakers(registry_version);
CREATE INDEX aliases_registry_version ON aliases(registry_version);
CREATE TABLE variant_changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, variant_id INTEGER NOT NULL,
                              added INTEGER NOT NULL);
--backfill--
CREATE INDEX variants_norm_key ON variants(norm_key);
CREATE VIRTUAL TABLE variants_fts USING fts5(norm, content='variants', content_rowid='id',
                                             tokenize="{SQLITE_FTS_TOKENIZE}");
INSERT INTO variants_fts(variants_fts) VALUES ('rebuild');
CREATE TRIGGER variants_added AFTER INSERT ON variants BEGIN
    INSERT INTO variants_fts(rowid, norm) VALUES (new.id, new.norm);
    INSERT INTO variant_changes(variant_id, added) VALUES (new.id, 1);
END;
CREATE TRIGGER variants_removed AFTER DELETE ON variants BEGIN
    INSERT INTO variants_fts(variants_fts, rowid, norm) VALUES ('delete', old.id, old.norm);
    INSERT INTO variant_changes(variant_id, added) VALUES (old.id, 0);
END;
INSERT OR IGNORE INTO meta (key, value) VALUES ('registry_version', '0');
INSERT OR REPLACE INTO meta (key, value) SELECT 'count_articles', COUNT(*) FROM articles;
INSERT OR REPLACE INTO meta (key, value) SELECT 'count_speakers', COUNT(*) FROM speakers;
INSERT OR REPLACE INTO meta (key, value) SELECT 'count_quotes', COUNT(*) FROM quotes;
INSERT OR REPLACE INTO meta (key, value) SELECT 'count_variants', COUNT(*) FROM variants;
"""


def _sqlite_statements(script: str) -> list[str]:
    """Statements of a script; a trigger body's inner semicolons stay inside its statement."""
    out: list[str] = []
    current: list[str] = []
    in_trigger = False
    for line in script.strip().splitlines():
        current.append(line)
        stripped = line.strip()
        if stripped.startswith("CREATE TRIGGER"):
            in_trigger = True
        if stripped.endswith(";") and (not in_trigger or stripped == "END;"):
            out.append("\n".join(current))
            current, in_trigger = [], False
        elif stripped == "--backfill--":
            out.append(stripped)
            current = []
    return out


def _sqlite_backfill(conn: sqlite3.Connection) -> None:
    rows = conn.execute("SELECT id, text FROM variants").fetchall()
    updates = []
    for variant_id, text in rows:
        norm = canon.normalise_text(text)
        updates.append((norm, norm_key(norm), variant_id))
    conn.executemany("UPDATE variants SET norm = ?, norm_key = ? WHERE id = ?", updates)


def sqlite_migrate(conn: sqlite3.Connection, current: int, target: int = LATEST) -> None:
    """Applies migrations current+1 .. target on a connection inside its open transaction."""
    scripts = {1: _SQLITE_1, 2: _SQLITE_2}
    for version in range(current + 1, target + 1):
        for statement in _sqlite_statements(scripts[version]):
            if statement == "--backfill--":
                _sqlite_backfill(conn)
            else:
                conn.execute(statement)  # executescript would commit the open transaction
        if version > 1:
            conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),))


# -- PostgreSQL ------------------------------------------------------------------------------------

# Speakers keep their insertion order in `seq` (SQLite's rowid): registry lookups that scan speakers
# take the first that fits, so both backends must list them alike.
_PG_1 = """
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE articles (
    id TEXT PRIMARY KEY, url TEXT NOT NULL UNIQUE, outlet TEXT NOT NULL, title TEXT NOT NULL,
    published TEXT, language TEXT NOT NULL, file TEXT, wire TEXT, content_hash TEXT NOT NULL,
    text TEXT NOT NULL, added_at TEXT NOT NULL);
CREATE TABLE speakers (seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE, id TEXT PRIMARY KEY,
                       name TEXT NOT NULL, kind TEXT NOT NULL, role TEXT);
CREATE TABLE aliases (
    speaker_id TEXT NOT NULL REFERENCES speakers(id), alias TEXT NOT NULL, origin TEXT NOT NULL,
    PRIMARY KEY (speaker_id, alias));
CREATE TABLE quotes (id TEXT PRIMARY KEY, created_at TEXT NOT NULL);
CREATE TABLE variants (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, quote_id TEXT NOT NULL REFERENCES quotes(id),
    article_id TEXT NOT NULL REFERENCES articles(id), kind TEXT NOT NULL, text TEXT NOT NULL,
    spans TEXT NOT NULL, cue TEXT NOT NULL, speaker_mention TEXT NOT NULL,
    speaker_id TEXT REFERENCES speakers(id), confidence DOUBLE PRECISION NOT NULL,
    embedding vector({dim}) NOT NULL);
CREATE INDEX variants_quote ON variants(quote_id);
CREATE INDEX variants_article ON variants(article_id);
CREATE INDEX variants_speaker ON variants(speaker_id);
"""

# The indexes search runs on (named here for bulk loads, which build them after the rows: see
# bench/synthetic.py). HNSW with pgvector's defaults (m 16, ef_construction 64); docs/store-scale.md
# has its recall.
PG_VARIANT_INDEXES = {
    "variants_norm_key": "CREATE INDEX variants_norm_key ON variants(norm_key)",
    "variants_norm_words": (
        "CREATE INDEX variants_norm_words ON variants USING gin (to_tsvector('simple'::regconfig, norm))"
    ),
    "variants_embedding": "CREATE INDEX variants_embedding ON variants USING hnsw (embedding vector_cosine_ops)",
}
_PG_2 = """
ALTER TABLE variants ADD COLUMN cue_class TEXT NOT NULL DEFAULT 'speech';
ALTER TABLE variants ADD COLUMN content TEXT;
ALTER TABLE variants ADD COLUMN speaker_span TEXT;
ALTER TABLE variants ADD COLUMN norm TEXT NOT NULL DEFAULT '';
ALTER TABLE variants ADD COLUMN norm_key BIGINT NOT NULL DEFAULT 0;
ALTER TABLE speakers ADD COLUMN registry_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE aliases ADD COLUMN registry_version BIGINT NOT NULL DEFAULT 0;
CREATE INDEX speakers_registry_version ON speakers(registry_version);
CREATE INDEX aliases_registry_version ON aliases(registry_version);
--backfill--
{variant_indexes};
INSERT INTO meta (key, value) VALUES ('registry_version', '0') ON CONFLICT (key) DO NOTHING;
INSERT INTO meta (key, value) SELECT 'count_articles', COUNT(*)::text FROM articles
    ON CONFLICT (key) DO UPDATE SET value = excluded.value;
INSERT INTO meta (key, value) SELECT 'count_speakers', COUNT(*)::text FROM speakers
    ON CONFLICT (key) DO UPDATE SET value = excluded.value;
INSERT INTO meta (key, value) SELECT 'count_quotes', COUNT(*)::text FROM quotes
    ON CONFLICT (key) DO UPDATE SET value = excluded.value;
INSERT INTO meta (key, value) SELECT 'count_variants', COUNT(*)::text FROM variants
    ON CONFLICT (key) DO UPDATE SET value = excluded.value;
"""


def _pg_backfill(conn: Any) -> None:
    rows = conn.execute("SELECT id, text FROM variants").fetchall()
    if not rows:
        return
    with conn.cursor() as cur:
        cur.execute("CREATE TEMPORARY TABLE norms (id BIGINT PRIMARY KEY, norm TEXT, norm_key BIGINT) ON COMMIT DROP")
        with cur.copy("COPY norms (id, norm, norm_key) FROM STDIN") as copy:
            for variant_id, text in rows:
                norm = canon.normalise_text(text)
                copy.write_row((variant_id, norm, norm_key(norm)))
        cur.execute("UPDATE variants v SET norm = n.norm, norm_key = n.norm_key FROM norms n WHERE v.id = n.id")


def pg_migrate(conn: Any, current: int, dim: int, target: int = LATEST) -> None:
    """Applies migrations current+1 .. target on a psycopg connection inside its open transaction."""
    scripts = {
        1: _PG_1.replace("{dim}", str(int(dim))),
        2: _PG_2.replace("{variant_indexes}", ";\n".join(PG_VARIANT_INDEXES.values())),
    }
    for version in range(current + 1, target + 1):
        for statement in _pg_statements(scripts[version]):
            if statement == "--backfill--":
                _pg_backfill(conn)
            else:
                conn.execute(statement)
        if version > 1:
            conn.execute("UPDATE meta SET value = %s WHERE key = 'schema_version'", (str(version),))


def _pg_statements(script: str) -> list[str]:
    out: list[str] = []
    for chunk in script.strip().split(";"):
        lines = [ln for ln in chunk.strip().splitlines() if ln.strip()]
        if not lines:
            continue
        if lines[0].strip() == "--backfill--":
            out.append("--backfill--")
            lines = lines[1:]
        if lines:
            out.append("\n".join(lines))
    return out
