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
2. **Embed** all segments in one batched call with the model that built the store, and ask the
   store for each segment's nearest variants (service/store/: SQLite searches an in-process index,
   PostgreSQL its HNSW index) and for the variants with the same words (an indexed lookup). The
   store returns the variants' stored vectors and every backend's answer is scored here alike. A
   canonical quote scores the best of its variants; the search asks for several variants per
   wanted quote, and again for more when they do not hold enough distinct quotes (see
   `_candidates`). Only the records of the quotes a result reports are read.
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

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from . import canon
from .embed import Embedder
from .extract.segments import segment_text
from .flags import compare_meaning
from .records import CanonicalQuote, Flag, Label, Segment, Variant, Verdict
from .speakers import SpeakerRegistry, institution_key
from .store import Hits, Reader, Store, StoreState, WordingRow
from .thresholds import CALIBRATION_FILE, Thresholds

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
class _Candidates:
    """One segment's search result: the best quotes, best first, with their best variant's score."""

    ranked: list[str]
    best_of: dict[str, float]
    best_row: dict[str, int]  # the variant id of each ranked quote's best variant
    vectors: dict[int, np.ndarray]  # variant id -> stored vector, of every variant the search returned


class _Scores:
    """One segment's similarity to variants, from their stored vectors (every backend alike)."""

    __slots__ = ("query", "vectors")

    def __init__(self, query: np.ndarray, vectors: dict[int, np.ndarray]) -> None:
        self.query = query
        self.vectors = vectors  # variant id -> stored vector

    def of(self, ids: list[int]) -> list[float]:
        return [float(self.vectors[i] @ self.query) for i in ids]


@dataclass(frozen=True, slots=True)
class _Found:
    """What one segment's match needs from the store, read in one consistent view of it."""

    candidates: _Candidates
    verbatim: WordingRow | None  # the variant the segment repeats word for word, if any
    scores: _Scores


