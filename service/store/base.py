"""The storage interface: what the pipeline asks of a quote store, whichever database holds it.

A store persists and answers; it decides nothing about language. Ingest (service/ingest.py) decides
what an article's statements are and which canonical quote each one joins, and hands the store rows
to write inside one `Store.write()` transaction. The matcher (service/match.py) asks a
`Store.read()` view for the nearest variants of its segments, the variants with the same words, and
the records of the few quotes it reports.

Both backends (service/store/sqlite.py, service/store/postgres.py) implement `Reader` and `Writer`
over the same schema (service/store/migrations.py); tests/test_store.py runs one contract suite
against both.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import threading
from abc import ABC, abstractmethod
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .. import canon
from ..records import (
    Article,
    CanonicalQuote,
    CueClass,
    MentionKind,
    QuoteMention,
    Source,
    Span,
    Speaker,
    SpeakerKind,
    Variant,
)
from ..speakers import AliasRecord, SpeakerRegistry

Row = Mapping[str, Any]

# canon.affinity scores a candidate with its own float32 dot product, whose summation order (and so
# rounding) differs from the matrix product Writer._near filters with: _near keeps rows this far
# below its threshold too, so that no row affinity puts at the threshold is missed. For unit
# vectors the two differ by at most 2·dim·2⁻²⁴ (9.5e-5 at 800 dimensions); a row kept in excess
# only costs affinity one comparison.
_ROUNDING = 1e-4


class StoreError(RuntimeError):
    """The store is missing, from another model or schema, or a write was refused; says the fix."""


class EmbedderLike(Protocol):
    name: str
    revision: str
    dim: int

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray: ...


@dataclass(frozen=True, slots=True)
class StoreState:
    """What a reader checks first: the store's version, its registry's version and its size."""

    version: int
    registry_version: int
    quotes: int
    variants: int


@dataclass(frozen=True, slots=True)
class ArticleState:
    id: str
    content_hash: str


@dataclass(frozen=True, slots=True)
class Hits:
    """One query's nearest variants, in the backend's search order, with their stored vectors.

    `vectors` are the exact float32 vectors the store holds, so that every backend's caller scores
    them the same way (service/match.py re-scores; an approximate index only chooses the rows).
    `exhausted`: the search returned fewer rows than asked, so asking for more finds nothing more.
    """

    ids: np.ndarray  # (n,) int64 variant ids
    quote_ids: list[str]
    vectors: np.ndarray  # (n, dim) float32
    exhausted: bool


@dataclass(frozen=True, slots=True, eq=False)
class WordingRow:
    """A stored variant found by its words: its id, quote, normalised wording, speaker, vector."""

    id: int
    quote_id: str
    norm: str
    speaker_id: str | None
    vector: np.ndarray


@dataclass(frozen=True, slots=True)
class RegistryDelta:
    """What one article's extraction taught the registry: speakers it added or gave a role, and
    aliases it added. Written as it is; nothing else of the registry is touched."""

    speakers: tuple[Speaker, ...] = ()
    aliases: tuple[AliasRecord, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.speakers or self.aliases)


def registry_delta(before: SpeakerRegistry, after: SpeakerRegistry) -> RegistryDelta:
    """The difference `after - before` of a registry copy that extraction changed."""
    speakers = []
    for sid in sorted(after.speakers):
        sp = after.speakers[sid]
        old = before.speakers.get(sid)
        if old is None or (old.role is None and sp.role is not None):
            speakers.append(Speaker(sp.id, sp.name, sp.kind, sp.role, set()))
    aliases = tuple(rec for rec in after.aliases() if (rec.speaker_id, rec.alias) not in before.alias_origin)
    return RegistryDelta(tuple(speakers), aliases)


def copy_registry(registry: SpeakerRegistry) -> SpeakerRegistry:
    return SpeakerRegistry.from_speakers(registry.snapshot(), registry.alias_origin)


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


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def initial_meta(schema: int, model_name: str, model_revision: str, dim: int, **extra: str) -> list[tuple[str, str]]:
    """The meta rows of a new, empty store."""
    stamp = now()
    return [
        ("schema_version", str(schema)),
        ("model_name", model_name),
        ("model_revision", model_revision),
        ("embedding_dim", str(dim)),
        ("store_version", "0"),
        ("built_at", stamp),
        ("updated_at", stamp),
        *extra.items(),
    ]


def norm_key(norm: str) -> int:
    """A signed 64-bit key of a normalised wording: the indexed column equal wordings are found by."""
    return int.from_bytes(hashlib.blake2b(norm.encode("utf-8"), digest_size=8).digest(), "big", signed=True)


def spans_json(spans: Sequence[Span]) -> str:
    return json.dumps([[s.start, s.end, s.text] for s in spans], ensure_ascii=False)


def span_json(span: Span | None) -> str | None:
    return json.dumps([span.start, span.end, span.text], ensure_ascii=False) if span else None


def variant_values(quote_id: str, mention: QuoteMention, vector: np.ndarray) -> dict[str, Any]:
    """The columns of a new variant row (the embedding as float32)."""
    norm = canon.normalise_text(mention.text)
    return {
        "quote_id": quote_id,
        "article_id": mention.article_id,
        "kind": mention.kind.value,
        "text": mention.text,
        "spans": spans_json(mention.spans),
        "cue": mention.cue,
        "speaker_mention": mention.speaker_mention,
        "speaker_id": mention.speaker_id,
        "confidence": mention.confidence,
        "embedding": np.asarray(vector, dtype=np.float32),
        "cue_class": mention.cue_class.value,
        "content": spans_json(mention.content) if mention.content else None,
        "speaker_span": span_json(mention.speaker_span),
        "norm": norm,
        "norm_key": norm_key(norm),
    }


def article_values(article: Article) -> dict[str, Any]:
    return {
        "id": article.id,
        "url": article.url,
        "outlet": article.outlet,
        "title": article.title,
        "published": article.published.isoformat() if article.published else None,
        "language": article.language,
        "file": article.file,
        "wire": article.wire,
        "content_hash": article.content_hash,
        "text": article.text,
        "added_at": now(),
    }


def _spans(raw: str | None) -> tuple[Span, ...]:
    return tuple(Span(s[0], s[1], s[2]) for s in json.loads(raw)) if raw else ()


def _span(raw: str | None) -> Span | None:
    if not raw:
        return None
    start, end, text = json.loads(raw)
    return Span(start, end, text)


def order_key(published: str | None, article_id: str) -> tuple[int, str]:
    """Sources earliest first, undated ones last (SQL: `ORDER_SQL` computes the same as one string)."""
    return (0, published + article_id) if published else (1, article_id)


# The quote listing's order in SQL: '0' + date + article id, or '1' + article id, compared bytewise.
ORDER_SQL = (
    "MIN(CASE WHEN a.published IS NOT NULL THEN '0' || a.published || v.article_id ELSE '1' || v.article_id END)"
)

VARIANT_COLUMNS = (
    "v.id, v.quote_id, v.article_id, v.kind, v.text, v.spans, v.cue, v.speaker_mention, v.speaker_id, "
    "v.confidence, v.cue_class, v.content, v.speaker_span, a.outlet, a.url, a.published, a.title, "
    "s.name AS speaker_name"
)


def _source_order(source: Source) -> tuple[int, str]:
    return order_key(source.published.isoformat() if source.published else None, source.article_id)


def canonical(quote_id: str, rows: Sequence[Row]) -> CanonicalQuote:
    """A canonical quote from its variant rows (VARIANT_COLUMNS), sources earliest first."""
    variants = []
    facts = []
    for r in rows:
        published = dt.date.fromisoformat(r["published"]) if r["published"] else None
        source = Source(r["article_id"], r["outlet"], r["url"], published, r["title"])
        kind = MentionKind(r["kind"])
        variants.append(
            Variant(
                int(r["id"]),
                quote_id,
                r["text"],
                kind,
                _spans(r["spans"]),
                r["cue"],
                r["speaker_mention"],
                r["speaker_id"],
                float(r["confidence"]),
                source,
                CueClass(r["cue_class"]),
                _spans(r["content"]),
                _span(r["speaker_span"]),
            )
        )
        facts.append(
            canon.VariantFacts(
                r["speaker_id"],
                r["speaker_name"],
                r["article_id"],
                order_key(r["published"], r["article_id"]),
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


def registry_from_rows(speakers: Sequence[Row], aliases: Sequence[Row]) -> SpeakerRegistry:
    """The registry as stored; speakers in the order they were first stored (lookups that scan
    speakers take the first that fits, so the order is part of the result)."""
    by_id = {r["id"]: Speaker(r["id"], r["name"], SpeakerKind(r["kind"]), r["role"], set()) for r in speakers}
    origins = {}
    for r in aliases:
        by_id[r["speaker_id"]].aliases.add(r["alias"])
        origins[(r["speaker_id"], r["alias"])] = r["origin"]
    return SpeakerRegistry.from_speakers(list(by_id.values()), origins)


def like_pattern(word: str) -> str:
    return "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class Reader(ABC):
    """A consistent view of the store for the length of one `Store.read()` (or `write()`) block."""

    @abstractmethod
    def state(self) -> StoreState: ...

    @abstractmethod
    def meta(self) -> dict[str, str]: ...

    @abstractmethod
    def registry(self) -> SpeakerRegistry:
        """The registry as stored (a new object)."""

    @abstractmethod
    def article_state(self, url: str) -> ArticleState | None: ...

    @abstractmethod
    def variant_rows(self, quote_ids: Sequence[str]) -> list[Row]:
        """VARIANT_COLUMNS of every variant of these quotes, by variant id."""

    @abstractmethod
    def quote_page(
        self, speaker_id: str | None, words: Sequence[str], disputed: bool | None, limit: int, offset: int
    ) -> tuple[int, list[str]]:
        """Quote ids by filters, earliest first (ORDER_SQL, then id), and how many match in all."""

    @abstractmethod
    def speaker_quote_counts(self) -> dict[str, int]: ...

    @abstractmethod
    def search(self, vectors: np.ndarray, k: int) -> list[Hits]:
        """The k variants nearest each query (cosine), by the backend's index."""

    @abstractmethod
    def same_wording(self, norms: Sequence[str]) -> list[list[WordingRow]]:
        """Per normalised wording, the variants with exactly that wording (an indexed lookup)."""

    @abstractmethod
    def containing(self, norm: str) -> list[WordingRow]:
        """Variants whose wording contains `norm` as a run of whole words (a full-text index finds
        candidates, which are then checked word for word)."""

    @abstractmethod
    def vectors(self, ids: Sequence[int]) -> dict[int, np.ndarray]:
        """The stored vectors of these variants (those that exist)."""

    @abstractmethod
    def first_variants(self, quote_ids: Sequence[str]) -> dict[str, int]:
        """The smallest variant id of each quote: quotes in the order their first variant was stored."""

    # -- built on the above ----------------------------------------------------------------------

    def quotes_by_ids(self, quote_ids: Sequence[str]) -> dict[str, CanonicalQuote]:
        grouped: dict[str, list[Row]] = defaultdict(list)
        for row in self.variant_rows(list(dict.fromkeys(quote_ids))):
            grouped[row["quote_id"]].append(row)
        return {qid: canonical(qid, rows) for qid, rows in grouped.items()}

    def verbatim(self, norm: str) -> list[WordingRow]:
        """The variants a segment repeats word for word: the same wording, or else (for three
        words or more) a wording that contains it."""
        if not norm:
            return []
        same = self.same_wording([norm])[0]
        if same or len(norm.split()) < canon.MIN_CONTAINED_WORDS:
            return same
        return self.containing(norm)


