"""Extraction measured on news it was not written against: a PolNeAR-format directory.

PolNeAR (Newell, Margolin & Ruths, LREC 2018) annotates every attribution of real US political news
as brat standoff: source, cue and content spans. The scores are shaped after BBC's Citron
(`citron/metrics.py`): spans compare as sets of word tokens, so quotation marks and edge punctuation
do not matter.

- exact: a prediction is right when a gold content has exactly its words (a leading "that" ignored);
- overlap: the summed token overlap of every (predicted, gold) pair over all predicted tokens
  (precision) and over all gold tokens (recall);
- mention: a prediction is right when it shares a word with a gold content; a gold is found when a
  prediction does;
- source: for a found gold with a source, the speaker the best-overlapping prediction names must
  overlap the gold source span.

Scores are split by kind (a quotation mark in the content or at its edges: direct/mixed, else
reported) and by cue class (the gold cue is a speech verb, "according to" or a colon, else belief,
intention, perception or evidence). The corpus has no licence: it is read where it lies and nothing
derived from it is written into the repository.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .corpus import ArticleMeta, make_article
from .extract import extract_article
from .extract.cues import cue_class_of_words
from .records import CueClass, MentionKind, QuoteMention
from .speakers import SpeakerRegistry

_WORD = re.compile(r"\w+(?:['’]\w+)*")
_DOUBLE_MARKS = set('"“”«»„‘')
Ranges = tuple[tuple[int, int], ...]


class PolnearError(ValueError):
    """The directory is not in PolNeAR's format."""


@dataclass(frozen=True, slots=True)
class GoldAttribution:
    content: Ranges
    cue: Ranges
    source: Ranges  # empty for Attribution-no-source
    quoted: bool  # a quotation mark in the content or at its edges
    speech: bool  # the cue is speech (a speech verb, "according to", a colon)


@dataclass(frozen=True, slots=True)
class GoldArticle:
    name: str
    title: str
    text: str
    attributions: tuple[GoldAttribution, ...]


def _has_quotation_mark(text: str, content: Ranges) -> bool:
    """A double mark (or '') in the content or at its edges, or a single one at its edges: an
    apostrophe ("don’t", "Trump's") is no quotation mark."""
    for a, b in content:
        inside = text[max(a - 1, 0) : b + 1]
        if _DOUBLE_MARKS & set(inside) or "''" in inside:
            return True
        if text[a : a + 1] in ("'", "’") or text[max(a - 1, 0) : a] in ("'", "‘"):
            return True
    return False


def _ranges(offsets: str) -> Ranges:
    out = []
    for part in offsets.split(";"):
        start, end = part.split()
        out.append((int(start), int(end)))
    return tuple(out)


