"""The quote store: one SQLite file holding articles, speakers, aliases, canonical quotes and their
variants with embeddings.

Every write is one transaction. A build writes a new file next to the old one and renames it into
place, so an interrupted build leaves the previous store as it was; adding an article is a single
transaction, so an interrupted add leaves nothing behind. A store remembers the model and revision
that made its vectors and refuses to be opened with another.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sqlite3
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from . import canon
from .corpus import load_corpus
from .extract import extract_article
from .records import (
    Article,
    CanonicalQuote,
    MentionKind,
    QuoteMention,
    Source,
    Span,
    Speaker,
    SpeakerKind,
    Variant,
)
from .speakers import SpeakerRegistry

SCHEMA_VERSION = "1"
_SCHEMA = """
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


class StoreError(RuntimeError):
    """The store is missing, from another model or schema, or a write was refused; says the fix."""


class EmbedderLike(Protocol):
    name: str
    revision: str
    dim: int

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray: ...


@dataclass(frozen=True, slots=True)
class AddReport:
    article_id: str
    url: str
    status: str  # "added", "updated" (same URL, new text) or "unchanged"
    mentions: int = 0
    new_quotes: tuple[str, ...] = ()
    joined_quotes: tuple[str, ...] = ()  # existing quotes that gained a variant
    new_speakers: tuple[str, ...] = ()
    new_aliases: tuple[tuple[str, str], ...] = ()
    store_version: int = 0
    statements: tuple[QuoteMention, ...] = ()  # the attributed statements found (empty when unchanged)


@dataclass(frozen=True, slots=True)
class BuildReport:
    path: Path
    articles: int
    mentions: int
    quotes: int
    speakers: int
    disputed: int
    store_version: int


@dataclass(slots=True)
class VariantIndex:
    """All variant vectors in one matrix, for exact cosine search by the matcher."""

    version: int
    variant_ids: np.ndarray
    quote_ids: list[str]
    matrix: np.ndarray  # (n, dim) float32, L2-normalised


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    # Rollback journal with full sync: a committed add survives power loss, and a build can replace
    # the file by rename without a write-ahead log of the old file lying next to it.
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.execute("PRAGMA synchronous = FULL")
    return conn


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _order(article_published: str | None, article_id: str) -> tuple[int, str]:
    return (0, article_published + article_id) if article_published else (1, article_id)


