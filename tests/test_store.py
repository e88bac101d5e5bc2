"""The store's contract, run against both backends: SQLite (a file) and PostgreSQL (a real server).

Canonical quotes and disputes, idempotent and incremental writes, one transaction per add, stable
ids, the indexed lookups, the row counts, and refusals. Every test runs once per backend; the
PostgreSQL stores are copies of one corpus database (tests/conftest.py, tests/pgdb.py).
"""

from __future__ import annotations

import hashlib
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pgdb
import pytest

from service import canon, ingest
from service.build import build_store
from service.corpus import ArticleMeta, CorpusError, load_corpus, make_article
from service.embed import Embedder
from service.ingest import add_article
from service.records import CanonicalQuote, CueClass, MentionKind, QuoteMention, Span, Speaker, SpeakerKind
from service.store import RegistryDelta, SqliteStore, Store, StoreError, Writer, create_store, open_store
from service.store.postgres import PostgresStore
from tests.conftest import CORPUS, copy_corpus

BACKENDS = ("sqlite", "postgresql")
TABLES = ("meta", "articles", "speakers", "aliases", "quotes", "variants")


class Stores:
    """Stores of one backend for a test: copies of the corpus store, and stores built anew."""

    def __init__(self, backend: str, request: pytest.FixtureRequest, tmp: Path, embedder: Embedder) -> None:
        self.backend = backend
        self.request = request
        self.tmp = tmp
        self.embedder = embedder
        self.opened: list[Store] = []

    def open(self, location: str | Path) -> Store:
        store = open_store(location, self.embedder.name, self.embedder.revision)
        self.opened.append(store)
        return store

    def corpus_copy(self) -> Store:
        if self.backend == "sqlite":
            built: SqliteStore = self.request.getfixturevalue("built_store")
            path = self.tmp / f"copy-{len(self.opened)}.sqlite3"
            shutil.copy(built.path, path)
            return self.open(path)
        server = self.request.getfixturevalue("pg_server")
        return self.open(pgdb.copy_database(server, self.request.getfixturevalue("pg_corpus")))

    def new_location(self) -> str:
        if self.backend == "sqlite":
            return str(self.tmp / f"new-{len(self.opened)}-{id(self)}.sqlite3")
        return pgdb.new_database(self.request.getfixturevalue("pg_server"))

    def build(self, corpus: Path) -> Store:
        location = self.new_location()
        build_store(corpus, location, self.embedder, self.request.getfixturevalue("nlp"), corpus / "speakers.json")
        return self.open(location)

    def close(self) -> None:
        for store in self.opened:
            store.close()


@pytest.fixture(params=BACKENDS)
def stores(request: pytest.FixtureRequest, tmp_path: Path, embedder: Embedder) -> Iterator[Stores]:
    made = Stores(request.param, request, tmp_path, embedder)
    yield made
    made.close()


@pytest.fixture(scope="module", params=BACKENDS)
def corpus_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, embedder: Embedder
) -> Iterator[Store]:
    """The corpus store of each backend, for tests that only read."""
    made = Stores(request.param, request, tmp_path_factory.mktemp("read"), embedder)
    yield made.corpus_copy()
    made.close()


def content(store: Store) -> str:
    """A digest of every row of every table, in key order (one transaction's view)."""
    h = hashlib.sha256()
    with store.read() as r:
        conn: Any = r.conn  # type: ignore[attr-defined]
        for table in TABLES:
            order = "key" if table == "meta" else ("speaker_id, alias" if table == "aliases" else "id")
            columns = "*" if table != "speakers" else "id, name, kind, role, registry_version"
            for row in conn.execute(f"SELECT {columns} FROM {table} ORDER BY {order}").fetchall():
                values = [bytes(v.to_numpy()) if hasattr(v, "to_numpy") else v for v in tuple(row)]
                h.update(repr(values).encode())
    return h.hexdigest()


COUNTED = ("articles", "speakers", "quotes", "variants")  # kept in meta by every write


def counts_hold(store: Store) -> bool:
    """The row counts meta keeps are the rows there are."""
    with store.read() as r:
        conn: Any = r.conn  # type: ignore[attr-defined]
        rows = {t: int(conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]) for t in COUNTED}
    info = store.info()
    return rows == {t: info[t] for t in COUNTED}


def _quote_with(store: Store, words: str) -> CanonicalQuote:
    total, quotes = store.quotes(search=words)
    assert total == 1, f"{words!r} is in {total} canonical quotes"
    return quotes[0]


