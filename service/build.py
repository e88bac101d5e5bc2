"""Build the store only when it is stale: the corpus, the speakers file, the model or the code that
turns articles into quotes changed since it was built. Setup runs this on every start."""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from pathlib import Path

from .embed import load_embedder
from .nlp import load_nlp
from .store import BuildReport, build_store

_PIPELINE_SOURCES = ("extract", "canon.py", "speakers.py", "store.py", "corpus.py", "nlp.py", "records.py")


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


def build_if_stale(
    corpus_dir: Path, store_path: Path, model_dir: Path, speakers_file: Path | None, force: bool = False
) -> BuildReport | None:
    embedder = load_embedder(model_dir)
    wanted = fingerprint(corpus_dir, speakers_file, embedder.revision)
    if not force and _stored_fingerprint(store_path) == wanted:
        return None
    return build_store(corpus_dir, store_path, embedder, load_nlp(), speakers_file, fingerprint=wanted)
