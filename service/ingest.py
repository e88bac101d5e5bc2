"""Ingest: an article → its statements → their vectors → canonical quotes → the store.

    extract (spaCy + rules)   embed (the model)   ─┐  outside any transaction: concurrent adds run
                                                   │  these at the same time
    canonicalise + persist                        ─┘  one write transaction per article

`prepare` does the language work: extraction against a copy of the stored speaker registry, and
the embedding of the statements the store keeps (QuoteMention.quotable: speech from the article's
body with a resolved speaker; beliefs, intentions and evidence are attributions but not quotes).
`persist` opens the write transaction, compares the statements with the quotes the store's index finds near them
(`Writer.clusters`: candidates from the vector index's top-k and the wording indexes, never every
stored vector), and writes the article, its variants and new quotes, and the version, at once.

Extraction reads the registry (who is "Sharaa"?) and may add to it. An add whose extraction ran
while another add stored speakers is checked at persist time: if the stored names could resolve
differently in this article (`concerns`), its extraction is done again with the new registry, so
that the result is what adding the articles one after the other gives. After `ATTEMPTS` such
retries the extraction runs inside the write transaction (everything else waits for that one).

Idempotent by URL and content hash: the same article again is "unchanged" (found before any
extraction); the same URL with a new text replaces the old one ("updated") in the same transaction.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from rapidfuzz import fuzz, process

from . import canon
from .extract import extract_article
from .records import Article, QuoteMention, SpeakerKind
from .speakers import SpeakerRegistry, institution_key, normalise, surname
from .store import AddReport, EmbedderLike, RegistryDelta, Store, Writer, copy_registry, registry_delta

ATTEMPTS = 3
# A stored name concerns an article when its surname is in it this closely (speakers.same_person's
# threshold for surnames), or, for an institution, when every word of its name is.
_SURNAME_RATIO = 80
_MERGE_FLOOR = min(canon.MERGE_SAME_SPEAKER, canon.MERGE_OTHER_SPEAKER)


@dataclass(frozen=True, slots=True)
class Prepared:
    """An article made ready to persist: what extraction found and taught, the statements' vectors."""

    article: Article
    statements: tuple[QuoteMention, ...]  # the mentions the store keeps, in article order
    vectors: np.ndarray  # (statements, dim) float32, L2-normalised
    delta: RegistryDelta  # speakers and aliases the extraction added to the registry
    registry_version: int  # the stored registry the extraction started from
    extract_s: float = 0.0
    encode_s: float = 0.0


class RegistryMoved(Exception):
    """Speakers stored since the extraction began could change it: prepare the article again."""


def kept(mentions: tuple[QuoteMention, ...]) -> list[QuoteMention]:
    """What the store keeps (QuoteMention.quotable): speech from the body by a resolved speaker."""
    return [m for m in mentions if m.quotable]


def prepare(
    article: Article, registry: SpeakerRegistry, registry_version: int, embedder: EmbedderLike, nlp: object
) -> Prepared:
    """Extraction and embedding; `registry` is read, never changed (extraction works on a copy)."""
    working = copy_registry(registry)
    started = time.perf_counter()
    extraction = extract_article(article, working, nlp)
    statements = kept(extraction.mentions)
    extracted = time.perf_counter()
    if statements:
        vectors = np.asarray(embedder.encode([m.text for m in statements]), dtype=np.float32)
    else:
        vectors = np.zeros((0, embedder.dim), dtype=np.float32)
    encoded = time.perf_counter()
    return Prepared(
        article,
        tuple(statements),
        vectors,
        registry_delta(registry, working),
        registry_version,
        extracted - started,
        encoded - extracted,
    )


def concerns(changes: list[tuple[SpeakerKind, str]], text: str) -> bool:
    """Whether names stored after an extraction began could resolve differently in `text`.

    Every way the registry resolves a name needs it in the text: a person's by its surname (an
    exact alias, a spelling variant of a full name, a bare surname, a namesake's id) and an
    institution's by all the words of its name. So a name whose surname (or whose words) the text
    does not hold cannot change what extraction finds in it. The test errs on the side of "yes".
    """
    if not changes:
        return False
    words = set(normalise.__wrapped__(text).split())  # not through the cache: texts are long
    for kind, name in changes:
        if kind is SpeakerKind.PERSON:
            key = surname(name)
            if key and (key in words or process.extractOne(key, words, scorer=fuzz.ratio, score_cutoff=_SURNAME_RATIO)):
                return True
        else:
            key_words = institution_key(name).split()
            if key_words and all(w in words for w in key_words):
                return True
    return False


def _unchanged(article: Article, version: int) -> AddReport:
    return AddReport(article.id, article.url, "unchanged", store_version=version)


def _write(w: Writer, prepared: Prepared, check_registry: bool) -> AddReport:
    """Persists a prepared article inside the open write transaction `w`."""
    article = prepared.article
    existing = w.article_state(article.url)
    state = w.state()
    if existing is not None and existing.content_hash == article.content_hash:
        return _unchanged(article, state.version)
    if (
        check_registry
        and state.registry_version != prepared.registry_version
        and concerns(w.registry_changes(prepared.registry_version), article.text)
    ):
        raise RegistryMoved
    status = "added"
    if existing is not None:
        status = "updated"
        w.delete_article(existing.id)
    new_speakers, new_aliases = w.save_registry(prepared.delta)
    w.insert_article(article)
    mentions = list(prepared.statements)
    vectors = prepared.vectors
    clusters = w.clusters([canon.normalise_text(m.text) for m in mentions], vectors, _MERGE_FLOOR) if mentions else []
    before = {c.quote_id for c in clusters}
    assigned = canon.assign(mentions, vectors, clusters)
    new_quotes: list[str] = []
    joined: list[str] = []
    for quote_id, created in assigned:
        if created:
            w.insert_quote(quote_id)
            new_quotes.append(quote_id)
        elif quote_id in before and quote_id not in joined:
            joined.append(quote_id)
    w.insert_variants([(q, m, v) for (q, _), m, v in zip(assigned, mentions, vectors, strict=True)])
    return AddReport(
        article.id,
        article.url,
        status,
        len(mentions),
        tuple(new_quotes),
        tuple(joined),
        tuple(new_speakers),
        tuple(new_aliases),
        w.bump(),
        tuple(mentions),
    )


def persist(store: Store, prepared: Prepared) -> AddReport:
    """One write transaction. Raises RegistryMoved when the article must be prepared again."""
    with store.write() as w:
        return _write(w, prepared, check_registry=True)


def add_article(store: Store, article: Article, embedder: EmbedderLike, nlp: object) -> AddReport:
    """Extract, canonicalise and persist one article: its NLP outside, its write in one transaction."""
    for _ in range(ATTEMPTS):
        with store.read() as r:
            existing = r.article_state(article.url)
            state = r.state()
            if existing is not None and existing.content_hash == article.content_hash:
                return _unchanged(article, state.version)
            registry = store.shared_registry(r, state.registry_version)
        try:
            return persist(store, prepare(article, registry, state.registry_version, embedder, nlp))
        except RegistryMoved:
            continue
    # Other adds keep storing names this article mentions: extract it inside the transaction.
    with store.write() as w:
        state = w.state()
        prepared = prepare(article, w.registry(), state.registry_version, embedder, nlp)
        return _write(w, prepared, check_registry=False)
