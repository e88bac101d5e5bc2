"""Shared fixtures: the real model and spaCy pipeline are loaded once per test session."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pgdb
import pytest

from service.build import build_store
from service.config import REPO_ROOT, Settings
from service.corpus import load_corpus
from service.embed import Embedder, load_embedder
from service.extract import extract_article
from service.nlp import load_nlp
from service.records import Extraction
from service.speakers import SpeakerRegistry
from service.store import SqliteStore

CORPUS = REPO_ROOT / "corpus"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--screenshots", action="store_true", help="rewrite docs/screenshots/*.png from tests/test_page.py"
    )


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings.from_env({})


@pytest.fixture(scope="session")
def embedder(settings: Settings) -> Embedder:
    return load_embedder(settings.model_dir)


@pytest.fixture(scope="session")
def nlp() -> object:
    return load_nlp()


@pytest.fixture(scope="session")
def onnx_embedder(settings: Settings) -> Embedder:
    """The int8 backend, as scripts/install.sh exported it (or now, when it has not: 30 s to a minute).

    Skipped, with the export's reason, on a CPU where no int8 export keeps the accuracy promise
    (tests/test_onnx_export.py checks the refusal itself).
    """
    from service.onnx_export import Int8Refused, export_onnx

    try:
        export_onnx(settings.model_dir)
    except Int8Refused as exc:
        pytest.skip(str(exc))
    return load_embedder(settings.model_dir, backend="onnx-int8")


@pytest.fixture(scope="session")
def built_store(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder, nlp: object) -> SqliteStore:
    path = tmp_path_factory.mktemp("store") / "quotes.sqlite3"
    build_store(CORPUS, path, embedder, nlp, CORPUS / "speakers.json")
    return SqliteStore(path, embedder.name, embedder.revision)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A PostgreSQL server for the session (tests/pgdb.py), stopped at its end."""
    with pgdb.server() as url:
        yield url


@pytest.fixture(scope="session")
def pg_corpus(pg_server: str, embedder: Embedder, nlp: object) -> str:
    """The URL of a database holding the corpus store: a template, copied by tests with
    pgdb.copy_database, never opened itself (a template cannot be copied while in use)."""
    url = pgdb.new_database(pg_server, "corpus")
    build_store(CORPUS, url, embedder, nlp, CORPUS / "speakers.json")
    return url


@pytest.fixture(scope="session")
def statements(built_store: SqliteStore, nlp: Any) -> list[str]:
    """Every reported wording in the corpus store, and every sentence of each (deduplicated)."""
    wordings = sorted({v.text for q in built_store.quotes(limit=1 << 30)[1] for v in q.variants})
    sentences = {s.text.strip() for w in wordings for s in nlp(w).sents}  # type: ignore[operator]
    return sorted(set(wordings) | {s for s in sentences if s})


@pytest.fixture(scope="session")
def extractions(nlp: object) -> dict[str, Extraction]:
    """Each corpus article's extraction, keyed by the file's 3-digit prefix, read in corpus order."""
    registry = SpeakerRegistry()
    registry.load_file(CORPUS / "speakers.json")
    return {a.file[:3]: extract_article(a, registry, nlp) for a in load_corpus(CORPUS) if a.file}


def copy_corpus(dest: Path, drop: tuple[str, ...] = ()) -> Path:
    """A copy of the repository corpus without the articles whose file names start with `drop`."""
    dest.mkdir(parents=True, exist_ok=True)
    manifest = json.loads((CORPUS / "manifest.json").read_text(encoding="utf-8"))
    manifest["articles"] = [a for a in manifest["articles"] if not a["file"].startswith(drop)]
    for entry in manifest["articles"]:
        shutil.copy(CORPUS / entry["file"], dest / entry["file"])
    shutil.copy(CORPUS / "speakers.json", dest / "speakers.json")
    (dest / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return dest
