"""Building a store from a corpus, and only when it is stale (setup runs this on every start).

SQLite: a build writes a new file next to the old one, adding the articles one by one through
ingest, and renames it into place, so an interrupted build leaves the previous store as it was. It
runs when the corpus, the speakers file, the model or the code that turns articles into quotes
changed since the store was built.

PostgreSQL: a shared store holds what every replica added, so it is never replaced. A build
creates the store when the database holds none and otherwise ingests the corpus into it, which
adds what is missing and leaves the rest (ingest is idempotent by URL and content). To start over,
drop the database.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from . import ingest
from .corpus import load_corpus
from .embed import load_embedder
from .nlp import load_nlp
from .records import Article
from .speakers import SpeakerRegistry
from .store import EmbedderLike, SqliteStore, Store, StoreError, backend_of, create_store, open_store, registry_delta

_PIPELINE_SOURCES = ("extract", "canon.py", "speakers.py", "store", "ingest.py", "corpus.py", "nlp.py", "records.py")


@dataclass(frozen=True, slots=True)
class BuildReport:
    location: str
    articles: int
    mentions: int
    quotes: int
    speakers: int
    disputed: int
    store_version: int


def fingerprint(
    corpus_dir: Path, speakers_file: Path | None, salt: str, sources: tuple[str, ...] = _PIPELINE_SOURCES
) -> str:
    """Digest of the corpus files, the speakers file and the package `sources` (files or folders)
    that turn them into what is built, salted with e.g. the model revision."""
    h = hashlib.sha256(salt.encode())
    files = sorted(p for p in corpus_dir.iterdir() if p.is_file())
    if speakers_file is not None and speakers_file.parent.resolve() != corpus_dir.resolve():
        files.append(speakers_file)
    package = Path(__file__).resolve().parent
    for name in sources:
        target = package / name
        files += sorted(target.rglob("*.py")) if target.is_dir() else [target]
    for path in files:
        h.update(path.name.encode())
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def _stored_fingerprint(store_path: Path) -> str | None:
    if not store_path.is_file():
        return None
    try:
        with contextlib.closing(sqlite3.connect(store_path)) as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'fingerprint'").fetchone()
    except sqlite3.DatabaseError:
        return None
    return row[0] if row else None


def _order(article: Article) -> tuple[int, str]:
    return (
        (0, article.published.isoformat() + (article.file or article.id))
        if article.published
        else (1, article.file or article.id)
    )


def _fill(store: Store, articles: list[Article], registry: SpeakerRegistry, embedder: EmbedderLike, nlp: object) -> int:
    """The speakers file's registry, then every article in corpus order; returns the statements kept."""
    with store.write() as w:
        w.save_registry(registry_delta(SpeakerRegistry(), registry))
    return sum(ingest.add_article(store, article, embedder, nlp).mentions for article in articles)


def _report(store: Store, mentions: int) -> BuildReport:
    info = store.info()
    disputed, _ = store.quotes(disputed=True, limit=0)
    return BuildReport(
        store.location, info["articles"], mentions, info["quotes"], info["speakers"], disputed, info["store_version"]
    )


def build_store(
    corpus_dir: Path,
    location: str | Path,
    embedder: EmbedderLike,
    nlp: object,
    speakers_file: Path | None = None,
    fingerprint: str = "",
) -> BuildReport:
    """Build a store from a corpus: a new SQLite file renamed over `location`, or (a postgresql://
    URL) the corpus ingested into the database's store, created if it holds none."""
    articles = load_corpus(corpus_dir)  # validate everything before writing anything
    registry = SpeakerRegistry()
    if speakers_file is not None:
        registry.load_file(speakers_file)
    articles.sort(key=_order)
    meta = {"corpus": str(corpus_dir), "fingerprint": fingerprint}
    where = str(location)
    if backend_of(where) == "postgresql":
        from .store.postgres import PostgresStore

        if PostgresStore.exists(where):
            store = open_store(where, embedder.name, embedder.revision)
        else:
            store = create_store(where, embedder.name, embedder.revision, embedder.dim, **meta)
        try:
            return _report(store, _fill(store, articles, registry, embedder, nlp))
        finally:
            store.close()
    path = Path(where)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.building-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    try:
        building = SqliteStore.create(tmp, embedder.name, embedder.revision, embedder.dim, **meta)
        mentions = _fill(building, articles, registry, embedder, nlp)
        tmp.replace(path)
        _fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)
    return _report(SqliteStore(path, embedder.name, embedder.revision), mentions)


def build_if_stale(
    corpus_dir: Path, location: str | Path, model_dir: Path, speakers_file: Path | None, force: bool = False
) -> BuildReport | None:
    """Builds when stale (SQLite) or fills what is missing (PostgreSQL); None when there was nothing to do."""
    embedder = load_embedder(model_dir)
    wanted = fingerprint(corpus_dir, speakers_file, embedder.revision)
    where = str(location)
    if backend_of(where) == "postgresql":
        if force:
            raise StoreError(
                "a PostgreSQL store is shared and never rebuilt: drop and re-create the database to start over"
            )
        if _postgres_up_to_date(where, corpus_dir, embedder):
            return None
    elif not force and _stored_fingerprint(Path(where)) == wanted:
        return None
    return build_store(corpus_dir, where, embedder, load_nlp(), speakers_file, fingerprint=wanted)


def _postgres_up_to_date(url: str, corpus_dir: Path, embedder: EmbedderLike) -> bool:
    from .store.postgres import PostgresStore

    if not PostgresStore.exists(url):
        return False
    store = open_store(url, embedder.name, embedder.revision)
    try:
        with store.read() as r:
            return all(
                (state := r.article_state(a.url)) is not None and state.content_hash == a.content_hash
                for a in load_corpus(corpus_dir)
            )
    finally:
        store.close()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