def _parse_ann(path: Path) -> tuple[dict[str, tuple[str, Ranges]], list[dict[str, str]]]:
    spans: dict[str, tuple[str, Ranges]] = {}
    events: list[dict[str, str]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if re.match(r"T\d+\t", line):
            tid, typed, _ = line.split("\t", 2)
            kind, offsets = typed.split(" ", 1)
            spans[tid] = (kind, _ranges(offsets))
        elif re.match(r"E\d+\t", line):
            roles = line.split("\t")[1].split()
            events.append(dict(r.split(":", 1) for r in roles if ":" in r))
    return spans, events


def _text_of(text: str, ranges: Ranges) -> str:
    return " ".join(text[a:b] for a, b in ranges)


def load_polnear(directory: Path, limit: int | None = None) -> list[GoldArticle]:
    """The articles of one split (`<dir>/text/*.txt`, `<dir>/attributions/*.ann`), first annotator each."""
    texts = sorted((directory / "text").glob("*.txt"))
    if not texts:
        raise PolnearError(f"{directory}: no text/*.txt files (expected a PolNeAR split such as .../polnear/dev)")
    titles = _titles(directory.parent / "metadata.tsv")
    articles = []
    for text_path in texts[:limit]:
        name = text_path.stem
        anns = sorted((directory / "attributions").glob(f"{name}_*.ann"))
        if not anns:
            continue
        text = text_path.read_text(encoding="utf-8")
        spans, events = _parse_ann(anns[0])
        golds = []
        for event in events:
            roles = {role.rstrip("0123456789"): tid for role, tid in event.items()}
            content_ids = [tid for role, tid in event.items() if role.startswith("Content")]
            content = tuple(r for tid in content_ids if tid in spans for r in spans[tid][1])
            if not content:
                continue
            cue = spans[roles["Cue"]][1] if roles.get("Cue") in spans else ()
            source = spans[roles["Source"]][1] if roles.get("Source") in spans else ()
            cue_words = _WORD.findall(_text_of(text, cue).lower())
            speech = ":" in _text_of(text, cue) or cue_class_of_words(cue_words) is CueClass.SPEECH
            golds.append(GoldAttribution(content, cue, source, _has_quotation_mark(text, content), speech))
        articles.append(GoldArticle(name, titles.get(name, ""), text, tuple(golds)))
    return articles


def _titles(metadata: Path) -> dict[str, str]:
    """Headlines by article name, from the corpus's metadata.tsv when it is there."""
    if not metadata.is_file():
        return {}
    lines = metadata.read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t") if lines else []
    if "filename" not in header or "title" not in header:
        return {}
    name, title = header.index("filename"), header.index("title")
    return {row[name]: row[title] for row in (line.split("\t") for line in lines[1:]) if len(row) > max(name, title)}


# -- scoring ---------------------------------------------------------------------------------------


class _Tokens:
    """Word tokens of one text; a set of character ranges → the indices of the tokens it touches."""

    def __init__(self, text: str) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        for m in _WORD.finditer(text):
            self.starts.append(m.start())
            self.ends.append(m.end())
        self.lower = [text[a:b].lower() for a, b in zip(self.starts, self.ends, strict=True)]

    def of(self, ranges: Iterable[tuple[int, int]]) -> frozenset[int]:
        out: set[int] = set()
        for a, b in ranges:
            i = bisect.bisect_right(self.ends, a)
            while i < len(self.starts) and self.starts[i] < b:
                out.add(i)
                i += 1
        return frozenset(out)

    def without_that(self, tokens: frozenset[int]) -> frozenset[int]:
        if tokens and self.lower[min(tokens)] == "that":
            return tokens - {min(tokens)}
        return tokens


@dataclass(slots=True)
class Counts:
    """Tallies of one slice (all, a kind or a cue class); `ratios()` turns them into P/R/F1."""

    gold: int = 0
    pred: int = 0
    exact_gold: int = 0
    exact_pred: int = 0
    mention_gold: int = 0
    mention_pred: int = 0
    overlap_pred: int = 0  # summed token overlap of (pred, gold) pairs whose prediction is in the slice
    overlap_gold: int = 0  # … whose gold is in the slice
    pred_tokens: int = 0
    gold_tokens: int = 0
    source_pairs: int = 0
    source_right: int = 0

    def ratios(self) -> dict[str, float]:
        def div(a: float, b: float) -> float:
            return a / b if b else 0.0

        def f1(p: float, r: float) -> float:
            return div(2 * p * r, p + r)

        out: dict[str, float] = {}
        for name, p, r in (
            ("exact", div(self.exact_pred, self.pred), div(self.exact_gold, self.gold)),
            ("overlap", div(self.overlap_pred, self.pred_tokens), div(self.overlap_gold, self.gold_tokens)),
            ("mention", div(self.mention_pred, self.pred), div(self.mention_gold, self.gold)),
        ):
            out[f"{name}_p"], out[f"{name}_r"], out[f"{name}_f1"] = p, r, f1(p, r)
        out["source_acc"] = div(self.source_right, self.source_pairs)
        return out


SLICES = ("all", "quoted", "reported", "speech", "other")
SLICE_TITLES = {
    "all": "all attributions",
    "quoted": "direct and mixed (quotation mark)",
    "reported": "reported (no quotation mark)",
    "speech": "speech cue",
    "other": "belief/intention/evidence cue",
}


@dataclass(slots=True)
class Report:
    counts: dict[str, Counts] = field(default_factory=lambda: {s: Counts() for s in SLICES})
    articles: int = 0
    words: int = 0
    misses: list[str] = field(default_factory=list)
    spurious: list[str] = field(default_factory=list)
    wrong_source: list[str] = field(default_factory=list)
    inexact: list[str] = field(default_factory=list)
    # Found golds whose best prediction has other words: longer, shorter, or shifted.
    boundaries: dict[str, int] = field(default_factory=lambda: {"longer": 0, "shorter": 0, "shifted": 0})


def _pred_slices(m: QuoteMention) -> tuple[str, ...]:
    kind = "reported" if m.kind in (MentionKind.INDIRECT, MentionKind.TOPIC) else "quoted"
    return ("all", kind, "speech" if m.is_speech else "other")


def _gold_slices(g: GoldAttribution) -> tuple[str, ...]:
    return ("all", "quoted" if g.quoted else "reported", "speech" if g.speech else "other")


def score_article(report: Report, gold: GoldArticle, mentions: Iterable[QuoteMention]) -> None:
    tokens = _Tokens(gold.text)
    preds = list(mentions)
    pred_sets = [tokens.of((s.start, s.end) for s in m.content_spans) for m in preds]
    gold_sets = [tokens.of(g.content) for g in gold.attributions]
    report.articles += 1
    report.words += len(tokens.starts)
    c = report.counts
    best_pred: dict[int, tuple[int, int]] = {}  # gold index → (overlap, pred index)
    for pi, (m, ps) in enumerate(zip(preds, pred_sets, strict=True)):
        keys = _pred_slices(m)
        exact = any(tokens.without_that(ps) == tokens.without_that(gs) for gs in gold_sets)
        touched = False
        for gi, gs in enumerate(gold_sets):
            inter = len(ps & gs)
            if inter:
                touched = True
                for k in _gold_slices(gold.attributions[gi]):
                    c[k].overlap_gold += inter
                for k in keys:
                    c[k].overlap_pred += inter
                if inter > best_pred.get(gi, (0, -1))[0]:
                    best_pred[gi] = (inter, pi)
        for k in keys:
            c[k].pred += 1
            c[k].pred_tokens += len(ps)
            c[k].exact_pred += exact
            c[k].mention_pred += touched
        if not touched:
            report.spurious.append(f"{gold.name}: [{m.kind.value}/{m.cue_class.value}] {m.cue!r} {m.text[:90]!r}")
    for gi, (g, gs) in enumerate(zip(gold.attributions, gold_sets, strict=True)):
        exact = any(tokens.without_that(ps) == tokens.without_that(gs) for ps in pred_sets)
        found = gi in best_pred
        for k in _gold_slices(g):
            c[k].gold += 1
            c[k].gold_tokens += len(gs)
            c[k].exact_gold += exact
            c[k].mention_gold += found
        if not found:
            report.misses.append(
                f"{gold.name}: [{'quoted' if g.quoted else 'reported'}/{'speech' if g.speech else 'other'}] "
                f"{_text_of(gold.text, g.source)!r} {_text_of(gold.text, g.cue)!r} "
                f"{_text_of(gold.text, g.content)[:90]!r}"
            )
            continue
        m = preds[best_pred[gi][1]]
        best_set = tokens.without_that(pred_sets[best_pred[gi][1]])
        gold_set = tokens.without_that(gs)
        if best_set != gold_set:
            report.boundaries["longer" if best_set > gold_set else "shorter" if best_set < gold_set else "shifted"] += 1
        if not exact:
            report.inexact.append(
                f"{gold.name}: [{'quoted' if g.quoted else 'reported'}] gold {_text_of(gold.text, g.content)[:150]!r}"
                f"\n\t\tsaid {' | '.join(s.text for s in m.content_spans)[:150]!r}"
            )
        if g.source:
            right = m.speaker_span is not None and bool(
                tokens.of([(m.speaker_span.start, m.speaker_span.end)]) & tokens.of(g.source)
            )
            for k in _gold_slices(g):
                c[k].source_pairs += 1
                c[k].source_right += right
            if not right:
                report.wrong_source.append(
                    f"{gold.name}: gold {_text_of(gold.text, g.source)!r}, said {m.speaker_mention!r}: {m.text[:70]!r}"
                )


def evaluate_polnear(
    directory: Path, nlp: object, limit: int | None = None, registry: SpeakerRegistry | None = None
) -> Report:
    """Extracts every article of the split as a newsroom would add it (headline first) and scores it."""
    report = Report()
    for gold in load_polnear(directory, limit):
        meta = ArticleMeta(
            outlet="PolNeAR", url=f"https://polnear.invalid/{gold.name}", published=None, title=gold.title
        )
        mentions = extract_article(make_article(gold.text, meta), registry or SpeakerRegistry(), nlp).mentions
        score_article(report, gold, mentions)
    return report


def format_report(report: Report) -> str:
    lines = [
        f"{report.articles} articles, {report.words:,} words",
        f"{'slice':<34} {'gold':>5} {'pred':>5}  {'exact P/R/F1':>17}  {'overlap P/R/F1':>17}  "
        f"{'mention P/R/F1':>17}  {'source':>6}",
    ]
    for key in SLICES:
        c = report.counts[key]
        r = c.ratios()

        def trio(name: str, r: dict[str, float] = r) -> str:
            return f"{r[name + '_p']:.3f} {r[name + '_r']:.3f} {r[name + '_f1']:.3f}"

        lines.append(
            f"{SLICE_TITLES[key]:<34} {c.gold:>5} {c.pred:>5}  {trio('exact'):>17}  {trio('overlap'):>17}  "
            f"{trio('mention'):>17}  {r['source_acc']:>6.3f}"
        )
    c = report.counts["all"]
    b = report.boundaries
    lines.append(
        f"golds found {c.mention_gold} of {c.gold}; of those, the best prediction's words are longer {b['longer']}, "
        f"shorter {b['shorter']}, shifted {b['shifted']}"
    )
    return "\n".join(lines)


def iter_errors(report: Report) -> Iterator[str]:
    for title, rows in (
        ("missed", report.misses),
        ("spurious", report.spurious),
        ("source", report.wrong_source),
        ("inexact", report.inexact),
    ):
        for row in rows:
            yield f"{title}\t{row}"