class Store:
    """A quote store on disk. Cheap to construct; every call opens its own connection."""

    def __init__(self, path: Path, model_name: str, model_revision: str) -> None:
        self.path = path
        self.model_name = model_name
        self.model_revision = model_revision
        self._check()

    # -- opening -------------------------------------------------------------------------------

    def _check(self) -> None:
        if not self.path.is_file():
            raise StoreError(f"no quote store at {self.path}: build one with `python -m service build`")
        try:
            with contextlib.closing(_connect(self.path)) as conn:
                meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"{self.path} is not a quote store ({exc}): rebuild it with `python -m service build`"
            ) from None
        if meta.get("schema_version") != SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has schema {meta.get('schema_version')!r}, this version needs {SCHEMA_VERSION!r}: "
                "rebuild it with `python -m service build`"
            )
        if (meta.get("model_name"), meta.get("model_revision")) != (self.model_name, self.model_revision):
            raise StoreError(
                f"{self.path} was built with model {meta.get('model_name')} revision {meta.get('model_revision')}, "
                f"but the service runs {self.model_name} revision {self.model_revision}; vectors of two models "
                "cannot be compared: rebuild the store with `python -m service build`"
            )

    @contextlib.contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        with contextlib.closing(_connect(self.path)) as conn:
            yield conn

    def version(self) -> int:
        with self.connect() as conn:
            return int(conn.execute("SELECT value FROM meta WHERE key = 'store_version'").fetchone()[0])

    # -- writing -------------------------------------------------------------------------------

    def add_article(self, article: Article, embedder: EmbedderLike, nlp: object) -> AddReport:
        """Extract, canonicalise and persist one article in a single transaction."""
        with self.connect() as conn, _transaction(conn):
            return _add(conn, article, embedder, nlp)

    # -- reading -------------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        with self.connect() as conn:
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            counts = {
                table: conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                for table in ("articles", "speakers", "quotes", "variants")
            }
        return {
            "path": str(self.path),
            "store_version": int(meta["store_version"]),
            "model_name": meta["model_name"],
            "model_revision": meta["model_revision"],
            "built_at": meta.get("built_at"),
            "updated_at": meta.get("updated_at"),
            **counts,
        }

    def registry(self) -> SpeakerRegistry:
        with self.connect() as conn:
            return _load_registry(conn)

    def speakers(self) -> list[tuple[Speaker, int]]:
        """Every speaker with the number of canonical quotes ascribed to them by any source."""
        with self.connect() as conn:
            reg = _load_registry(conn)
            counts = dict(
                conn.execute(
                    "SELECT speaker_id, COUNT(DISTINCT quote_id) FROM variants "
                    "WHERE speaker_id IS NOT NULL GROUP BY speaker_id"
                ).fetchall()
            )
        return [(sp, counts.get(sp.id, 0)) for sp in reg.snapshot()]

    def speaker(self, speaker_id: str) -> Speaker | None:
        with self.connect() as conn:
            return _load_registry(conn).speakers.get(speaker_id)

    def quote(self, quote_id: str) -> CanonicalQuote | None:
        found = self._quotes_where("v.quote_id = ?", (quote_id,))
        return found[0] if found else None

    def quotes(
        self,
        speaker_id: str | None = None,
        search: str | None = None,
        disputed: bool | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[int, list[CanonicalQuote]]:
        """Canonical quotes, earliest first: by any attribution to a speaker, by words, disputed only."""
        where, params = "1 = 1", []
        if speaker_id:
            where += " AND v.quote_id IN (SELECT quote_id FROM variants WHERE speaker_id = ?)"
            params.append(speaker_id)
        if search:
            words = canon.normalise_text(search).split()
            if not words:  # only punctuation: it matches no wording, not every one
                return 0, []
            for w in words:
                where += " AND v.quote_id IN (SELECT quote_id FROM variants WHERE lower(text) LIKE ? ESCAPE '\\')"
                params.append("%" + w.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
        found = self._quotes_where(where, tuple(params))
        if disputed is not None:
            found = [q for q in found if q.disputed == disputed]
        return len(found), found[offset : offset + limit]

    def _quotes_where(self, where: str, params: tuple[Any, ...]) -> list[CanonicalQuote]:
        with self.connect() as conn:
            rows = conn.execute(
                f"""SELECT v.*, a.outlet, a.url, a.published, a.title, s.name AS speaker_name
                    FROM variants v JOIN articles a ON a.id = v.article_id
                    LEFT JOIN speakers s ON s.id = v.speaker_id
                    WHERE {where} ORDER BY v.id""",
                params,
            ).fetchall()
        grouped: dict[str, list[sqlite3.Row]] = defaultdict(list)
        for row in rows:
            grouped[row["quote_id"]].append(row)
        quotes = [_canonical(qid, rs) for qid, rs in grouped.items()]
        quotes.sort(key=lambda q: (_source_order(q.variants[0].source), q.id))
        return quotes

    def variant_index(self) -> VariantIndex:
        with self.connect() as conn:
            version = int(conn.execute("SELECT value FROM meta WHERE key = 'store_version'").fetchone()[0])
            dim = int(conn.execute("SELECT value FROM meta WHERE key = 'embedding_dim'").fetchone()[0])
            rows = conn.execute("SELECT id, quote_id, embedding FROM variants ORDER BY id").fetchall()
        matrix = np.zeros((len(rows), dim), dtype=np.float32)
        for i, row in enumerate(rows):
            matrix[i] = np.frombuffer(row["embedding"], dtype=np.float32)
        ids = np.array([r["id"] for r in rows], dtype=np.int64)
        quote_ids = [r["quote_id"] for r in rows]
        return VariantIndex(version, ids, quote_ids, matrix)


def _source_order(source: Source) -> tuple[int, str]:
    return _order(source.published.isoformat() if source.published else None, source.article_id)


def _canonical(quote_id: str, rows: list[sqlite3.Row]) -> CanonicalQuote:
    variants = []
    facts = []
    for r in rows:
        published = dt.date.fromisoformat(r["published"]) if r["published"] else None
        source = Source(r["article_id"], r["outlet"], r["url"], published, r["title"])
        spans = tuple(Span(s[0], s[1], s[2]) for s in json.loads(r["spans"]))
        kind = MentionKind(r["kind"])
        variants.append(
            Variant(
                r["id"],
                quote_id,
                r["text"],
                kind,
                spans,
                r["cue"],
                r["speaker_mention"],
                r["speaker_id"],
                r["confidence"],
                source,
            )
        )
        facts.append(
            canon.VariantFacts(
                r["speaker_id"],
                r["speaker_name"],
                r["article_id"],
                _order(r["published"], r["article_id"]),
                kind,
                r["text"],
            )
        )
    variants.sort(key=lambda v: (_source_order(v.source), v.spans[0].start))
    attributions, majority, disputed = canon.attributions(facts)
    name = next((a.speaker_name for a in attributions if a.speaker_id == majority), None)
    return CanonicalQuote(
        quote_id, canon.canonical_text(facts), majority, name, disputed, attributions, tuple(variants)
    )


def _load_registry(conn: sqlite3.Connection) -> SpeakerRegistry:
    speakers = {
        r["id"]: Speaker(r["id"], r["name"], SpeakerKind(r["kind"]), r["role"], set())
        for r in conn.execute("SELECT * FROM speakers")
    }
    origins = {}
    for r in conn.execute("SELECT * FROM aliases"):
        speakers[r["speaker_id"]].aliases.add(r["alias"])
        origins[(r["speaker_id"], r["alias"])] = r["origin"]
    return SpeakerRegistry.from_speakers(list(speakers.values()), origins)


def _save_registry(conn: sqlite3.Connection, reg: SpeakerRegistry) -> tuple[list[str], list[tuple[str, str]]]:
    known = {r[0] for r in conn.execute("SELECT id FROM speakers")}
    known_aliases = {(r[0], r[1]) for r in conn.execute("SELECT speaker_id, alias FROM aliases")}
    new_speakers = []
    for sp in reg.snapshot():
        if sp.id not in known:
            new_speakers.append(sp.id)
        conn.execute(
            "INSERT INTO speakers (id, name, kind, role) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET role = COALESCE(speakers.role, excluded.role)",
            (sp.id, sp.name, sp.kind.value, sp.role),
        )
    new_aliases = []
    for rec in reg.aliases():
        if (rec.speaker_id, rec.alias) not in known_aliases:
            new_aliases.append((rec.speaker_id, rec.alias))
            conn.execute(
                "INSERT INTO aliases (speaker_id, alias, origin) VALUES (?, ?, ?)",
                (rec.speaker_id, rec.alias, rec.origin),
            )
    return new_speakers, new_aliases


def _clusters(conn: sqlite3.Connection) -> list[canon.Cluster]:
    clusters: dict[str, canon.Cluster] = {}
    for r in conn.execute("SELECT quote_id, text, speaker_id, embedding FROM variants ORDER BY id"):
        c = clusters.setdefault(r["quote_id"], canon.Cluster(r["quote_id"]))
        c.texts.append(canon.normalise_text(r["text"]))
        c.speakers.append(r["speaker_id"])
        c.vectors.append(np.frombuffer(r["embedding"], dtype=np.float32))
    return list(clusters.values())


def _bump(conn: sqlite3.Connection) -> int:
    conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'store_version'")
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('updated_at', ?)", (_now(),))
    return int(conn.execute("SELECT value FROM meta WHERE key = 'store_version'").fetchone()[0])


def _add(conn: sqlite3.Connection, article: Article, embedder: EmbedderLike, nlp: object) -> AddReport:
    existing = conn.execute("SELECT id, content_hash FROM articles WHERE url = ?", (article.url,)).fetchone()
    status = "added"
    if existing is not None:
        if existing["content_hash"] == article.content_hash:
            return AddReport(article.id, article.url, "unchanged", store_version=_version(conn))
        status = "updated"
        conn.execute("DELETE FROM variants WHERE article_id = ?", (existing["id"],))
        conn.execute("DELETE FROM quotes WHERE id NOT IN (SELECT DISTINCT quote_id FROM variants)")
        conn.execute("DELETE FROM articles WHERE id = ?", (existing["id"],))
    registry = _load_registry(conn)
    extraction = extract_article(article, registry, nlp)
    new_speakers, new_aliases = _save_registry(conn, registry)
    conn.execute(
        "INSERT INTO articles (id, url, outlet, title, published, language, file, wire, content_hash, text, added_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            article.id,
            article.url,
            article.outlet,
            article.title,
            article.published.isoformat() if article.published else None,
            article.language,
            article.file,
            article.wire,
            article.content_hash,
            article.text,
            _now(),
        ),
    )
    mentions = [m for m in extraction.mentions if m.quotable]
    vectors = embedder.encode([m.text for m in mentions])
    clusters = _clusters(conn)
    before = {c.quote_id for c in clusters}
    assigned = canon.assign(mentions, vectors, clusters)
    new_quotes, joined = [], []
    for mention, vector, (qid, created) in zip(mentions, vectors, assigned, strict=True):
        if created:
            conn.execute("INSERT INTO quotes (id, created_at) VALUES (?, ?)", (qid, _now()))
            new_quotes.append(qid)
        elif qid in before and qid not in joined:
            joined.append(qid)
        conn.execute(
            "INSERT INTO variants (quote_id, article_id, kind, text, spans, cue, speaker_mention, speaker_id, "
            "confidence, embedding) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                qid,
                article.id,
                mention.kind.value,
                mention.text,
                json.dumps([[s.start, s.end, s.text] for s in mention.spans], ensure_ascii=False),
                mention.cue,
                mention.speaker_mention,
                mention.speaker_id,
                mention.confidence,
                np.asarray(vector, dtype=np.float32).tobytes(),
            ),
        )
    return AddReport(
        article.id,
        article.url,
        status,
        len(mentions),
        tuple(new_quotes),
        tuple(joined),
        tuple(new_speakers),
        tuple(new_aliases),
        _bump(conn),
        tuple(mentions),
    )