class Matcher:
    """Matches text against one store. Thread-safe; every call reads the store as it is then.

    The store searches (service/store/): SQLite in this process, on an index it updates as the
    file changes; PostgreSQL in the database. The matcher keeps nothing of the store but its
    speaker registry, shared by the store per registry version.
    """

    def __init__(
        self,
        store: Store,
        embedder: Embedder,
        nlp: Any,
        thresholds: Thresholds | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.nlp = nlp
        self.thresholds = thresholds if thresholds is not None else Thresholds.load()

    def _registry(self) -> SpeakerRegistry:
        with self.store.read() as r:
            return self.store.shared_registry(r, r.state().registry_version)

    @property
    def store_version(self) -> int:
        return self.store.version()

    # -- segmentation ----------------------------------------------------------------------------

    def segment(self, text: str) -> list[Segment]:
        return self._segment(text, self._registry())

    def _segment(self, text: str, registry: SpeakerRegistry) -> list[Segment]:
        return segment_text(text, registry, self.nlp)

    # -- matching --------------------------------------------------------------------------------

    def match_text(
        self, text: str, speaker: str | None = None, top_k: int = 3, min_similarity: float | None = None
    ) -> list[Match]:
        return self._match(self._segment(text, self._registry()), speaker, top_k, min_similarity)

    def match_segments(
        self,
        segments: list[Segment],
        speaker: str | None = None,
        top_k: int = 3,
        min_similarity: float | None = None,
    ) -> list[Match]:
        """Match segments made elsewhere (the calibration queries with mention texts)."""
        return self._match(segments, speaker, top_k, min_similarity)

    def _match(
        self,
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
        norms = [canon.normalise_text(s.text) for s in segments]
        with self.store.read() as r:
            state = r.state()
            registry = self.store.shared_registry(r, state.registry_version)
            if not state.variants:
                return [Match(seg, None, 0.0, Label.NONE, (), None, ()) for seg in segments]
            found = self._read(r, state, vectors, norms, top_k + 1)
            quote_ids = {q for f in found for q in f.candidates.ranked}
            quote_ids.update(f.verbatim.quote_id for f in found if f.verbatim is not None)
            quotes = r.quotes_by_ids(sorted(quote_ids))
            # Every variant of the quote each segment is compared with (its closest wording, and
            # the score of a quote matched by its words): the vectors the search did not return.
            compared = [self._compared(f) for f in found]
            missing = {v.id for qid in compared if qid in quotes for v in quotes[qid].variants}
            known = {i: v for f in found for i, v in f.scores.vectors.items()}
            known.update(r.vectors(sorted(missing - known.keys())))
        for f in found:  # a vector is the same whichever segment's search returned it
            f.scores.vectors = known
        argument = _resolve_argument(registry, speaker)
        return [
            self._match_one(seg, norm, f, quotes, registry, argument, top_k, floor)
            for seg, norm, f in zip(segments, norms, found, strict=True)
        ]

    @staticmethod
    def _read(r: Reader, state: StoreState, vectors: np.ndarray, norms: list[str], wanted: int) -> list[_Found]:
        out = []
        for query, norm, cand in zip(vectors, norms, _candidates(r.search, vectors, wanted, state), strict=True):
            rows = r.verbatim(norm)
            known = dict(cand.vectors)
            known.update((row.id, row.vector) for row in rows)
            scores = _Scores(query, known)
            out.append(_Found(cand, _verbatim_row(rows, scores), scores))
        return out

    @staticmethod
    def _compared(f: _Found) -> str | None:
        if f.verbatim is not None:
            return f.verbatim.quote_id
        return f.candidates.ranked[0] if f.candidates.ranked else None

    def _match_one(
        self,
        seg: Segment,
        norm: str,
        found: _Found,
        quotes: dict[str, CanonicalQuote],
        registry: SpeakerRegistry,
        argument: tuple[str | None, str | None],
        top_k: int,
        floor: float,
    ) -> Match:
        words = len(norm.split())
        ranked = found.candidates.ranked
        best_of = dict(found.candidates.best_of)
        scores = found.scores
        verbatim = found.verbatim
        if verbatim is not None:
            quote_id = verbatim.quote_id
            if quote_id not in best_of:  # matched by its words, but not among the search's best
                best_of[quote_id] = max(scores.of([v.id for v in quotes[quote_id].variants]))
            ranked = [quote_id, *(q for q in ranked if q != quote_id)]
            label = Label.VERBATIM
        elif ranked:
            quote_id = ranked[0]
            label = self.thresholds.label(best_of[quote_id], words)
        else:  # the search found nothing at all (an approximate index may, in principle)
            return Match(seg, None, 0.0, Label.NONE, (), None, ())
        similarity = _clip(best_of[quote_id])
        matched = label is not Label.NONE and (label is Label.VERBATIM or similarity >= floor)

        def candidate(qid: str) -> Candidate:
            q = quotes[qid]
            return Candidate(q.id, q.text, q.speaker_id, q.speaker_name, _clip(best_of[qid]))

        others = [candidate(q) for q in ranked if not (matched and q == quote_id) and q in quotes]
        alternatives = tuple(c for c in others if c.similarity >= floor)[: top_k - 1 if matched else top_k]
        if not matched:
            return Match(seg, None, similarity, Label.NONE, (), None, alternatives)

        quote = quotes[quote_id]
        if verbatim is not None:
            variant = next(v for v in quote.variants if v.id == verbatim.id)
            flags = compare_meaning(variant.text, seg.text, self.nlp)
        else:
            variant, flags = self._closest_wording(quote, seg.text, scores)
        mention, sid = (seg.speaker_mention, seg.speaker_id) if seg.speaker_mention else argument
        verdict = attribution_verdict(quote, sid, mention, registry)
        return Match(seg, quote, similarity, label, flags, verdict, alternatives, variant)

    def _closest_wording(self, quote: CanonicalQuote, text: str, scores: _Scores) -> tuple[Variant, tuple[Flag, ...]]:
        """The variant of `quote` that `text` follows best: fewest flags, then highest similarity
        (then the variant stored first)."""
        variants = sorted(quote.variants, key=lambda v: v.id)
        scored = []
        for v, sim in zip(variants, scores.of([v.id for v in variants]), strict=True):
            flags = compare_meaning(v.text, text, self.nlp)
            scored.append((len(flags), -sim, v.id, v, flags))
        _, _, _, variant, flags = min(scored, key=lambda s: (s[0], s[1], s[2]))
        return variant, flags

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


def _candidates(
    search: Callable[[np.ndarray, int], list[Hits]], vectors: np.ndarray, wanted: int, state: StoreState
) -> list[_Candidates]:
    """Per segment, the `wanted` best quotes by their best variant, from a top-k search over variants.

    Every backend returns the variants it found with their stored vectors, scored here alike.
    When the k variants returned hold at least `wanted` distinct quotes, the best `wanted` of those
    are the best of the whole store (for an exact search): a quote none of whose variants was
    returned scores at most the k-th, and each of those `wanted` quotes has one at or above it. When
    they hold fewer, that segment is searched again with four times as many, up to all of them; a
    search that returned fewer than asked has nothing more to give, which ends it too.
    """
    needed = min(wanted, state.quotes)
    k = min(state.variants, max(MIN_CANDIDATE_ROWS, wanted * CANDIDATE_ROWS_PER_QUOTE))
    out: list[_Candidates | None] = [None] * len(vectors)
    pending = list(range(len(vectors)))
    while pending:
        again = []
        for i, hits in zip(pending, search(vectors[pending], k), strict=True):
            scores = hits.vectors @ vectors[i] if len(hits.ids) else np.zeros(0, dtype=np.float32)
            order = np.lexsort((hits.ids, -scores))  # best first; equal scores: the variant stored first
            best_of: dict[str, float] = {}
            best_row: dict[str, int] = {}
            for j in order.tolist():
                qid = hits.quote_ids[j]
                if qid not in best_of:  # a quote scores its best variant
                    best_of[qid] = float(scores[j])
                    best_row[qid] = int(hits.ids[j])
            if len(best_of) < needed and not hits.exhausted and k < state.variants:
                again.append(i)
                continue
            ranked = list(best_of)[:wanted]
            out[i] = _Candidates(
                ranked,
                {q: best_of[q] for q in ranked},
                {q: best_row[q] for q in ranked},
                dict(zip(hits.ids.tolist(), hits.vectors, strict=True)),
            )
        pending, k = again, min(state.variants, k * 4)
    return [c for c in out if c is not None]


def _verbatim_row(rows: list[WordingRow], scores: _Scores) -> WordingRow | None:
    """The variant the segment repeats word for word (the most similar one when several do; the
    one stored first among equals)."""
    if not rows:
        return None
    ordered = sorted(rows, key=lambda r: r.id)
    sims = scores.of([r.id for r in ordered])
    return ordered[sims.index(max(sims))]


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