def contains_words(outer: str, inner: str) -> bool:
    return f" {inner} " in f" {outer} "


class Writer(Reader):
    """The one write transaction of an add: everything here commits together or not at all."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()  # rows added (negative: removed), written by flush()

    @abstractmethod
    def delete_article(self, article_id: str) -> None:
        """The article, its variants, and the quotes left without a variant."""

    @abstractmethod
    def registry_changes(self, since: int) -> list[tuple[SpeakerKind, str]]:
        """(kind, name) of every speaker name and alias stored or changed after registry version `since`."""

    @abstractmethod
    def save_registry(self, delta: RegistryDelta) -> tuple[list[str], list[tuple[str, str]]]:
        """Writes the delta; returns the speakers and aliases that were not stored yet."""

    @abstractmethod
    def insert_article(self, article: Article) -> None: ...

    @abstractmethod
    def insert_quote(self, quote_id: str) -> None: ...

    @abstractmethod
    def insert_variants(self, rows: Sequence[tuple[str, QuoteMention, np.ndarray]]) -> None:
        """(quote id, mention, vector) of each new variant, in one statement; ids follow their order."""

    @abstractmethod
    def bump(self) -> int:
        """The store's next version; returns it."""

    @abstractmethod
    def flush(self) -> None:
        """Adds this transaction's row counts to meta (`Store.write` calls it before committing)."""

    def clusters(self, norms: Sequence[str], vectors: np.ndarray, min_score: float) -> list[canon.Cluster]:
        """The stored quotes a new mention could join, as canon.Cluster, in the order their first
        variant was stored (canon.assign breaks ties by that order).

        For each mention: every variant at cosine >= `min_score` (the search is widened until its
        last row is below it), every variant with the same words, every variant that contains the
        mention's words (3 or more) and every variant contained in them. canon.affinity is above
        zero for no other variant, so assigning against these clusters gives what assigning
        against every stored quote gives (with an exact search; an approximate one may miss a row
        it does not return). A quote contributes the variants found, not all of its variants:
        the others cannot raise its affinity.
        """
        found: dict[int, WordingRow] = {}
        state = self.state()
        if not state.variants:
            return []
        for hits in self._near(vectors, min_score, state.variants):
            found.update((row.id, row) for row in hits)
        wordings: set[str] = set(norms)  # the same words, and every run of 3+ words of the mention
        for norm in norms:
            words = norm.split()
            if len(words) >= canon.MIN_CONTAINED_WORDS:
                found.update((row.id, row) for row in self.containing(norm))
                wordings.update(
                    " ".join(words[i:j])
                    for i in range(len(words))
                    for j in range(i + canon.MIN_CONTAINED_WORDS, len(words) + 1)
                )
        for rows in self.same_wording(sorted(wordings)):
            found.update((row.id, row) for row in rows)
        firsts = self.first_variants(sorted({row.quote_id for row in found.values()}))
        clusters: dict[str, canon.Cluster] = {}
        for qid in sorted(firsts, key=lambda q: firsts[q]):
            clusters[qid] = canon.Cluster(qid)
        for row in sorted(found.values(), key=lambda r: r.id):
            c = clusters[row.quote_id]
            c.texts.append(row.norm)
            c.speakers.append(row.speaker_id)
            c.vectors.append(row.vector)
        return list(clusters.values())

    def _near(self, vectors: np.ndarray, min_score: float, total: int) -> list[list[WordingRow]]:
        """Per query, every variant the search finds at cosine >= min_score (float32, less _ROUNDING)."""
        out: list[list[WordingRow]] = [[] for _ in range(len(vectors))]
        pending = list(range(len(vectors)))
        k = 64
        while pending:
            hits = self.search(vectors[pending], k)
            again = []
            for i, h in zip(pending, hits, strict=True):
                scores = h.vectors @ vectors[i] if len(h.ids) else np.zeros(0, dtype=np.float32)
                keep = scores >= min_score - _ROUNDING
                if not h.exhausted and keep.all() and k < total:
                    again.append(i)  # every row returned qualifies: there may be more below them
                    continue
                ids = h.ids[keep].tolist()
                out[i] = self._wording_rows(ids, h)
            pending, k = again, k * 4
        return out

    def _wording_rows(self, ids: list[int], hits: Hits) -> list[WordingRow]:
        if not ids:
            return []
        rows = self.wordings(ids)
        vectors = dict(zip(hits.ids.tolist(), hits.vectors, strict=True))
        return [WordingRow(r.id, r.quote_id, r.norm, r.speaker_id, vectors[r.id]) for r in rows]

    @abstractmethod
    def wordings(self, ids: Sequence[int]) -> list[WordingRow]:
        """The wording rows of these variant ids (vector included)."""


