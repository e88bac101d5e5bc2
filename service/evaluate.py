"""Extraction against the hand-labelled gold file: span precision/recall (exact and overlap) and
speaker accuracy, by kind. `python -m service eval-extraction` prints it; the README quotes it."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from .corpus import load_corpus
from .extract import extract_article
from .nlp import load_nlp
from .records import Article, QuoteMention
from .speakers import SpeakerRegistry

GOLD = Path(__file__).resolve().parent.parent / "eval" / "gold" / "extraction.json"
_TRIM = " \n\t.,;:…"


@dataclass(frozen=True, slots=True)
class GoldMention:
    file: str
    kind: str
    ranges: tuple[tuple[int, int], ...]
    speaker: str


@dataclass(slots=True)
class Score:
    gold: int = 0
    predicted: int = 0
    exact_tp_gold: int = 0
    exact_tp_pred: int = 0
    overlap_tp_gold: int = 0
    overlap_tp_pred: int = 0
    speaker_pairs: int = 0
    speaker_right: int = 0
    errors: list[str] = field(default_factory=list)

    def ratios(self) -> dict[str, float]:
        def div(a: int, b: int) -> float:
            return round(a / b, 3) if b else 0.0

        return {
            "exact_precision": div(self.exact_tp_pred, self.predicted),
            "exact_recall": div(self.exact_tp_gold, self.gold),
            "overlap_precision": div(self.overlap_tp_pred, self.predicted),
            "overlap_recall": div(self.overlap_tp_gold, self.gold),
            "speaker_accuracy": div(self.speaker_right, self.speaker_pairs),
        }


def _locate(text: str, span: str, occurrence: int) -> tuple[int, int]:
    start = -1
    for _ in range(occurrence):
        start = text.find(span, start + 1)
        if start < 0:
            raise ValueError(f"gold span not in article: {span[:60]!r}")
    return _trim(text, start, start + len(span))


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start] in _TRIM:
        start += 1
    while end > start and text[end - 1] in _TRIM:
        end -= 1
    return start, end


def load_gold(path: Path, articles: dict[str, Article]) -> list[GoldMention]:
    raw = json.loads(path.read_text(encoding="utf-8"))
    out = []
    for m in raw["mentions"]:
        text = articles[m["file"]].text
        occurrence = int(m.get("occurrence", 1))
        ranges = tuple(_locate(text, s, occurrence) for s in m["spans"])
        out.append(GoldMention(m["file"], m["kind"], ranges, m["speaker"]))
    return out


def _chars(ranges: tuple[tuple[int, int], ...]) -> set[int]:
    return {i for a, b in ranges for i in range(a, b)}


def score(gold: list[GoldMention], predicted: dict[str, list[QuoteMention]], texts: dict[str, str]) -> dict[str, Score]:
    """Scores overall ('all') and per kind; a prediction matches at most one gold mention."""
    scores: dict[str, Score] = defaultdict(Score)
    by_file: dict[str, list[GoldMention]] = defaultdict(list)
    for g in gold:
        by_file[g.file].append(g)
    for file in sorted(set(by_file) | set(predicted)):
        golds = by_file.get(file, [])
        preds = predicted.get(file, [])
        text = texts[file]
        pred_ranges = [tuple(_trim(text, s.start, s.end) for s in p.spans) for p in preds]
        pairs = []
        for gi, g in enumerate(golds):
            gc = _chars(g.ranges)
            for pi, pr in enumerate(pred_ranges):
                inter = len(gc & _chars(pr))
                if inter:
                    pairs.append((inter, gi, pi))
        pairs.sort(reverse=True)
        used_g: set[int] = set()
        used_p: set[int] = set()
        for _, gi, pi in pairs:
            if gi in used_g or pi in used_p:
                continue
            used_g.add(gi)
            used_p.add(pi)
            g, p = golds[gi], preds[pi]
            exact = set(g.ranges) == set(pred_ranges[pi])
            if not exact:
                scores["all"].errors.append(
                    f"{file[:3]} inexact {g.kind}: gold {' … '.join(text[a:b] for a, b in g.ranges)[:70]!r}"
                    f" ≠ {p.text[:70]!r}"
                )
            for key in ("all", g.kind):
                s = scores[key]
                s.overlap_tp_gold += 1
                s.exact_tp_gold += exact
                s.speaker_pairs += 1
                s.speaker_right += p.speaker_id == g.speaker
                if p.speaker_id != g.speaker:
                    s.errors.append(f"{file[:3]} speaker {p.speaker_id} ≠ {g.speaker}: {p.text[:60]!r}")
            for key in ("all", p.kind.value):
                scores[key].overlap_tp_pred += 1
                scores[key].exact_tp_pred += exact
        for gi, g in enumerate(golds):
            for key in ("all", g.kind):
                scores[key].gold += 1
            if gi not in used_g:
                scores["all"].errors.append(
                    f"{file[:3]} missed {g.kind}: {text[g.ranges[0][0] : g.ranges[0][1]][:60]!r}"
                )
        for pi, p in enumerate(preds):
            for key in ("all", p.kind.value):
                scores[key].predicted += 1
            if pi not in used_p:
                scores["all"].errors.append(f"{file[:3]} spurious {p.kind.value}: {p.text[:60]!r}")
    return dict(scores)


def evaluate_extraction(
    corpus_dir: Path, gold_path: Path = GOLD, speakers_file: Path | None = None
) -> dict[str, Score]:
    articles = load_corpus(corpus_dir)
    by_file = {a.file or a.id: a for a in articles}
    registry = SpeakerRegistry()
    if speakers_file is not None:
        registry.load_file(speakers_file)
    nlp = load_nlp()
    # The gold lists what the store should keep (speech by a resolved speaker, outside the title), so
    # the extraction is scored on what it hands the store; PolNeAR (service/polnear.py) scores it all.
    predicted = {
        name: [m for m in extract_article(a, registry, nlp).mentions if m.quotable] for name, a in by_file.items()
    }
    gold = load_gold(gold_path, by_file)
    return score(gold, predicted, {name: a.text for name, a in by_file.items()})


def format_scores(scores: dict[str, Score]) -> str:
    header = (
        f"{'kind':<9} {'gold':>4} {'pred':>4}  {'P exact':>7} {'R exact':>7}  "
        f"{'P overlap':>9} {'R overlap':>9}  {'speaker acc':>11}"
    )
    lines = [header]
    for kind in ("direct", "partial", "indirect", "all"):
        s = scores.get(kind, Score())
        r = s.ratios()
        lines.append(
            f"{kind:<9} {s.gold:>4} {s.predicted:>4}  {r['exact_precision']:>7.3f} {r['exact_recall']:>7.3f}  "
            f"{r['overlap_precision']:>9.3f} {r['overlap_recall']:>9.3f}  {r['speaker_accuracy']:>11.3f}"
        )
    return "\n".join(lines)
