"""The quote store: canonical quotes, disputes, idempotent and incremental writes, refusals."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from service.corpus import CorpusError, load_corpus
from service.embed import Embedder
from service.records import CanonicalQuote, SpeakerKind
from service.store import Store, StoreError, build_store
from tests.conftest import CORPUS, copy_corpus


def _quote_with(store: Store, words: str) -> CanonicalQuote:
    total, quotes = store.quotes(search=words)
    assert total == 1, f"{words!r} is in {total} canonical quotes"
    return quotes[0]


def test_peskov_dialogue_line_is_one_quote_with_three_sources(built_store: Store) -> None:
    quote = _quote_with(built_store, "maintain a permanent dialogue with the Syrian authorities")
    assert quote.speaker_id == "dmitry-peskov" and not quote.disputed
    assert len(quote.sources) == 3
    assert {s.outlet for s in quote.sources} == {"The Moscow Times", "WE News English", "EFE"}
    wordings = {v.text for v in quote.variants}
    assert any("permanent dialogue" in w for w in wordings) and any("constant dialogue" in w for w in wordings)


def test_restoration_statement_is_one_disputed_quote(built_store: Store) -> None:
    quote = _quote_with(built_store, "restoration of relations must")
    assert quote.disputed
    counts = {a.speaker_id: a.sources for a in quote.attributions}
    assert counts == {"syrian-government": 4, "russian-delegation": 1}
    assert quote.speaker_id == "syrian-government"
    babel = [v for v in quote.variants if v.source.outlet == "Babel"]
    assert babel and babel[0].speaker_id == "russian-delegation"
    # A partial quote of the statement ("address past mistakes") is a variant of the same quote.
    assert any(v.text == "address past mistakes" for v in quote.variants)
    _, disputed = built_store.quotes(disputed=True)
    assert quote.id in {q.id for q in disputed}


def test_variants_keep_source_wording_and_offsets(built_store: Store) -> None:
    articles = {a.url: a for a in load_corpus(CORPUS)}
    _, quotes = built_store.quotes(limit=1000)
    for quote in quotes:
        for v in quote.variants:
            text = articles[v.source.url].text
            assert all(text[s.start : s.end] == s.text for s in v.spans)
        dates = [v.source.published for v in quote.variants if v.source.published]
        assert dates == sorted(dates), "sources are listed earliest first"


def test_no_quote_is_ascribed_to_media(built_store: Store) -> None:
    kinds = {sp.id: sp.kind for sp, _ in built_store.speakers()}
    _, quotes = built_store.quotes(limit=1000)
    assert quotes
    for quote in quotes:
        for a in quote.attributions:
            assert kinds[a.speaker_id] is not SpeakerKind.MEDIA


def test_filters(built_store: Store) -> None:
    total, quotes = built_store.quotes(speaker_id="ahmed-al-sharaa")
    assert total >= 3 and all(any(a.speaker_id == "ahmed-al-sharaa" for a in q.attributions) for q in quotes)
    total_all, _ = built_store.quotes()
    _, page = built_store.quotes(limit=2, offset=1)
    assert len(page) == 2 and total_all > 3
    assert built_store.quotes(search="100% _nothing_ like this")[0] == 0
    assert built_store.quotes(search="%")[0] == 0  # no words in it: nothing matches, not everything
    assert built_store.quote("q_doesnotexist") is None


def test_rebuild_gives_the_same_ids(tmp_path: Path, built_store: Store, embedder: Embedder, nlp: object) -> None:
    path = tmp_path / "again.sqlite3"
    build_store(CORPUS, path, embedder, nlp, CORPUS / "speakers.json")
    again = Store(path, embedder.name, embedder.revision)
    ids = lambda s: sorted(q.id for q in s.quotes(limit=1000)[1])  # noqa: E731
    assert ids(again) == ids(built_store)
    assert [sp.id for sp, _ in again.speakers()] == [sp.id for sp, _ in built_store.speakers()]


@pytest.fixture()
def four_article_store(tmp_path: Path, embedder: Embedder, nlp: object) -> Store:
    corpus = copy_corpus(tmp_path / "corpus", drop=("004",))
    path = tmp_path / "quotes.sqlite3"
    build_store(corpus, path, embedder, nlp, corpus / "speakers.json")
    return Store(path, embedder.name, embedder.revision)


def test_adding_an_article_updates_the_store_incrementally(
    four_article_store: Store, embedder: Embedder, nlp: object
) -> None:
    store = four_article_store
    assert not _quote_with(store, "restoring relations must address past mistakes").disputed
    before = store.info()
    babel = next(a for a in load_corpus(CORPUS) if a.file and a.file.startswith("004"))
    report = store.add_article(babel, embedder, nlp)
    assert report.status == "added" and report.mentions >= 4
    quote = _quote_with(store, "restoring relations must address past mistakes")
    assert quote.disputed and quote.id in report.joined_quotes
    assert store.info()["articles"] == before["articles"] + 1
    assert report.store_version == before["store_version"] + 1
    # Idempotent by URL and content: the same article again changes nothing.
    after_first = store.info()
    again = store.add_article(babel, embedder, nlp)
    assert again.status == "unchanged" and again.mentions == 0
    assert store.info() == after_first and store.version() == report.store_version


class _FailingEmbedder:
    """The real model until the n-th call, then a crash: an add interrupted half-way."""

    def __init__(self, real: Embedder) -> None:
        self.name, self.revision, self.dim = real.name, real.revision, real.dim
        self._real = real

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        raise RuntimeError("killed mid-write")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_failed_add_leaves_the_store_as_it_was(four_article_store: Store, embedder: Embedder, nlp: object) -> None:
    store = four_article_store
    before, digest = store.info(), _digest(store.path)
    babel = next(a for a in load_corpus(CORPUS) if a.file and a.file.startswith("004"))
    with pytest.raises(RuntimeError, match="killed mid-write"):
        store.add_article(babel, _FailingEmbedder(embedder), nlp)  # type: ignore[arg-type]
    assert store.info() == before and _digest(store.path) == digest


def test_failed_build_keeps_the_previous_store(
    tmp_path: Path, built_store: Store, embedder: Embedder, nlp: object
) -> None:
    path = tmp_path / "quotes.sqlite3"
    path.write_bytes(built_store.path.read_bytes())
    digest = _digest(path)
    broken = copy_corpus(tmp_path / "broken")
    (broken / "manifest.json").write_text('{"articles": [{"file": "x.txt"}]}', "utf-8")
    with pytest.raises(CorpusError):
        build_store(broken, path, embedder, nlp)
    with pytest.raises(RuntimeError, match="killed mid-write"):
        build_store(CORPUS, path, _FailingEmbedder(embedder), nlp)  # type: ignore[arg-type]
    assert _digest(path) == digest
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".quotes")] == []


def test_store_of_another_model_is_refused(built_store: Store, embedder: Embedder) -> None:
    with pytest.raises(StoreError, match="rebuild the store"):
        Store(built_store.path, embedder.name, "0000000000000000")


def test_missing_or_foreign_file_is_refused(tmp_path: Path, embedder: Embedder) -> None:
    with pytest.raises(StoreError, match="python -m service build"):
        Store(tmp_path / "nope.sqlite3", embedder.name, embedder.revision)
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreError, match="not a quote store"):
        Store(junk, embedder.name, embedder.revision)