def _babel() -> Any:
    return next(a for a in load_corpus(CORPUS) if a.file and a.file.startswith("004"))


# -- canonical quotes ---------------------------------------------------------------------------------


def test_peskov_dialogue_line_is_one_quote_with_three_sources(corpus_store: Store) -> None:
    quote = _quote_with(corpus_store, "maintain a permanent dialogue with the Syrian authorities")
    assert quote.speaker_id == "dmitry-peskov" and not quote.disputed
    assert len(quote.sources) == 3
    assert {s.outlet for s in quote.sources} == {"The Moscow Times", "WE News English", "EFE"}
    wordings = {v.text for v in quote.variants}
    assert any("permanent dialogue" in w for w in wordings) and any("constant dialogue" in w for w in wordings)


def test_restoration_statement_is_one_disputed_quote(corpus_store: Store) -> None:
    quote = _quote_with(corpus_store, "restoration of relations must")
    assert quote.disputed
    counts = {a.speaker_id: a.sources for a in quote.attributions}
    assert counts == {"syrian-government": 4, "russian-delegation": 1}
    assert quote.speaker_id == "syrian-government"
    babel = [v for v in quote.variants if v.source.outlet == "Babel"]
    assert babel and babel[0].speaker_id == "russian-delegation"
    # A partial quote of the statement ("address past mistakes") is a variant of the same quote.
    assert any(v.text == "address past mistakes" for v in quote.variants)
    _, disputed = corpus_store.quotes(disputed=True)
    assert quote.id in {q.id for q in disputed}


def test_variants_keep_source_wording_and_offsets(corpus_store: Store) -> None:
    articles = {a.url: a for a in load_corpus(CORPUS)}
    _, quotes = corpus_store.quotes(limit=1000)
    for quote in quotes:
        for v in quote.variants:
            text = articles[v.source.url].text
            assert all(text[s.start : s.end] == s.text for s in v.spans)
            assert v.cue_class is CueClass.SPEECH and v.speaker_id is not None
        dates = [v.source.published for v in quote.variants if v.source.published]
        assert dates == sorted(dates), "sources are listed earliest first"


def test_no_quote_is_ascribed_to_media(corpus_store: Store) -> None:
    kinds = {sp.id: sp.kind for sp, _ in corpus_store.speakers()}
    _, quotes = corpus_store.quotes(limit=1000)
    assert quotes
    for quote in quotes:
        for a in quote.attributions:
            assert kinds[a.speaker_id] is not SpeakerKind.MEDIA


def test_filters_and_pages(corpus_store: Store) -> None:
    total, quotes = corpus_store.quotes(speaker_id="ahmed-al-sharaa")
    assert total >= 3 and all(any(a.speaker_id == "ahmed-al-sharaa" for a in q.attributions) for q in quotes)
    total_all, everything = corpus_store.quotes(limit=1000)
    _, page = corpus_store.quotes(limit=2, offset=1)
    assert len(page) == 2 and total_all > 3 and [q.id for q in page] == [q.id for q in everything[1:3]]
    firsts = [min((v.source.published is None, str(v.source.published)) for v in q.variants) for q in everything]
    assert firsts == sorted(firsts), "earliest first"
    n_disputed, disputed = corpus_store.quotes(disputed=True)
    n_undisputed, _ = corpus_store.quotes(disputed=False)
    assert n_disputed == 2 and all(q.disputed for q in disputed) and n_disputed + n_undisputed == total_all
    assert corpus_store.quotes(search="100% _nothing_ like this")[0] == 0
    assert corpus_store.quotes(search="%")[0] == 0  # no words in it: nothing matches, not everything
    assert corpus_store.quote("q_doesnotexist") is None
    assert corpus_store.speaker("dmitry-peskov") is not None and corpus_store.speaker("nobody") is None


def test_both_backends_hold_the_same_store(
    built_store: SqliteStore, pg_server: str, pg_corpus: str, embedder: Embedder
) -> None:
    """Same ids, same quotes, same speakers, row for row, whichever backend built it."""
    pg = open_store(pgdb.copy_database(pg_server, pg_corpus), embedder.name, embedder.revision)
    try:
        a, b = built_store.quotes(limit=1000), pg.quotes(limit=1000)
        assert a == b
        assert built_store.speakers() == pg.speakers()
        info_a, info_b = built_store.info(), pg.info()
        for key in ("store_version", "articles", "speakers", "quotes", "variants", "schema_version"):
            assert info_a[key] == info_b[key], key
    finally:
        pg.close()