class Store(ABC):
    """A quote store. Thread-safe; `read()` and `write()` each hold one connection for their block."""

    backend: str
    model_name: str
    model_revision: str
    dim: int

    def __init__(self) -> None:
        self._registry_lock = threading.Lock()
        self._registry_cache: tuple[int, SpeakerRegistry] | None = None

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the store is, for messages and /v1/info (a URL without its password)."""

    @abstractmethod
    def read(self) -> contextlib.AbstractContextManager[Reader]: ...

    @abstractmethod
    def write(self) -> contextlib.AbstractContextManager[Writer]: ...

    def close(self) -> None:  # noqa: B027 (a backend without resources has nothing to close)
        """Release connections; the store is not used afterwards."""

    def refresh(self) -> None:  # noqa: B027 (only a backend with an in-process index has work here)
        """Bring in-process search structures up to the stored state (done lazily otherwise)."""

    # -- the registry, cached per registry version -----------------------------------------------

    def shared_registry(self, reader: Reader, registry_version: int) -> SpeakerRegistry:
        """The stored registry at `registry_version`, shared: read it, never change it."""
        with self._registry_lock:
            cached = self._registry_cache
        if cached is not None and cached[0] == registry_version:
            return cached[1]
        registry = reader.registry()
        with self._registry_lock:
            if self._registry_cache is None or self._registry_cache[0] < registry_version:
                self._registry_cache = (registry_version, registry)
        return registry

    def registry(self) -> SpeakerRegistry:
        """A private copy of the stored registry (extraction adds to the copy it is given)."""
        with self.read() as r:
            return copy_registry(self.shared_registry(r, r.state().registry_version))

    # -- reading -------------------------------------------------------------------------------

    def version(self) -> int:
        with self.read() as r:
            return r.state().version

    def info(self) -> dict[str, Any]:
        with self.read() as r:
            meta = r.meta()
        return {
            "backend": self.backend,
            "location": self.location,
            "store_version": int(meta["store_version"]),
            "schema_version": int(meta["schema_version"]),
            "model_name": meta["model_name"],
            "model_revision": meta["model_revision"],
            "built_at": meta.get("built_at"),
            "updated_at": meta.get("updated_at"),
            **{table: int(meta[f"count_{table}"]) for table in ("articles", "speakers", "quotes", "variants")},
        }

    def speakers(self) -> list[tuple[Speaker, int]]:
        """Every speaker with the number of canonical quotes ascribed to them by any source."""
        with self.read() as r:
            registry = self.shared_registry(r, r.state().registry_version)
            counts = r.speaker_quote_counts()
        return [(sp, counts.get(sp.id, 0)) for sp in copy_registry(registry).snapshot()]

    def speaker(self, speaker_id: str) -> Speaker | None:
        with self.read() as r:
            found = self.shared_registry(r, r.state().registry_version).speakers.get(speaker_id)
        return Speaker(found.id, found.name, found.kind, found.role, set(found.aliases)) if found else None

    def quote(self, quote_id: str) -> CanonicalQuote | None:
        with self.read() as r:
            return r.quotes_by_ids([quote_id]).get(quote_id)

    def quotes(
        self,
        speaker_id: str | None = None,
        search: str | None = None,
        disputed: bool | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[int, list[CanonicalQuote]]:
        """Canonical quotes, earliest first: by any attribution to a speaker, by words (each word
        in a wording, after canon.normalise_text), disputed or not; and how many match in all."""
        words: list[str] = []
        if search:
            words = canon.normalise_text(search).split()
            if not words:  # only punctuation: it matches no wording, not every one
                return 0, []
        with self.read() as r:
            total, ids = r.quote_page(speaker_id, words, disputed, limit, offset)
            found = r.quotes_by_ids(ids)
        return total, [found[q] for q in ids if q in found]


def backend_of(location: str) -> str:
    return "postgresql" if location.startswith(("postgresql://", "postgres://")) else "sqlite"


@contextlib.contextmanager
def closing_store(store: Store) -> Iterator[Store]:
    try:
        yield store
    finally:
        store.close()