def _version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT value FROM meta WHERE key = 'store_version'").fetchone()[0])


def build_store(
    corpus_dir: Path,
    path: Path,
    embedder: EmbedderLike,
    nlp: object,
    speakers_file: Path | None = None,
    fingerprint: str = "",
) -> BuildReport:
    """Build a store from a corpus into a new file, then atomically replace `path` with it."""
    articles = load_corpus(corpus_dir)  # validate everything before writing anything
    registry = SpeakerRegistry()
    if speakers_file is not None:
        registry.load_file(speakers_file)
    articles.sort(key=lambda a: _order(a.published.isoformat() if a.published else None, a.file or a.id))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.building-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    mentions = 0
    try:
        with contextlib.closing(_connect(tmp)) as conn:
            with _transaction(conn):
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    conn.execute(statement)  # executescript would commit the open transaction
                now = _now()
                conn.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)",
                    [
                        ("schema_version", SCHEMA_VERSION),
                        ("model_name", embedder.name),
                        ("model_revision", embedder.revision),
                        ("embedding_dim", str(embedder.dim)),
                        ("store_version", "0"),
                        ("built_at", now),
                        ("updated_at", now),
                        ("corpus", str(corpus_dir)),
                        ("fingerprint", fingerprint),
                    ],
                )
                _save_registry(conn, registry)
                for article in articles:
                    mentions += _add(conn, article, embedder, nlp).mentions
            version = _version(conn)
        tmp.replace(path)
        _fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)
    store = Store(path, embedder.name, embedder.revision)
    info = store.info()
    disputed, _ = store.quotes(disputed=True, limit=0)
    return BuildReport(path, info["articles"], mentions, info["quotes"], info["speakers"], disputed, version)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