def test_rebuild_gives_the_same_ids(stores: Stores, built_store: SqliteStore) -> None:
    again = stores.build(CORPUS)
    ids = lambda s: sorted(q.id for q in s.quotes(limit=1000)[1])  # noqa: E731
    assert ids(again) == ids(built_store)
    assert [sp.id for sp, _ in again.speakers()] == [sp.id for sp, _ in built_store.speakers()]


def test_counts_are_the_rows(corpus_store: Store) -> None:
    assert counts_hold(corpus_store)


# -- writing ------------------------------------------------------------------------------------------


@pytest.fixture()
def four_articles(stores: Stores, tmp_path: Path) -> Store:
    return stores.build(copy_corpus(tmp_path / "corpus", drop=("004",)))


def test_adding_an_article_updates_the_store_incrementally(
    four_articles: Store, embedder: Embedder, nlp: object
) -> None:
    store = four_articles
    assert not _quote_with(store, "restoring relations must address past mistakes").disputed
    before = store.info()
    report = add_article(store, _babel(), embedder, nlp)
    assert report.status == "added" and report.mentions >= 4
    quote = _quote_with(store, "restoring relations must address past mistakes")
    assert quote.disputed and quote.id in report.joined_quotes
    assert store.info()["articles"] == before["articles"] + 1
    assert report.store_version == before["store_version"] + 1
    # Idempotent by URL and content: the same article again changes nothing.
    after_first = content(store)
    again = add_article(store, _babel(), embedder, nlp)
    assert again.status == "unchanged" and again.mentions == 0 and again.store_version == report.store_version
    assert content(store) == after_first
    assert counts_hold(store)


def test_same_url_with_a_new_text_replaces_the_article(four_articles: Store, embedder: Embedder, nlp: object) -> None:
    store = four_articles
    url = "https://example.org/harvest"
    first = '"The harvest in the north will be the largest in a decade," Dmitry Peskov told reporters.'
    second = '"Grain exports will double next year, and the ports are ready," Dmitry Peskov told reporters.'
    meta = ArticleMeta(outlet="Test Wire", url=url, published=None)
    one = add_article(store, make_article(first, meta), embedder, nlp)
    two = add_article(store, make_article(second, meta), embedder, nlp)
    assert (one.status, two.status) == ("added", "updated") and one.article_id == two.article_id
    assert store.quote(one.new_quotes[0]) is None, "the quote only the old text held is gone"
    assert _quote_with(store, "grain exports will double").id == two.new_quotes[0]
    assert store.quotes(search="largest in a decade")[0] == 0
    assert counts_hold(store)


def test_statement_fields_survive(stores: Stores, embedder: Embedder) -> None:
    """The cue class, the attributed clause and where the speaker is named are kept per variant."""
    store = create_store(stores.new_location(), embedder.name, embedder.revision, embedder.dim)
    stores.opened.append(store)
    text = 'Peskov said the election was "rigged" against him.'
    article = make_article(text, ArticleMeta("Wire", "https://example.org/rigged", None))
    mention = QuoteMention(
        article.id,
        MentionKind.PARTIAL,
        (Span(29, 35, "rigged"),),
        "said",
        "Peskov",
        "dmitry-peskov",
        0.9,
        CueClass.SPEECH,
        (Span(12, 50, text[12:50]),),
        Span(0, 6, "Peskov"),
    )
    vector = embedder.encode(["rigged"])[0]
    delta = RegistryDelta((Speaker("dmitry-peskov", "Dmitry Peskov", SpeakerKind.PERSON),), ())
    prepared = ingest.Prepared(article, (mention,), vector[None, :], delta, 0)
    report = ingest.persist(store, prepared)
    (variant,) = store.quote(report.new_quotes[0]).variants  # type: ignore[union-attr]
    assert variant.content == (Span(12, 50, text[12:50]),) and variant.speaker_span == Span(0, 6, "Peskov")
    assert variant.cue_class is CueClass.SPEECH and variant.spans == (Span(29, 35, "rigged"),)
    assert report.new_quotes[0] == canon.quote_id(article.id, mention)


class _FailingEmbedder:
    """An add interrupted half-way: the model fails when asked."""

    def __init__(self, real: Embedder) -> None:
        self.name, self.revision, self.dim = real.name, real.revision, real.dim

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        raise RuntimeError("killed mid-write")


