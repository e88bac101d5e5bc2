"""Canonical quotes: the same statement reported in several wordings becomes one quote.

A new mention joins the existing quote whose closest variant it resembles most, when that variant
is close enough: the same words after normalisation, a contiguous part of it (a partial quote of a
full one), or a high embedding similarity. Different speakers need a higher similarity, because the
disagreement it creates (a *disputed* quote) must be real. Order matters only for ties, and the order
is fixed (articles by date, mentions by offset), so rebuilding gives the same quotes and ids.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field

import numpy as np

from .records import Attribution, MentionKind, QuoteMention

# Read off the corpus (all-MiniLM-L6-v2 cosines). Same speaker: wordings of one statement score
# 0.77-0.93 (0.77: "justice for the victims…" vs "We discussed transitional justice…"); no two
# different statements of one speaker reach 0.70. Different speakers: the two real disagreements
# score 0.92 and 0.96, while two *different* statements of the Kremlin (Feb) and the Foreign
# Ministry (Jan) on Syria's unity score 0.87, so a dispute needs 0.90.
MERGE_SAME_SPEAKER = 0.74
MERGE_OTHER_SPEAKER = 0.90
# A partial quote this short is a phrase, not a statement: it only joins an identical phrase.
MIN_CONTAINED_WORDS = 3


def normalise_text(text: str) -> str:
    """Words only: case, quotation marks, punctuation, dashes and whitespace do not make a quote differ."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"[’ʼ‘`]", "'", text)
    text = re.sub(r"[^\w' ]+", " ", text)
    return " ".join(text.split())


def quote_id(article_id: str, mention: QuoteMention) -> str:
    seed = f"{article_id}:{mention.start}:{normalise_text(mention.text)}"
    return "q_" + hashlib.sha256(seed.encode("utf-8")).hexdigest()[:12]


@dataclass(slots=True)
class Cluster:
    quote_id: str
    texts: list[str] = field(default_factory=list)  # normalised variant texts
    speakers: list[str | None] = field(default_factory=list)
    vectors: list[np.ndarray] = field(default_factory=list)


def contained(a: str, b: str) -> bool:
    """`a` is a contiguous run of whole words of `b` (a partial quote of a fuller one)."""
    return len(a.split()) >= MIN_CONTAINED_WORDS and f" {a} " in f" {b} "


def affinity(text: str, vector: np.ndarray, speaker: str | None, cluster: Cluster) -> float:
    """How strongly a mention belongs to a cluster: 1.0 for the same or contained words, else the
    best cosine, kept only when above the merge threshold for same or different speakers."""
    best = 0.0
    for other_text, other_speaker, other_vec in zip(cluster.texts, cluster.speakers, cluster.vectors, strict=True):
        if text == other_text:
            return 1.0
        short = min(len(text.split()), len(other_text.split()))
        if contained(text, other_text) or contained(other_text, text):
            score = 0.99
        elif short < MIN_CONTAINED_WORDS:
            continue  # "crunch point" is no statement to compare by meaning
        else:
            score = float(np.dot(vector, other_vec))
        threshold = MERGE_SAME_SPEAKER if speaker == other_speaker else MERGE_OTHER_SPEAKER
        if score >= threshold:
            best = max(best, score)
    return best


def assign(mentions: list[QuoteMention], vectors: np.ndarray, clusters: list[Cluster]) -> list[tuple[str, bool]]:
    """The quote id of each mention (in order) and whether that quote is new; `clusters` is updated."""
    out = []
    for mention, vector in zip(mentions, vectors, strict=True):
        text = normalise_text(mention.text)
        scored = [(affinity(text, vector, mention.speaker_id, c), i) for i, c in enumerate(clusters)]
        best, index = max(scored, default=(0.0, -1))
        if best > 0.0:
            cluster = clusters[index]
            created = False
        else:
            cluster = Cluster(quote_id(mention.article_id, mention))
            clusters.append(cluster)
            created = True
        cluster.texts.append(text)
        cluster.speakers.append(mention.speaker_id)
        cluster.vectors.append(vector)
        out.append((cluster.quote_id, created))
    return out


@dataclass(frozen=True, slots=True)
class VariantFacts:
    """What attribution needs of one variant."""

    speaker_id: str | None
    speaker_name: str | None
    article_id: str
    published_order: tuple[int, str]  # earliest source first; undated sources last
    kind: MentionKind
    text: str


@dataclass(slots=True)
class _Tally:
    name: str
    first: tuple[int, str]
    articles: set[str] = field(default_factory=set)
    mentions: int = 0


def attributions(variants: list[VariantFacts]) -> tuple[tuple[Attribution, ...], str | None, bool]:
    """Who said it according to each source: counts per speaker, the majority speaker, disputed?

    The majority is by number of sources (articles), the earliest source breaking ties.
    """
    tallies: dict[str, _Tally] = {}
    for v in sorted(variants, key=lambda v: v.published_order):
        if v.speaker_id is None:
            continue
        tally = tallies.setdefault(v.speaker_id, _Tally(v.speaker_name or v.speaker_id, v.published_order))
        tally.articles.add(v.article_id)
        tally.mentions += 1
    ranked = sorted(tallies.items(), key=lambda kv: (-len(kv[1].articles), kv[1].first))
    result = tuple(Attribution(sid, t.name, len(t.articles), t.mentions) for sid, t in ranked)
    return result, (result[0].speaker_id if result else None), len(result) > 1


def canonical_text(variants: list[VariantFacts]) -> str:
    """The fullest wording: the longest direct quote, else the longest quotation, else the longest."""

    def rank(v: VariantFacts) -> tuple[int, int]:
        kind_rank = {MentionKind.DIRECT: 2, MentionKind.PARTIAL: 1}.get(v.kind, 0)
        return kind_rank, len(v.text)

    return max(variants, key=rank).text
