"""Matching any text against the quote store: segments, candidates, labels, flags, attribution.

The pipeline for one input text:

1. **Segment** (`service/extract/segments.py`, one parse shared with the extractor; the matcher
   never parses). Quotations first, found and attributed by the article extractor run on the input
   as a throwaway article, so a quote split around its cue (`"…," he said. "…"`) is one segment
   and the speaker the input names for it is resolved through the store's speaker registry. A
   quotation the extractor attributes to nobody (its cue is not a speech verb: "spoke of") still
   becomes a segment, with the subject of its verb as the named speaker when there is one.
   Reported speech ("Peskov stressed that Moscow will …") becomes one segment holding the reported
   content only, with its speaker: the store's variants of reported speech hold the content too, and
   the frame ("Kremlin spokesman Dmitry Peskov stressed that") would only dilute the embedding
   (0.67 → 0.87 cosine on the issue's Peskov example). Every other sentence outside quotations is
   a segment of its own; a sentence that frames a quotation is not, and fragments of fewer than
   three words are skipped.
2. **Embed** all segments in one batched call with the model that built the store, and search the
   variants' vectors for each segment's best rows (service/vectors.py: exact float32 for small
   stores, a compact approximate index for large ones, by `index`). A canonical quote scores the
   best of its variants; the search asks for several rows per wanted quote, and again for more
   when they do not hold enough distinct quotes (see `_candidates`).
3. **Label** the best candidate: ``verbatim`` when the segment has the same words as a variant after
   `canon.normalise_text`, or is a contiguous run of at least three words of one; otherwise
   ``paraphrase`` / ``related`` / ``none`` by the calibrated thresholds (service/calibration.json,
   made by eval/calibrate.py). A segment of fewer than `min_words_paraphrase` words is at most
   ``related`` on similarity alone: short phrases ("important trip") recur in unrelated statements.
4. **Flags** (service/flags.py) compare the segment word by word with the variant of the matched
   quote that it follows best (fewest flags, then highest similarity: a rendering faithful to any
   one reported wording is faithful).

   The rule for flagged matches: **the label says how close the wording is, the flags say whether
   the meaning survived, and a match is a clean paraphrase or verbatim quote only when its flags
   are empty.** A flagged match keeps its similarity label (so "Russia does not support …" is still
   reported as the Foreign Ministry's statement, closely worded), and its flags are never empty;
   clients must not present a flagged match as faithful. `Match.clean` encodes that rule.
5. **Attribution verdict.** The speaker the segment names (or, when it names nobody, the `speaker`
   argument) is compared with the quote's attributions: ``consistent`` (the majority speaker),
   ``misattributed`` (someone no source gives it to), ``disputed`` (the sources disagree, and the
   input names one of them or nobody), ``unverified`` (nobody named, undisputed quote). A name the
   registry does not know still counts as naming someone: unless it is a generic description of an
   attributed speaker ("the Foreign Ministry" for the Russian Foreign Ministry), it is misattributed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from . import canon
from .embed import Embedder
from .extract.segments import segment_text
from .flags import compare_meaning
from .records import CanonicalQuote, Flag, Label, Segment, Variant, Verdict
from .speakers import SpeakerRegistry, institution_key
from .store import Store
from .thresholds import CALIBRATION_FILE, Thresholds
from .vectors import INDEX_KINDS, VectorIndex, build_index

__all__ = [
    "CALIBRATION_FILE",
    "Candidate",
    "Comparison",
    "Flag",
    "Match",
    "Matcher",
    "Segment",
    "Thresholds",
]

# Rows asked of the vector index per segment: CANDIDATE_ROWS_PER_QUOTE per wanted quote (top_k + 1)
# and never fewer than MIN_CANDIDATE_ROWS. A quote has 1.6 variants on average in the corpus (7 at
# most) and its wordings sit close together, so the best rows often belong to one quote; 4 per
# wanted quote covers that in one search, and a search that finds too few distinct quotes is
# repeated with 4 times as many rows (see `_candidates`). MIN_CANDIDATE_ROWS makes a small store's
# search return every row, so ranking there is exactly the former search over all rows, ties
# included; it costs nothing measurable (docs/store-scale.md).
CANDIDATE_ROWS_PER_QUOTE = 4
MIN_CANDIDATE_ROWS = 64


@dataclass(frozen=True, slots=True)
class Candidate:
    quote_id: str
    text: str
    speaker_id: str | None
    speaker_name: str | None
    similarity: float


@dataclass(frozen=True, slots=True)
class Match:
    segment: Segment
    quote: CanonicalQuote | None
    similarity: float
    label: Label
    flags: tuple[Flag, ...]
    attribution: Verdict | None  # None without a match
    alternatives: tuple[Candidate, ...]
    variant: Variant | None = None  # the wording the segment was compared with (flags refer to it)

    @property
    def clean(self) -> bool:
        """A faithful rendering: verbatim or paraphrase, and no change of meaning found."""
        return self.label.faithful and not self.flags

    @property
    def compared_with(self) -> str | None:
        """The wording the flags refer to (the canonical text when no variant was singled out)."""
        if self.variant is not None:
            return self.variant.text
        return self.quote.text if self.quote is not None else None


class Comparison(NamedTuple):
    """Two wordings compared: is the second a faithful rendering of the first?"""

    similarity: float
    label: Label
    flags: tuple[Flag, ...]

    @property
    def clean(self) -> bool:
        return self.label.faithful and not self.flags


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """Everything matching reads from the store, loaded together for one store version."""

    version: int
    index: VectorIndex  # over the variants' vectors (L2-normalised), one row per variant
    variants: list[Variant]  # row-aligned with the index
    padded: list[str]  # " normalised text " per row, for verbatim tests
    quotes: dict[str, CanonicalQuote]
    quote_order: list[str]  # quote id per group of rows in `by_quote`
    row_quote: np.ndarray  # row -> position of its quote in `quote_order`
    by_quote: np.ndarray  # row indices sorted by quote
    group_starts: np.ndarray  # where each quote's rows start in `by_quote`
    group_ends: np.ndarray  # and where they end
    registry: SpeakerRegistry

    def quote_rows(self, row: int) -> list[int]:
        """The rows of the quote that `row` is a variant of (all its variants), in row order."""
        pos = self.row_quote[row]
        return [int(r) for r in self.by_quote[self.group_starts[pos] : self.group_ends[pos]]]


class _RowScores:
    """One segment's similarity to variant rows: the search's scores for the candidate rows it
    returned, and computed from the index's vectors for any other row asked about (the variants
    of a quote matched by its words, or of the matched quote, which the search may not have
    returned). On a small store every row is a candidate, so these are the former full product's
    values, bit for bit."""

    __slots__ = ("_index", "_known", "_query")

    def __init__(self, index: VectorIndex, query: np.ndarray, rows: np.ndarray, scores: np.ndarray) -> None:
        self._index = index
        self._query = query
        self._known: dict[int, float] = dict(zip(rows.tolist(), scores.tolist(), strict=True))

    def of(self, rows: list[int]) -> list[float]:
        missing = [r for r in rows if r not in self._known]
        if missing:
            sims = self._index.vectors(np.asarray(missing, dtype=np.int64)) @ self._query
            self._known.update(zip(missing, sims.tolist(), strict=True))
        return [self._known[r] for r in rows]


@dataclass(frozen=True, slots=True)
class _Candidates:
    """One segment's search result: the best quotes, best first, with their best variant's score."""

    ranked: list[str]
    best_of: dict[str, float]
    best_row: dict[str, int]  # the row of each ranked quote's best variant
    scores: _RowScores


class Matcher:
    """Matches text against one store. Thread-safe; reloads when the store's version changes.

    `index` is the vector search over the variants (service/vectors.py): "exact" (float32, the whole
    matrix in memory), "compact" (faiss IVF + 8-bit codes, approximate, scores within
    vectors.COMPACT_SCORE_ERROR of the exact cosine) or "auto" (exact for small stores). A compact
    index is rebuilt, with training, whenever the store's version changes.
    """

    def __init__(
        self,
        store: Store,
        embedder: Embedder,
        nlp: Any,
        thresholds: Thresholds | None = None,
        *,
        index: str = "auto",
    ) -> None:
        if index not in INDEX_KINDS:
            raise ValueError(f"unknown vector index {index!r}: expected one of {', '.join(INDEX_KINDS)}")
        self.store = store
        self.embedder = embedder
        self.nlp = nlp
        self.thresholds = thresholds if thresholds is not None else Thresholds.load()
        self.index_kind = index
        self._lock = threading.Lock()
        self._snap = self._load()

    # -- store snapshot --------------------------------------------------------------------------

    def _load(self) -> _Snapshot:
        for _ in range(5):  # a write between the reads below changes the version: read again
            stored = self.store.variant_index()
            _, quotes = self.store.quotes(limit=1 << 62)
            registry = self.store.registry()
            if self.store.version() == stored.version:
                break
        by_id = {v.id: v for q in quotes for v in q.variants}
        variants = [by_id[int(i)] for i in stored.variant_ids]
        quote_rows: dict[str, list[int]] = {}
        for row, v in enumerate(variants):
            quote_rows.setdefault(v.quote_id, []).append(row)
        order = list(quote_rows)
        flat = [r for q in order for r in quote_rows[q]]
        sizes = np.asarray([len(quote_rows[q]) for q in order], dtype=np.int64)
        ends = np.cumsum(sizes)
        row_quote = np.zeros(len(variants), dtype=np.int64)
        row_quote[flat] = np.repeat(np.arange(len(order), dtype=np.int64), sizes)
        # A compact index keeps no float32 copy: `stored.matrix` is garbage once this returns.
        index = build_index(stored.matrix, self.index_kind)
        return _Snapshot(
            version=stored.version,
            index=index,
            variants=variants,
            padded=[f" {canon.normalise_text(v.text)} " for v in variants],
            quotes={q.id: q for q in quotes},
            quote_order=order,
            row_quote=row_quote,
            by_quote=np.asarray(flat, dtype=np.int64),
            group_starts=ends - sizes,
            group_ends=ends,
            registry=registry,
        )

    def _current(self) -> _Snapshot:
        version = self.store.version()
        with self._lock:
            if version != self._snap.version:
                self._snap = self._load()
            return self._snap

    @property
    def store_version(self) -> int:
        return self._current().version

    @property
    def vector_index(self) -> VectorIndex:
        """The vector search of the current snapshot (its `kind` is what "auto" chose)."""
        return self._current().index

    # -- segmentation ----------------------------------------------------------------------------

    def segment(self, text: str) -> list[Segment]:
        return self._segment(text, self._current().registry)

    def _segment(self, text: str, registry: SpeakerRegistry) -> list[Segment]:
        return segment_text(text, registry, self.nlp)

    # -- matching --------------------------------------------------------------------------------

    def match_text(
        self, text: str, speaker: str | None = None, top_k: int = 3, min_similarity: float | None = None
    ) -> list[Match]:
        snap = self._current()
        return self._match(snap, self._segment(text, snap.registry), speaker, top_k, min_similarity)

    def match_segments(
        self,
        segments: list[Segment],
        speaker: str | None = None,
        top_k: int = 3,
        min_similarity: float | None = None,
    ) -> list[Match]:
        """Match segments made elsewhere (the calibration queries with mention texts)."""
        return self._match(self._current(), segments, speaker, top_k, min_similarity)

    def _match(
        self,
        snap: _Snapshot,
        segments: list[Segment],
        speaker: str | None,
        top_k: int,
        min_similarity: float | None,
    ) -> list[Match]:
        if not segments:
            return []
        floor = self.thresholds.related if min_similarity is None else min_similarity
        top_k = max(1, top_k)
        vectors = self.embedder.encode([s.text for s in segments], batch_size=64)
        candidates = _candidates(snap, vectors, top_k + 1)
        argument = _resolve_argument(snap.registry, speaker)
        return [
            self._match_one(snap, seg, found, argument, top_k, floor)
            for seg, found in zip(segments, candidates, strict=True)
        ]

    def _match_one(
        self,
        snap: _Snapshot,
        seg: Segment,
        found: _Candidates,
        argument: tuple[str | None, str | None],
        top_k: int,
        floor: float,
    ) -> Match:
        if not len(snap.variants):
            return Match(seg, None, 0.0, Label.NONE, (), None, ())
        norm = canon.normalise_text(seg.text)
        words = len(norm.split())
        ranked = found.ranked
        best_of = dict(found.best_of)

        verbatim_row = _verbatim_row(snap, norm, found.scores)
        if verbatim_row is not None:
            quote_id = snap.variants[verbatim_row].quote_id
            if quote_id not in best_of:  # matched by its words, but not among the search's best
                best_of[quote_id] = max(found.scores.of(snap.quote_rows(verbatim_row)))
            ranked = [quote_id, *(q for q in ranked if q != quote_id)]
            label = Label.VERBATIM
        else:
            quote_id = ranked[0]
            label = self.thresholds.label(best_of[quote_id], words)
        similarity = _clip(best_of[quote_id])
        matched = label is not Label.NONE and (label is Label.VERBATIM or similarity >= floor)

        def candidate(qid: str) -> Candidate:
            q = snap.quotes[qid]
            return Candidate(q.id, q.text, q.speaker_id, q.speaker_name, _clip(best_of[qid]))

        others = [candidate(q) for q in ranked if not (matched and q == quote_id)]
        alternatives = tuple(c for c in others if c.similarity >= floor)[: top_k - 1 if matched else top_k]
        if not matched:
            return Match(seg, None, similarity, Label.NONE, (), None, alternatives)

        quote = snap.quotes[quote_id]
        if verbatim_row is not None:
            variant = snap.variants[verbatim_row]
            flags = compare_meaning(variant.text, seg.text, self.nlp)
        else:
            rows = snap.quote_rows(found.best_row[quote_id])
            variant, flags = self._closest_wording(snap, rows, seg.text, found.scores)
        mention, sid = (seg.speaker_mention, seg.speaker_id) if seg.speaker_mention else argument
        verdict = attribution_verdict(quote, sid, mention, snap.registry)
        return Match(seg, quote, similarity, label, flags, verdict, alternatives, variant)

    def _closest_wording(
        self, snap: _Snapshot, rows: list[int], text: str, scores: _RowScores
    ) -> tuple[Variant, tuple[Flag, ...]]:
        """The variant among `rows` (one quote's) that `text` follows best: fewest flags, then
        highest similarity."""
        scored = []
        for r, sim in zip(rows, scores.of(rows), strict=True):
            flags = compare_meaning(snap.variants[r].text, text, self.nlp)
            scored.append((len(flags), -sim, r, flags))
        _, _, r, flags = min(scored, key=lambda s: (s[0], s[1], s[2]))
        return snap.variants[r], flags

    def compare(self, original: str, rendering: str) -> Comparison:
        """Is `rendering` a faithful rendering of `original`? Similarity, label and flags."""
        a, b = canon.normalise_text(original), canon.normalise_text(rendering)
        if not a or not b:
            return Comparison(0.0, Label.NONE, ())
        vectors = self.embedder.encode([original, rendering])
        similarity = _clip(float(vectors[0] @ vectors[1]))
        verbatim = a == b or canon.contained(b, a)
        label = Label.VERBATIM if verbatim else self.thresholds.label(similarity, len(b.split()))
        return Comparison(similarity, label, compare_meaning(original, rendering, self.nlp))


# -- helpers -------------------------------------------------------------------------------------


def _clip(x: float) -> float:
    return min(1.0, max(0.0, x))


def _overlaps(start: int, end: int, spans: list[tuple[int, int]]) -> bool:
    return any(start < e and s < end for s, e in spans)


def _candidates(snap: _Snapshot, vectors: np.ndarray, wanted: int) -> list[_Candidates]:
    """Per segment, the `wanted` best quotes by their best variant, from a top-k search over rows.

    When the k rows returned hold at least `wanted` distinct quotes, the best `wanted` of those are
    the best of the whole store (for an exact index): a quote none of whose rows was returned scores
    at most the k-th row, and each of those `wanted` quotes has a row at or above it. When they hold
    fewer, the search is repeated with four times the rows, up to all of them. A compact index that
    returned fewer rows than asked has nothing more to give at its nprobe, so that ends it too.
    """
    n = snap.index.size
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return [_Candidates([], {}, {}, _RowScores(snap.index, v, empty, empty)) for v in vectors]
    needed = min(wanted, len(snap.quote_order))
    k = min(n, max(MIN_CANDIDATE_ROWS, wanted * CANDIDATE_ROWS_PER_QUOTE))
    while True:
        hits = snap.index.search(vectors, k)
        found: list[_Candidates] = []
        short = False
        for query, scores, rows in zip(vectors, hits.scores, hits.rows, strict=True):
            valid = rows >= 0
            rows, scores = rows[valid], scores[valid]
            # Rows come best first, so a quote's first row is its best one.
            positions, first = np.unique(snap.row_quote[rows], return_index=True)
            best = scores[first]
            order = np.lexsort((positions, -best))[:wanted]  # ties: the quote seen first in the store
            ranked = [snap.quote_order[int(p)] for p in positions[order]]
            best_of = {q: float(s) for q, s in zip(ranked, best[order].tolist(), strict=True)}
            best_row = {q: int(r) for q, r in zip(ranked, rows[first[order]].tolist(), strict=True)}
            found.append(_Candidates(ranked, best_of, best_row, _RowScores(snap.index, query, rows, scores)))
            short = short or (len(positions) < needed and bool(valid.all()))
        if not short or k >= n:
            return found
        k = min(n, k * 4)


def _verbatim_row(snap: _Snapshot, norm: str, scores: _RowScores) -> int | None:
    """The variant the segment repeats word for word (the most similar one when several do)."""
    if not norm:
        return None
    padded = f" {norm} "
    exact = [r for r, p in enumerate(snap.padded) if p == padded]
    if not exact and len(norm.split()) >= canon.MIN_CONTAINED_WORDS:
        exact = [r for r, p in enumerate(snap.padded) if padded in p]
    if not exact:
        return None
    sims = scores.of(exact)
    return exact[sims.index(max(sims))]  # the first of equals, as max() over the rows was


def _resolve_argument(registry: SpeakerRegistry, speaker: str | None) -> tuple[str | None, str | None]:
    if speaker is None or not speaker.strip():
        return None, None
    name = speaker.strip()
    if name in registry.speakers:  # an id, as the API's speaker endpoints give them
        return registry.speakers[name].name, name
    found = registry.resolve_name(name)
    return name, found.id if found else None


def _describes(registry: SpeakerRegistry, mention: str, speaker_id: str) -> bool:
    """A generic description of the speaker: every word of it is in one of their names
    ("the Foreign Ministry" ⊂ "Russian Foreign Ministry")."""
    words = set(institution_key(mention).split())
    speaker = registry.speakers.get(speaker_id)
    if not words or speaker is None:
        return False
    return any(words <= set(institution_key(alias).split()) for alias in (speaker.name, *speaker.aliases))


def attribution_verdict(
    quote: CanonicalQuote, speaker_id: str | None, mention: str | None, registry: SpeakerRegistry
) -> Verdict:
    """The verdict on the speaker the input names."""
    attributed = [a.speaker_id for a in quote.attributions]
    if speaker_id is None and mention:
        # Named, but not a speaker the registry knows: fine only as a description of a real one.
        speaker_id = next((sid for sid in attributed if _describes(registry, mention, sid)), None)
        if speaker_id is None:
            return Verdict.MISATTRIBUTED
    if speaker_id is None:
        return Verdict.DISPUTED if quote.disputed else Verdict.UNVERIFIED
    if speaker_id not in attributed:
        return Verdict.MISATTRIBUTED
    return Verdict.DISPUTED if quote.disputed else Verdict.CONSISTENT
