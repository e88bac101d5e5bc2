"""Segmentation skips the attribution half of the parse for a text that cannot hold an attribution:
the segments must be the same as with the full parse, on the corpus (articles, paragraphs,
sentences), on texts without quotation marks or cues, and on PolNeAR's sentences when it is here."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from service.config import REPO_ROOT
from service.corpus import load_corpus
from service.extract import segments
from service.records import Segment, SegmentKind
from service.speakers import SpeakerRegistry
from tests.conftest import CORPUS

POLNEAR = Path(os.environ.get("QUOTES_POLNEAR_DIR", REPO_ROOT.parent / "shared" / "polnear"))

NO_CUE = [
    "It will rain in Paris tomorrow afternoon.",
    "The meeting lasted three hours. The delegations met again on Wednesday",
    "Russia keeps two bases in Syria.\nThe navy uses the port of Tartus",
    "Prices rose by 4 % in January; the central bank kept its rate.",
    "The door opened and the ministers walked in.",  # "open" speaks only with "up"
    "Ok then. A short one. The convoy left Damascus before dawn on Monday.",
    "  Leading and trailing spaces around a sentence about the weather.  ",
    "Ünïcödé café: no, a colon sends this one the full way.",
]
MAY_ATTRIBUTE = [
    "Peskov said the talks went well.",
    "The minister understood the risk.",  # an irregular form of a belief verb
    "Cruz shot back at his critics.",  # a phrasal cue
    "As Lavrov put it, the door is open.",
    "According to Tass, the talks went well.",
    "Trump: we will win.",
    "The talks were “constructive” and long.",
    "The document shows the plan.",  # evidence
]


@pytest.fixture(scope="module")
def registry() -> SpeakerRegistry:
    reg = SpeakerRegistry()
    reg.load_file(CORPUS / "speakers.json")
    return reg


@pytest.fixture(scope="module")
def texts(nlp: object) -> list[str]:
    articles = [a.text for a in load_corpus(CORPUS)]
    paragraphs = [p for a in articles for p in a.split("\n\n") if p.strip()]
    sentences = [s.text for a in articles for s in nlp(a).sents if s.text.strip()]  # type: ignore[operator]
    found = [*articles, *paragraphs, *sentences, *NO_CUE, *MAY_ATTRIBUTE]
    if (POLNEAR / "train").is_dir():
        for path in sorted((POLNEAR / "train" / "text").glob("*"))[::40]:
            text = path.read_text(encoding="utf-8")
            found += [s.text for s in nlp(text).sents if s.text.strip()]  # type: ignore[operator]
    return found


def _full_parse_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(segments, "_parse_sentences_only", lambda body_text, nlp: None)


def _lean(text: str, nlp: object) -> bool:
    return segments._parse_sentences_only(segments._body_text(text), nlp) is not None


def test_the_sentences_only_parse_gives_the_same_segments(
    texts: list[str], registry: SpeakerRegistry, nlp: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    lean = [t for t in texts if _lean(t, nlp)]
    got = {t: segments.segment_text(t, registry, nlp) for t in lean}
    _full_parse_only(monkeypatch)
    want: Callable[[str], list[Segment]] = lambda t: segments.segment_text(t, registry, nlp)  # noqa: E731
    differ = [t for t in lean if got[t] != want(t)]
    assert not differ, differ[:3]
    # Enough of them took the short way for this to mean something (about a fifth of the sentences).
    assert len(lean) >= 40, len(lean)
    assert all(s.kind is SegmentKind.SENTENCE and s.speaker_id is None for t in lean for s in got[t])


def test_which_texts_take_the_short_way(nlp: object) -> None:
    assert [t for t in NO_CUE if not _lean(t, nlp)] == [NO_CUE[-1]]
    assert [t for t in MAY_ATTRIBUTE if _lean(t, nlp)] == []
