"""The same answers from either backend: the API on the corpus store in SQLite and in PostgreSQL.

Every paragraph of the corpus and the README's examples go through POST /v1/attributions of two
apps, one per backend, and the JSON answers must be equal, similarities included; so must the
matcher's answers for every stored wording at top_k 10. (The stores themselves are compared row
for row in tests/test_store.py.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pgdb
import pytest
from flask.testing import FlaskClient

from service.api import create_app
from service.api.runtime import Runtime
from service.config import Settings
from service.corpus import load_corpus
from service.embed import Embedder
from service.match import Matcher, Segment
from service.store import SqliteStore, Store, open_store
from tests.conftest import CORPUS

EXAMPLES = [
    "Kremlin spokesman Dmitry Peskov stressed that Moscow will keep up a constant dialogue with the new Syrian "
    "authorities.",
    '"Russia does not support the unity, territorial integrity and sovereignty of the Syrian Arab Republic," the '
    "Foreign Ministry said.",
    'Ukraine\'s foreign minister Andriy Sybiga spoke of "deep strategic interests between Russia and Syria."',
    "It was sunny and warm in Damascus on Tuesday, with temperatures reaching 25 degrees.",
]


@pytest.fixture(scope="module")
def pg_store(pg_server: str, pg_corpus: str, embedder: Embedder) -> Iterator[Store]:
    store = open_store(pgdb.copy_database(pg_server, pg_corpus), embedder.name, embedder.revision)
    yield store
    store.close()


def _client(store: Store, embedder: Embedder, nlp: object) -> FlaskClient:
    settings = dataclasses.replace(Settings.from_env({}), rate_limit="", rate_limit_write="")
    return create_app(settings, Runtime.preloaded(settings, embedder, nlp, store)).test_client()


def _paragraphs() -> list[str]:
    return [p for a in load_corpus(CORPUS) for p in a.text.split("\n") if len(p.split()) >= 3] + EXAMPLES


def test_the_api_answers_alike_on_both_backends(
    built_store: SqliteStore, pg_store: Store, embedder: Embedder, nlp: object
) -> None:
    sqlite, postgres = _client(built_store, embedder, nlp), _client(pg_store, embedder, nlp)
    matched = 0
    for text in _paragraphs():
        body = {"text": text, "top_k": 3}
        a, b = sqlite.post("/v1/attributions", json=body), postgres.post("/v1/attributions", json=body)
        assert a.status_code == b.status_code == 200
        assert a.get_json() == b.get_json(), text
        matched += sum(r["match"] is not None for r in a.get_json()["results"])
    assert matched > 100, "the comparison covers matches, not only misses"
    for path in ("/v1/quotes?limit=100", "/v1/quotes?disputed=true", "/v1/speakers", "/v1/speakers/dmitry-peskov"):
        assert sqlite.get(path).get_json() == postgres.get(path).get_json(), path


def _answer(m: Any) -> tuple[Any, ...]:
    return (
        m.quote.id if m.quote else None,
        m.label,
        m.similarity,
        m.flags,
        m.attribution,
        [(c.quote_id, c.similarity) for c in m.alternatives],
        m.variant.id if m.variant else None,
    )


def test_every_stored_wording_matches_alike_on_both_backends(
    built_store: SqliteStore, pg_store: Store, embedder: Embedder, nlp: object
) -> None:
    _, quotes = built_store.quotes(limit=1000)
    segments = [Segment(v.text, 0, len(v.text), "quote", None, None) for q in quotes for v in q.variants]
    a = Matcher(built_store, embedder, nlp).match_segments(segments, top_k=10, min_similarity=0.0)
    b = Matcher(pg_store, embedder, nlp).match_segments(segments, top_k=10, min_similarity=0.0)
    assert [_answer(m) for m in a] == [_answer(m) for m in b]
    assert all(m.label == "verbatim" for m in a)
