"""Calibrate the matcher's thresholds on labelled pairs and write them to service/calibration.json.

    .venv/bin/python eval/calibrate.py [--mrpc ../shared/data/mrpc_train.tsv] [--write]
    .venv/bin/python eval/calibrate.py --backend onnx-int8 [--at-calibrated]   # int8 queries, torch stores

Two sources of labelled pairs, each split 70/30 by a fixed seed into a calibration part (which
chooses the thresholds) and a held-back part (which only reports):

- **Corpus, leave one article out.** For each of the five articles, a store is built from the other
  four and queried with the held-out article's statements (the mention texts of the full store).
  A query is *positive* when its canonical quote in the full five-article store also has a variant
  in another article, i.e. the four-article store holds that statement; its best match is
  *correct* when the matched quote shares a variant with that gold quote. Verbatim queries are
  decided by their words, not by a threshold, and are counted apart.
- **MRPC** (Microsoft Research Paraphrase Corpus, training split, read from ../shared/data and never
  copied into the repository): news sentence pairs judged paraphrase or not by people.

Chosen values:

- ``paraphrase`` and ``min_words_paraphrase``: one joint sweep maximising the mean of the corpus F1
  (correct best match vs no match, over non-verbatim queries) and the MRPC F1, on the calibration
  parts; the two sources weigh equally because MRPC has 50 times more pairs but the corpus is the
  task. Where several segment lengths score the same (the corpus has few short statements), the
  longest is kept: the guard then costs nothing the data can measure, and short phrases ("important
  trip", "positive changes") are what scores high against unrelated statements.
- ``related``: maximises, on the MRPC calibration part, the F1 of telling a pair about one story
  (any MRPC pair, paraphrase or not) from two sentences of different stories (each first sentence
  against the second sentence of another pair); never above the paraphrase threshold.

Also reported (calibration / held back): speaker accuracy of matched corpus queries, the false
match rate on unseen statements (negatives labelled verbatim or paraphrase), paraphrase accuracy
and F1, and flag recall on systematic perturbations of the store's wordings (negation, number,
entity, insertion, deletion), with the rate of flags on faithful pairs (corpus positives, MRPC
paraphrases). Runs in about two minutes on two CPU cores.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import json
import random
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from service import canon
from service.build import build_store
from service.config import REPO_ROOT, Settings
from service.corpus import MANIFEST, load_corpus
from service.embed import Embedder, load_embedder
from service.flags import NEGATIONS, PLACE_KEYS, compare_meaning
from service.match import CALIBRATION_FILE, Matcher, Segment, Thresholds
from service.model_files import BACKENDS
from service.nlp import load_nlp
from service.records import MentionKind, SegmentKind
from service.store import SqliteStore

SEED = 20250129
CAL_SHARE = 0.7
DEFAULT_MRPC = REPO_ROOT.parent / "shared" / "data" / "mrpc_train.tsv"
GRID = [round(x, 2) for x in np.arange(0.40, 0.96, 0.01)]
MIN_WORDS_CHOICES = range(1, 9)
# A scan with nothing to compare against: every best candidate is kept, verbatim still decided by words.
_OPEN = Thresholds(paraphrase=1.01, related=0.0, min_words_paraphrase=1)


@dataclass(frozen=True, slots=True)
class CorpusPair:
    article: str
    text: str
    words: int
    gold_quote: str
    gold_speaker: str | None
    positive: bool  # the four-article store holds the statement
    similarity: float
    verbatim: bool
    correct: bool  # the best match is the gold statement
    speaker: str | None  # the matched quote's speaker
    flagged: bool
    calibration: bool


@dataclass(frozen=True, slots=True)
class MrpcPair:
    similarity: float
    cross_similarity: float  # sentence 1 against the sentence 2 of another, unrelated pair
    words: int
    paraphrase: bool
    flagged: bool
    calibration: bool


def _split(key: str) -> bool:
    """True for the calibration part: a fixed 70/30 split by a seeded hash of the item."""
    digest = hashlib.sha256(f"{SEED}:{key}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < CAL_SHARE


# -- corpus, leave one article out ---------------------------------------------------------------


def _corpus_subset(corpus: Path, keep: Sequence[str], into: Path) -> Path:
    into.mkdir(parents=True)
    manifest = json.loads((corpus / MANIFEST).read_text(encoding="utf-8"))
    manifest["articles"] = [a for a in manifest["articles"] if a["file"] in keep]
    (into / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    for name in [*keep, "speakers.json"]:
        if (corpus / name).exists():
            shutil.copyfile(corpus / name, into / name)
    return into


def corpus_pairs(
    corpus: Path,
    embedder: Embedder,
    nlp: object,
    speakers: Path | None,
    tmp: Path,
    store_embedder: Embedder | None = None,
) -> list[CorpusPair]:
    """`store_embedder` builds the stores (default: `embedder`, which always encodes the queries)."""
    store_embedder = store_embedder or embedder
    ids = {a.file or a.id: a.id for a in load_corpus(corpus)}
    files = list(ids)
    full_path = tmp / "full.sqlite3"
    build_store(corpus, full_path, store_embedder, nlp, speakers, fingerprint="calibration")
    _, full_quotes = SqliteStore(full_path, embedder.name, embedder.revision).quotes(limit=1 << 62)
    gold_of = {(v.source.article_id, v.spans[0].start): q.id for q in full_quotes for v in q.variants}
    articles_of = {q.id: {v.source.article_id for v in q.variants} for q in full_quotes}
    pairs: list[CorpusPair] = []
    for held in files:
        sub = _corpus_subset(corpus, [f for f in files if f != held], tmp / f"without-{held}")
        path = tmp / f"without-{held}.sqlite3"
        build_store(sub, path, store_embedder, nlp, sub / "speakers.json" if speakers else None, "calibration")
        store = SqliteStore(path, embedder.name, embedder.revision)
        held_id = ids[held]
        matcher = Matcher(store, embedder, nlp, thresholds=_OPEN)
        queries = [(q, v) for q in full_quotes for v in q.variants if v.source.article_id == held_id]
        segments = [
            Segment(
                v.text,
                0,
                len(v.text),
                SegmentKind.SENTENCE if v.kind is MentionKind.INDIRECT else SegmentKind.QUOTE,
                None,
                None,
            )
            for _, v in queries
        ]
        matches = matcher.match_segments(segments, top_k=1, min_similarity=0.0)
        for (gold, variant), match in zip(queries, matches, strict=True):
            matched_gold = (
                {gold_of.get((x.source.article_id, x.spans[0].start)) for x in match.quote.variants}
                if match.quote
                else set()
            )
            pairs.append(
                CorpusPair(
                    article=held,
                    text=variant.text,
                    words=len(canon.normalise_text(variant.text).split()),
                    gold_quote=gold.id,
                    gold_speaker=variant.speaker_id,
                    positive=len(articles_of[gold.id] - {held_id}) > 0,
                    similarity=match.similarity,
                    verbatim=match.label == "verbatim",
                    correct=gold.id in matched_gold,
                    speaker=match.quote.speaker_id if match.quote else None,
                    flagged=bool(match.flags),
                    calibration=_split(f"corpus:{held}:{variant.spans[0].start}"),
                )
            )
    return pairs


# -- MRPC ------------------------------------------------------------------------------------------


def mrpc_pairs(path: Path, embedder: Embedder, nlp: object, limit: int = 0) -> list[MrpcPair]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        rows = [r for r in csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE) if len(r) == 5][1:]
    rows = rows[:limit] if limit else rows
    first = embedder.encode([r[3] for r in rows], batch_size=64)
    second = embedder.encode([r[4] for r in rows], batch_size=64)
    sims = np.einsum("ij,ij->i", first, second)
    # A derangement by a seeded rotation of a shuffled order: every sentence meets another story.
    order = list(range(len(rows)))
    random.Random(SEED).shuffle(order)
    partner = np.empty(len(rows), dtype=np.int64)
    partner[order] = np.roll(order, 1)
    cross = np.einsum("ij,ij->i", first, second[partner])
    out = []
    for row, sim, other in zip(rows, sims, cross, strict=True):
        positive = row[0] == "1"
        # Flags on human-judged paraphrases measure false alarms; negatives are not needed for that.
        flagged = bool(compare_meaning(row[3], row[4], nlp)) if positive else False
        out.append(
            MrpcPair(
                float(sim),
                float(other),
                len(canon.normalise_text(row[4]).split()),
                positive,
                flagged,
                _split(f"mrpc:{row[1]}:{row[2]}"),
            )
        )
    return out


# -- flags on perturbed wordings -------------------------------------------------------------------

_AUX = re.compile(r"\b(is|are|was|were|will|must|can|would|should|has|have|does|do)\b", re.I)
_SWAP = {"russia": "Ukraine", "syria": "Iraq", "ukraine": "Russia", "america": "China", "europe": "Turkey"}
_NUMBER_WORDS = {"two": "four", "three": "five", "four": "six", "five": "seven", "ten": "twelve"}


def perturbations(text: str) -> list[tuple[str, str]]:
    """(expected flag type, perturbed text) for each change this wording allows."""
    out: list[tuple[str, str]] = []
    words = text.split()
    negation = next((w for w in words if w.lower().strip(".,") in NEGATIONS or w.lower().endswith("n't")), None)
    if negation is not None:
        out.append(("negation", " ".join(w for w in words if w is not negation)))
    elif _AUX.search(text):
        out.append(("negation", _AUX.sub(lambda m: f"{m.group(0)} not", text, count=1)))
    digits = re.search(r"\d+", text)
    number = next((w for w in words if w.lower().strip(".,") in _NUMBER_WORDS), None)
    if digits:
        out.append(("number", text[: digits.start()] + str(int(digits.group(0)) + 2) + text[digits.end() :]))
    elif number is not None:
        out.append(("number", text.replace(number, _NUMBER_WORDS[number.lower().strip(".,")], 1)))
    for i, w in enumerate(words):
        key = PLACE_KEYS.get(w.lower().strip(".,’'s").removesuffix("'s").removesuffix("’s"))
        if key in _SWAP:
            out.append(("entity", " ".join([*words[:i], _SWAP[key], *words[i + 1 :]])))
            break
    content = [i for i, w in enumerate(words) if len(w) > 4 and w.isalpha() and w.islower()]
    middle = [i for i in content if 0 < i < len(words) - 1]
    if middle:
        i = middle[len(middle) // 2]
        out.append(("deletion", " ".join(words[:i] + words[i + 1 :])))
        out.append(("insertion", " ".join([*words[:i], "secretly", *words[i:]])))
    return out


def flag_cases(quotes_texts: list[str], nlp: object) -> list[tuple[str, bool, bool]]:
    """(flag type, caught, calibration part) for every perturbation of every wording."""
    cases = []
    for text in quotes_texts:
        if len(text.split()) < 5:
            continue
        for kind, changed in perturbations(text):
            caught = any(f.type == kind for f in compare_meaning(text, changed, nlp))
            cases.append((kind, caught, _split(f"flag:{kind}:{text}")))
    return cases


# -- choosing --------------------------------------------------------------------------------------


def f_beta(tp: int, fp: int, fn: int, beta: float = 1.0) -> float:
    b2 = beta * beta
    denom = (1 + b2) * tp + b2 * fn + fp
    return (1 + b2) * tp / denom if denom else 0.0


def corpus_counts(pairs: Sequence[CorpusPair], accept: Callable[[CorpusPair], bool]) -> tuple[int, int, int]:
    """TP: accepted and correct; FP: accepted and wrong (or unseen); FN: the store has it, but the
    best match was rejected or wrong."""
    tp = sum(1 for p in pairs if accept(p) and p.correct)
    fp = sum(1 for p in pairs if accept(p) and not p.correct)
    fn = sum(1 for p in pairs if p.positive and not (accept(p) and p.correct))
    return tp, fp, fn


def mrpc_counts(pairs: Sequence[MrpcPair], threshold: float, min_words: int) -> tuple[int, int, int, int]:
    pred = [p.similarity >= threshold and p.words >= min_words for p in pairs]
    tp = sum(1 for p, y in zip(pairs, pred, strict=True) if y and p.paraphrase)
    fp = sum(1 for p, y in zip(pairs, pred, strict=True) if y and not p.paraphrase)
    fn = sum(1 for p, y in zip(pairs, pred, strict=True) if not y and p.paraphrase)
    tn = len(pairs) - tp - fp - fn
    return tp, fp, fn, tn


def same_story_f1(pairs: Sequence[MrpcPair], threshold: float) -> float:
    """F1 of telling a pair about the same story (any MRPC pair) from two unrelated sentences."""
    tp = sum(1 for p in pairs if p.similarity >= threshold)
    fp = sum(1 for p in pairs if p.cross_similarity >= threshold)
    return f_beta(tp, fp, len(pairs) - tp)


def choose(corpus: list[CorpusPair], mrpc: list[MrpcPair]) -> tuple[Thresholds, dict[str, object]]:
    cal_c = [p for p in corpus if p.calibration and not p.verbatim]
    cal_m = [p for p in mrpc if p.calibration]

    def para_score(t: float, min_words: int) -> tuple[float, float, float]:
        f_c = f_beta(*corpus_counts(cal_c, lambda p: p.similarity >= t and p.words >= min_words))
        tp, fp, fn, _ = mrpc_counts(cal_m, t, min_words)
        f_m = f_beta(tp, fp, fn)
        return (f_c + f_m) / 2, f_c, f_m

    # Joint sweep; among equally good guards the longest (it costs nothing the data can measure).
    scored = {(t, n): para_score(t, n)[0] for t in GRID for n in MIN_WORDS_CHOICES}
    best = max(scored.values())
    plateau = sorted(n for (t, n), v in scored.items() if v == best)
    min_words = plateau[-1]
    paraphrase = min(t for (t, n), v in scored.items() if v == best and n == min_words)
    related = max(
        (t for t in GRID if t <= paraphrase),
        key=lambda t: (same_story_f1(cal_m, t), -t),
    )
    score, f_c, f_m = para_score(paraphrase, min_words)
    sweep = {
        f"{t:.2f}": {
            "mean_f1": round(para_score(t, min_words)[0], 4),
            "corpus_f1": round(para_score(t, min_words)[1], 4),
            "mrpc_f1": round(para_score(t, min_words)[2], 4),
        }
        for t in GRID[::5]
    }
    return Thresholds(paraphrase, related, min_words), {
        "objective": "paraphrase: mean of corpus F1 and MRPC F1; related: MRPC same-story F1",
        "calibration_mean_f1": round(score, 4),
        "calibration_corpus_f1": round(f_c, 4),
        "calibration_mrpc_f1": round(f_m, 4),
        "min_words_plateau": [plateau[0], plateau[-1]],
        "calibration_same_story_f1_at_related": round(same_story_f1(cal_m, related), 4),
        "sweep": sweep,
    }


def report(
    name: str,
    corpus: list[CorpusPair],
    mrpc: list[MrpcPair],
    flags: list[tuple[str, bool, bool]],
    th: Thresholds,
) -> dict[str, object]:
    def label(p: CorpusPair) -> str:
        return "verbatim" if p.verbatim else th.label(p.similarity, p.words)

    matched = [p for p in corpus if label(p) != "none"]
    positives = [p for p in corpus if p.positive]
    unseen = [p for p in corpus if not p.positive]
    strong = [p for p in corpus if label(p) in ("verbatim", "paraphrase")]
    tp, fp, fn = corpus_counts([p for p in corpus if not p.verbatim], lambda p: label(p) == "paraphrase")
    mtp, mfp, mfn, mtn = mrpc_counts(mrpc, th.paraphrase, th.min_words_paraphrase)
    faithful = [p for p in corpus if p.positive and p.correct and label(p) in ("verbatim", "paraphrase")]
    mrpc_pos = [p for p in mrpc if p.paraphrase]
    by_type: dict[str, list[bool]] = {}
    for kind, caught, _ in flags:
        by_type.setdefault(kind, []).append(caught)

    def rate(xs: Sequence[bool]) -> float | None:
        return round(sum(xs) / len(xs), 4) if xs else None

    return {
        "part": name,
        "corpus_queries": len(corpus),
        "corpus_positive": len(positives),
        "corpus_verbatim": sum(p.verbatim for p in corpus),
        "speaker_accuracy": rate([p.speaker == p.gold_speaker for p in matched if p.positive]),
        "speaker_accuracy_n": sum(1 for p in matched if p.positive),
        "right_statement_recall": rate([p.correct and label(p) != "none" for p in positives]),
        "false_match_rate_unseen": rate([label(p) in ("verbatim", "paraphrase") for p in unseen]),
        "unseen_n": len(unseen),
        "wrong_strong_matches": sum(1 for p in strong if not p.correct),
        "corpus_paraphrase_f1": round(f_beta(tp, fp, fn), 4),
        "mrpc_pairs": len(mrpc),
        "mrpc_paraphrase_accuracy": rate([True] * (mtp + mtn) + [False] * (mfp + mfn)),
        "mrpc_paraphrase_f1": round(f_beta(mtp, mfp, mfn), 4),
        "mrpc_same_story_f1": round(same_story_f1(mrpc, th.related), 4),
        "flag_recall": rate([c for _, c, _ in flags]),
        "flag_recall_by_type": {k: rate(v) for k, v in sorted(by_type.items())},
        "flag_cases": len(flags),
        "flagged_faithful_corpus": rate([p.flagged for p in faithful]),
        "flagged_mrpc_paraphrases": rate([p.flagged for p in mrpc_pos]),
    }


def print_table(rows: list[dict[str, object]], th: Thresholds) -> None:
    print(
        f"\nthresholds: paraphrase {th.paraphrase:.2f}, related {th.related:.2f}, "
        f"min_words_paraphrase {th.min_words_paraphrase}\n"
    )
    keys = [k for k in rows[0] if k != "part" and not isinstance(rows[0][k], dict)]
    print(f"{'figure':28} " + " ".join(f"{r['part']!s:>12}" for r in rows))
    for k in keys:
        print(f"{k:28} " + " ".join(f"{'-' if r[k] is None else r[k]!s:>12}" for r in rows))
    by_type = [r["flag_recall_by_type"] for r in rows]
    kinds = sorted({k for d in by_type if isinstance(d, dict) for k in d})
    for kind in kinds:
        vals = [d.get(kind) if isinstance(d, dict) else None for d in by_type]
        print(f"{'flag_recall_' + kind:28} " + " ".join(f"{'-' if v is None else v!s:>12}" for v in vals))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--mrpc", type=Path, default=DEFAULT_MRPC, help="MRPC training TSV (default: %(default)s)")
    parser.add_argument("--limit-mrpc", type=int, default=0, help="use only the first N MRPC pairs (quick runs)")
    parser.add_argument("--write", action="store_true", help=f"write the chosen values to {CALIBRATION_FILE}")
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default="torch",
        help="embedding backend of the queries and MRPC pairs (default: %(default)s)",
    )
    parser.add_argument(
        "--store-backend",
        choices=BACKENDS,
        default="torch",
        help="embedding backend the stores are built with, as `python -m service build` does (default: %(default)s)",
    )
    parser.add_argument(
        "--at-calibrated",
        action="store_true",
        help=f"report at the thresholds in {CALIBRATION_FILE.name} (what the service uses) instead of choosing",
    )
    args = parser.parse_args(argv)
    if not args.mrpc.is_file():
        print(f"MRPC pairs not found at {args.mrpc}: pass --mrpc PATH", file=sys.stderr)
        return 2
    if args.write and (args.at_calibrated or args.backend != "torch" or args.store_backend != "torch"):
        print("--write records thresholds chosen with the torch backend only", file=sys.stderr)
        return 2
    started = time.monotonic()
    settings = Settings.from_env()
    embedder, nlp = load_embedder(settings.model_dir, backend=args.backend), load_nlp()
    store_embedder = load_embedder(settings.model_dir, backend=args.store_backend)
    print(f"queries: {args.backend}, stores: {args.store_backend}", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="calibrate-") as tmp:
        corpus = corpus_pairs(
            settings.corpus_dir, embedder, nlp, settings.effective_speakers_file(), Path(tmp), store_embedder
        )
        full = SqliteStore(Path(tmp) / "full.sqlite3", embedder.name, embedder.revision)
        wordings = sorted({v.text for q in full.quotes(limit=1 << 62)[1] for v in q.variants})
    mrpc = mrpc_pairs(args.mrpc, embedder, nlp, args.limit_mrpc)
    flags = flag_cases(wordings, nlp)
    thresholds, choice = choose(corpus, mrpc)
    if args.at_calibrated:
        thresholds = Thresholds.load()
    rows = [
        report(
            name,
            [p for p in corpus if p.calibration == cal],
            [p for p in mrpc if p.calibration == cal],
            [f for f in flags if f[2] == cal],
            thresholds,
        )
        for name, cal in (("calibration", True), ("held-back", False))
    ]
    print_table(rows, thresholds)
    elapsed = time.monotonic() - started
    print(f"\n{len(corpus)} corpus queries, {len(mrpc)} MRPC pairs, {len(flags)} flag cases; {elapsed:.0f} s")
    if args.write:
        payload = {
            "format": "quote-calibration/1",
            "thresholds": {
                "paraphrase": thresholds.paraphrase,
                "related": thresholds.related,
                "min_words_paraphrase": thresholds.min_words_paraphrase,
            },
            "model": {"name": embedder.name, "revision": embedder.revision},
            "made_by": "eval/calibrate.py --write",
            "made_at": dt.date.today().isoformat(),
            "split": {"seed": SEED, "calibration_share": CAL_SHARE},
            "choice": choice,
            "figures": rows,
        }
        CALIBRATION_FILE.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {CALIBRATION_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