def test_failed_add_leaves_the_store_as_it_was(four_articles: Store, embedder: Embedder, nlp: object) -> None:
    store = four_articles
    before = content(store)
    with pytest.raises(RuntimeError, match="killed mid-write"):
        add_article(store, _babel(), _FailingEmbedder(embedder), nlp)  # type: ignore[arg-type]
    # A failure inside the write transaction, after rows were written: all of them roll back.
    with store.read() as r:
        registry_version = r.state().registry_version
    prepared = ingest.prepare(_babel(), store.registry(), registry_version, embedder, nlp)
    with pytest.raises(RuntimeError, match="after the rows"), store.write() as w:
        ingest._write(w, prepared, check_registry=False)
        raise RuntimeError("after the rows")
    assert content(store) == before


def test_concurrent_adds_do_not_queue_behind_each_others_nlp(
    four_articles: Store, embedder: Embedder, nlp: object
) -> None:
    """Two adds are inside the model at the same time (a barrier only both can pass), and both land."""
    barrier = threading.Barrier(2, timeout=60)

    class Meeting:
        name, revision, dim = embedder.name, embedder.revision, embedder.dim

        def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
            barrier.wait()  # raises BrokenBarrierError if the other add never gets here
            return embedder.encode(texts, batch_size)

    texts = [
        '"The harvest in the north will be the largest in a decade," Dmitry Peskov told reporters.',
        '"Grain exports will double next year, and the ports are ready," Sergei Lavrov told reporters.',
    ]
    reports: list[Any] = []
    errors: list[BaseException] = []

    def add(i: int) -> None:
        try:
            article = make_article(texts[i], ArticleMeta("Wire", f"https://example.org/c{i}", None))
            reports.append(add_article(four_articles, article, Meeting(), nlp))  # type: ignore[arg-type]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert sorted(r.status for r in reports) == ["added", "added"]
    assert sorted(r.store_version for r in reports) == [5, 6]


def test_an_add_extracted_before_a_new_speaker_was_stored_is_extracted_again(
    four_articles: Store, embedder: Embedder, nlp: object
) -> None:
    """B names "Holloway", whom A introduces. Extracted before A was stored, B would make a speaker
    of the bare surname; persisting it then is refused, and the add gives what adding A, then B gives."""
    store = four_articles
    a = make_article(
        "Jane Holloway, a spokeswoman for the Ministry of Agriculture, spoke on Monday. "
        '"The harvest in the north will be the largest in a decade," Jane Holloway told reporters.',
        ArticleMeta("Wire", "https://example.org/a", None),
    )
    b = make_article(
        '"We expect exports of grain to double next year," Holloway said on Tuesday.',
        ArticleMeta("Wire", "https://example.org/b", None),
    )
    with store.read() as r:
        state = r.state()
        registry = store.shared_registry(r, state.registry_version)
    stale = ingest.prepare(b, registry, state.registry_version, embedder, nlp)
    assert [m.speaker_id for m in stale.statements] == ["holloway"]
    assert add_article(store, a, embedder, nlp).new_speakers == ("jane-holloway",)
    with pytest.raises(ingest.RegistryMoved):
        ingest.persist(store, stale)
    report = add_article(store, b, embedder, nlp)
    assert [m.speaker_id for m in report.statements] == ["jane-holloway"] and report.new_speakers == ()
    # Names the article does not contain do not make it wait: an unrelated add goes straight in.
    unrelated = ingest.prepare(_babel(), registry, state.registry_version, embedder, nlp)
    assert ingest.persist(store, unrelated).status == "added"


def test_concerns_needs_the_name_in_the_text() -> None:
    changes = [(SpeakerKind.PERSON, "Jane Holloway"), (SpeakerKind.ORGANISATION, "Ministry of Agriculture")]
    assert ingest.concerns(changes, "Holloway said so.")
    assert ingest.concerns(changes, "Hollowey said so.")  # a spelling variant of the surname
    assert ingest.concerns(changes, "The Ministry of Agriculture said so.")
    assert not ingest.concerns(changes, "The ministry said so, Peskov added.")
    assert not ingest.concerns([], "Holloway said so.")


# -- reading: the indexed lookups ---------------------------------------------------------------------


