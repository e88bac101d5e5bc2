"""Extraction on news it was not written against: a regression guard on 17 PolNeAR train articles.

The corpus is read where it lies (`../shared/polnear`, or QUOTES_POLNEAR_DIR); it has no licence, so
nothing of it is copied here. The full figures come from
`python -m service eval-extraction --polnear ../shared/polnear/dev` (README).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from service.config import REPO_ROOT
from service.corpus import ArticleMeta, make_article
from service.extract import extract_article
from service.polnear import GoldArticle, Report, load_polnear, score_article
from service.records import CueClass, MentionKind, QuoteMention, Span
from service.speakers import SpeakerRegistry

POLNEAR = Path(os.environ.get("QUOTES_POLNEAR_DIR", REPO_ROOT.parent / "shared" / "polnear"))
needs_polnear = pytest.mark.skipif(not (POLNEAR / "train").is_dir(), reason=f"no PolNeAR corpus at {POLNEAR}")


@pytest.fixture(scope="module")
def sample() -> list[GoldArticle]:
    return load_polnear(POLNEAR / "train")[::52]  # 17 articles, every outlet


@needs_polnear
def test_figures_on_a_handful_of_train_articles(nlp: object, sample: list[GoldArticle]) -> None:
    report = Report()
    for gold in sample:
        meta = ArticleMeta(
            outlet="PolNeAR", url=f"https://polnear.invalid/{gold.name}", published=None, title=gold.title
        )
        score_article(report, gold, extract_article(make_article(gold.text, meta), SpeakerRegistry(), nlp).mentions)
    assert report.articles == 17 and report.counts["all"].gold > 400
    speech, quoted, everything = (report.counts[k].ratios() for k in ("speech", "quoted", "all"))
    # Measured when this guard was last set: 0.796 / 0.918, 0.906, 0.766, 0.417, 0.836.
    assert speech["mention_r"] >= 0.77 and speech["mention_p"] >= 0.89
    assert quoted["mention_r"] >= 0.88
    assert everything["overlap_f1"] >= 0.74
    assert everything["exact_f1"] >= 0.39
    assert everything["source_acc"] >= 0.80


def _gold(text: str, content: str, source: str, cue: str) -> GoldArticle:
    def at(s: str) -> tuple[tuple[int, int], ...]:
        return ((text.index(s), text.index(s) + len(s)),)

    from service.polnear import GoldAttribution

    return GoldArticle("t", "", text, (GoldAttribution(at(content), at(cue), at(source), '"' in content, True),))


def _mention(text: str, content: str, source: str) -> QuoteMention:
    a, s = text.index(content), text.index(source)
    return QuoteMention(
        "a",
        MentionKind.INDIRECT,
        (Span(a, a + len(content), content),),
        "said",
        source,
        None,
        0.9,
        CueClass.SPEECH,
        speaker_span=Span(s, s + len(source), source),
    )


def test_scores_are_token_sets_that_ignore_a_leading_that_and_punctuation() -> None:
    text = "Lopez said that the bridge will open soon."
    report = Report()
    score_article(
        report,
        _gold(text, "that the bridge will open soon", "Lopez", "said"),
        [_mention(text, "the bridge will open soon.", "Lopez")],
    )
    r = report.counts["all"].ratios()
    assert r["exact_p"] == r["exact_r"] == 1.0 and r["source_acc"] == 1.0
    assert r["overlap_p"] == 1.0 and r["overlap_r"] == pytest.approx(5 / 6)


def test_a_partial_overlap_counts_for_mentions_not_for_exact() -> None:
    text = "Lopez said the bridge will open soon, and Carter agreed."
    report = Report()
    score_article(
        report,
        _gold(text, "the bridge will open soon", "Lopez", "said"),
        [_mention(text, "the bridge will open soon, and Carter agreed", "Carter")],
    )
    r = report.counts["all"].ratios()
    assert r["mention_p"] == r["mention_r"] == 1.0
    assert r["exact_p"] == r["exact_r"] == 0.0
    assert r["overlap_p"] == pytest.approx(5 / 8) and r["overlap_r"] == 1.0
    assert r["source_acc"] == 0.0  # the speaker named does not overlap the gold source
    assert report.wrong_source and report.inexact
