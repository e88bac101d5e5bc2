"""`python -m service ingest`: bulk ingest through the real command, with worker processes.

Bad records are reported with their line and skipped; the rest lands, in one transaction each, with
the ids a build gives; a second run adds nothing (idempotent), and a run that stopped half-way is
completed by running it again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pgdb
import pytest

from service.build import build_store
from service.config import REPO_ROOT
from service.corpus import load_manifest
from service.embed import Embedder
from service.store import SqliteStore, Store, open_store
from tests.conftest import CORPUS, copy_corpus

pytestmark = pytest.mark.slow


def records(names: tuple[str, ...]) -> list[dict[str, str | None]]:
    """Corpus articles whose file names start with `names`, as ingest records."""
    out = []
    for file, meta in load_manifest(CORPUS):
        if file.startswith(names):
            out.append(
                {
                    "text": (CORPUS / file).read_text(encoding="utf-8"),
                    "outlet": meta.outlet,
                    "url": meta.url,
                    "published": meta.published.isoformat() if meta.published else None,
                    "title": meta.title,
                }
            )
    return out


def ingest(path: Path, store: str, *extra: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "service", "ingest", str(path), "--store", store, *extra],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=900,
        env={k: v for k, v in os.environ.items() if not k.startswith("QUOTES_")},
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def ids(store: Store) -> list[tuple[str, int, str | None]]:
    _, quotes = store.quotes(limit=10_000)
    return sorted((q.id, len(q.variants), q.speaker_id) for q in quotes)


def write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture()
def three_article_store(tmp_path: Path, embedder: Embedder, nlp: object) -> Path:
    corpus = copy_corpus(tmp_path / "corpus", drop=("003", "004"))
    path = tmp_path / "quotes.sqlite3"
    build_store(corpus, path, embedder, nlp, corpus / "speakers.json")
    return path


def test_bulk_ingest_reports_bad_lines_and_lands_the_rest(
    tmp_path: Path, three_article_store: Path, built_store: SqliteStore, embedder: Embedder
) -> None:
    good = [json.dumps(r) for r in records(("003", "004"))] + [json.dumps(records(("000",))[0])]  # 000: stored
    bad_date = json.dumps({**records(("001",))[0], "published": "29/01/2025", "url": "https://example.org/x"})
    lines = [
        good[0],
        "{not json",
        json.dumps({"text": "Peskov said so.", "outlet": "Wire"}),  # no url
        bad_date,
        json.dumps({**records(("002",))[0], "author": "someone"}),  # a field ingest does not know
        good[1],
        good[2],
    ]
    path = write_jsonl(tmp_path / "articles.jsonl", lines)
    proc = ingest(path, str(three_article_store), "--workers", "2")
    assert proc.returncode == 2, proc.stderr  # some records were skipped
    assert f"{path}:2: invalid JSON" in proc.stderr
    assert f"{path}:3: 'url' is required" in proc.stderr
    assert f"{path}:4: 'published' is '29/01/2025'" in proc.stderr
    assert f"{path}:5: unknown field(s) author" in proc.stderr
    assert "articles/s" in proc.stderr, "the progress bar shows the rate"
    assert "7 records" in proc.stderr and "2 added, 0 updated, 1 already there, 4 skipped as bad" in proc.stderr
    assert "time: parse" in proc.stderr and "encode" in proc.stderr and "write" in proc.stderr
    store = SqliteStore(three_article_store, embedder.name, embedder.revision)
    # Stored as a build from the whole corpus stores them: the same quotes, ids and speakers.
    assert ids(store) == ids(built_store)
    assert store.info()["articles"] == 5

    again = ingest(write_jsonl(tmp_path / "good.jsonl", good), str(three_article_store), "--workers", "0")
    assert again.returncode == 0, again.stderr
    assert "0 added, 0 updated, 3 already there, 0 skipped" in again.stderr
    assert ids(SqliteStore(three_article_store, embedder.name, embedder.revision)) == ids(built_store)


def test_an_interrupted_run_is_completed_by_running_it_again_on_postgres(
    tmp_path: Path, pg_server: str, embedder: Embedder, nlp: object, built_store: SqliteStore
) -> None:
    url = pgdb.new_database(pg_server)
    corpus = copy_corpus(tmp_path / "corpus", drop=("003", "004"))
    build_store(corpus, url, embedder, nlp, corpus / "speakers.json")
    lines = [json.dumps(r) for r in records(("003", "004"))]
    first = ingest(write_jsonl(tmp_path / "part.jsonl", lines[:1]), url, "--workers", "1", "--quiet")
    assert first.returncode == 0, first.stderr
    assert "articles/s" not in first.stderr.split("records in")[0], "--quiet: no progress bar"
    whole = ingest(write_jsonl(tmp_path / "all.jsonl", lines), url, "--workers", "1")
    assert whole.returncode == 0, whole.stderr
    assert "1 added, 0 updated, 1 already there" in whole.stderr
    store = open_store(url, embedder.name, embedder.revision)
    try:
        assert ids(store) == ids(built_store)
    finally:
        store.close()


def test_ingest_refuses_a_missing_path(tmp_path: Path, three_article_store: Path) -> None:
    proc = ingest(tmp_path / "nothing.jsonl", str(three_article_store))
    assert proc.returncode == 2 and "no such file or directory" in proc.stderr