def test_wording_lookups(corpus_store: Store) -> None:
    quote = _quote_with(corpus_store, "restoration of relations must")
    variant = max(quote.variants, key=lambda v: len(v.text))
    norm = canon.normalise_text(variant.text)
    with corpus_store.read() as r:
        (same,) = r.same_wording([norm])
        assert [(row.id, row.quote_id) for row in same] == [(variant.id, quote.id)]
        part = " ".join(norm.split()[2:7])
        inside = r.containing(part)
        assert variant.id in {row.id for row in inside}
        assert all(f" {part} " in f" {row.norm} " for row in inside)
        # The same words in another order: the full-text index finds the wording, the run check drops it.
        reordered = " ".join(reversed(part.split()))
        assert variant.id not in {row.id for row in r.containing(reordered)}
        assert [row.id for row in r.verbatim(norm)] == [row.id for row in same]
        assert r.verbatim("not a wording anyone stored") == []
        assert r.same_wording(["nothing like it"]) == [[]]


def test_search_finds_the_nearest_variants_with_their_vectors(corpus_store: Store, embedder: Embedder) -> None:
    quote = _quote_with(corpus_store, "maintain a permanent dialogue with the Syrian authorities")
    variant = quote.variants[0]
    query = embedder.encode([variant.text])
    with corpus_store.read() as r:
        (hits,) = r.search(query, 5)
        assert len(hits.ids) == 5 and not hits.exhausted
        assert (int(hits.ids[0]), hits.quote_ids[0]) == (variant.id, quote.id)
        stored = r.vectors(hits.ids.tolist())
        assert all(np.array_equal(stored[int(i)], v) for i, v in zip(hits.ids, hits.vectors, strict=True))
        scores = hits.vectors @ query[0]
        assert scores[0] == pytest.approx(scores.max())
        (everything,) = r.search(query, 10_000)
        assert everything.exhausted and len(everything.ids) == r.state().variants


def test_candidates_include_every_variant_affinity_scores_at_the_threshold(
    corpus_store: Store, embedder: Embedder
) -> None:
    """canon.affinity scores with np.dot and the store filters with a matrix product; the two round
    differently, and a variant that affinity scores exactly at the threshold must still be found."""
    query = embedder.encode(["We will keep talking with the Syrian authorities about the future"])[0]
    with corpus_store.read() as r:
        assert isinstance(r, Writer)
        (hits,) = r.search(query[None], 40)
        for vector in hits.vectors:
            at = float(np.dot(query, vector))  # as canon.affinity computes it
            clusters = r.clusters(["no stored wording"], query[None], at)
            assert any(np.array_equal(v, vector) for c in clusters for v in c.vectors), at


# -- refusals -----------------------------------------------------------------------------------------


def test_store_of_another_model_is_refused(corpus_store: Store, embedder: Embedder) -> None:
    location = corpus_store.url if isinstance(corpus_store, PostgresStore) else corpus_store.location
    with pytest.raises(StoreError, match="vectors of two models cannot be compared"):
        open_store(location, embedder.name, "0000000000000000")


def test_missing_or_foreign_store_is_refused(stores: Stores, tmp_path: Path, embedder: Embedder) -> None:
    with pytest.raises(StoreError, match="python -m service build"):
        stores.open(stores.new_location())
    if stores.backend == "sqlite":
        junk = tmp_path / "junk.sqlite3"
        junk.write_bytes(b"not a database at all" * 100)
        with pytest.raises(StoreError, match="not a quote store"):
            stores.open(junk)
    else:
        with pytest.raises(StoreError, match="cannot connect"):
            stores.open("postgresql://nobody@127.0.0.1:1/none")


def test_failed_build_keeps_the_previous_store(
    tmp_path: Path, built_store: SqliteStore, embedder: Embedder, nlp: object
) -> None:
    path = tmp_path / "quotes.sqlite3"
    path.write_bytes(built_store.path.read_bytes())
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    broken = copy_corpus(tmp_path / "broken")
    (broken / "manifest.json").write_text('{"articles": [{"file": "x.txt"}]}', "utf-8")
    with pytest.raises(CorpusError):
        build_store(broken, path, embedder, nlp)
    with pytest.raises(RuntimeError, match="killed mid-write"):
        build_store(CORPUS, path, _FailingEmbedder(embedder), nlp)  # type: ignore[arg-type]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".quotes")] == []


def test_a_postgres_build_adds_what_is_missing_and_never_rebuilds(
    pg_server: str, pg_corpus: str, embedder: Embedder, settings: Any
) -> None:
    from service.build import build_if_stale

    url = pgdb.copy_database(pg_server, pg_corpus)
    assert build_if_stale(CORPUS, url, settings.model_dir, CORPUS / "speakers.json") is None
    with pytest.raises(StoreError, match="never rebuilt"):
        build_if_stale(CORPUS, url, settings.model_dir, CORPUS / "speakers.json", force=True)
