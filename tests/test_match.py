"""The matching layer on a store built from the repository's corpus, with the real model."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.config import REPO_ROOT
from service.corpus import ArticleMeta, make_article
from service.embed import Embedder
from service.flags import Flag, compare_meaning
from service.ingest import add_article
from service.match import Match, Matcher, Thresholds
from service.store import SqliteStore

CORPUS = REPO_ROOT / "corpus"

PESKOV = (
    "Kremlin spokesman Dmitry Peskov stressed that Moscow will keep up a constant dialogue with the new "
    "Syrian authorities."
)
NEGATED = (
    '"Russia does not support the unity, territorial integrity and sovereignty of the Syrian Arab '
    'Republic," the Foreign Ministry said.'
)
SYBIGA = 'Ukraine\'s foreign minister Andriy Sybiga spoke of "deep strategic interests between Russia and Syria."'
WEATHER = "It was sunny and warm in Damascus on Tuesday, with temperatures reaching 25 degrees."
RESTORATION = (
    "Restoring relations must address past mistakes and respect the will of the Syrian people, "
    "the Russian delegation said."
)


@pytest.fixture(scope="session")
def store_path(built_store: SqliteStore) -> Path:
    """The session store built from the corpus (tests/conftest.py); tests that write copy it."""
    return built_store.path


@pytest.fixture(scope="session")
def matcher(store_path: Path, embedder: Embedder, nlp: object) -> Matcher:
    return Matcher(SqliteStore(store_path, embedder.name, embedder.revision), embedder, nlp)


def only(matches: list[Match]) -> Match:
    assert len(matches) == 1, [m.segment for m in matches]
    return matches[0]


def flag_types(match: Match) -> set[str]:
    return {f.type for f in match.flags}


# -- the examples --------------------------------------------------------------------------


def test_reported_speech_is_a_paraphrase_of_peskov_with_his_sources(matcher: Matcher) -> None:
    m = only(matcher.match_text(PESKOV))
    # The segment is the reported content; the frame names the speaker.
    assert m.segment.kind == "sentence"
    assert m.segment.text == "Moscow will keep up a constant dialogue with the new Syrian authorities"
    assert PESKOV[m.segment.start : m.segment.end] == m.segment.text
    assert m.segment.speaker_id == "dmitry-peskov"
    assert m.quote is not None and m.quote.speaker_id == "dmitry-peskov"
    assert m.label == "paraphrase"
    assert m.similarity >= matcher.thresholds.paraphrase
    assert m.attribution == "consistent"
    assert m.clean and m.flags == ()
    assert m.quote.sources, "a match carries where the statement was reported"
    assert all(s.url.startswith("https://") for s in m.quote.sources)


def test_negated_statement_is_the_foreign_ministrys_with_a_negation_flag(matcher: Matcher) -> None:
    m = only(matcher.match_text(NEGATED))
    assert m.segment.kind == "quote"
    assert m.quote is not None and m.quote.speaker_id == "russian-foreign-ministry"
    assert "unwavering support" in m.quote.text
    negation = [f for f in m.flags if f.type == "negation"]
    assert negation and negation[0].added == ("not",) and negation[0].removed == ()
    assert not m.clean, "a flagged match is never a clean paraphrase"
    # "the Foreign Ministry" describes the Russian Foreign Ministry: not a misattribution.
    assert m.segment.speaker_mention == "the Foreign Ministry"
    assert m.attribution == "consistent"


def test_quote_put_in_someone_elses_mouth_is_misattributed(matcher: Matcher) -> None:
    m = only(matcher.match_text(SYBIGA))
    assert m.segment.text == "deep strategic interests between Russia and Syria."
    assert m.segment.speaker_id == "andriy-sybiga"  # the extractor has no cue for "spoke of"
    assert m.label == "verbatim"
    assert m.quote is not None and m.quote.speaker_id == "ahmed-al-sharaa"
    assert m.attribution == "misattributed"


def test_weather_in_damascus_matches_nothing(matcher: Matcher) -> None:
    m = only(matcher.match_text(WEATHER))
    assert m.quote is None and m.label == "none" and m.attribution is None and m.flags == ()
    assert m.similarity < matcher.thresholds.related


# -- labels ----------------------------------------------------------------------------------------


def test_contiguous_part_of_a_variant_is_verbatim(matcher: Matcher) -> None:
    text = 'Peskov said it was necessary "to build and maintain a permanent dialogue with the Syrian authorities."'
    m = only(matcher.match_text(text))
    assert m.label == "verbatim" and m.flags == () and m.clean
    assert m.quote is not None and m.quote.speaker_id == "dmitry-peskov"
    assert m.attribution == "consistent"
    assert m.variant is not None and "permanent dialogue" in m.variant.text


def test_quote_split_around_its_cue_is_one_segment(matcher: Matcher) -> None:
    text = (
        '"It is necessary to build and maintain a permanent dialogue with the Syrian authorities," Peskov '
        'told reporters in Moscow, "which is what we will continue to do."'
    )
    m = only(matcher.match_text(text))
    assert m.segment.kind == "quote"
    assert m.segment.start == 1 and text[m.segment.end :] == '"'  # both parts, cue between
    assert m.label == "verbatim" and m.segment.speaker_id == "dmitry-peskov"


def test_short_segment_is_never_a_paraphrase_on_similarity_alone(matcher: Matcher) -> None:
    m = only(matcher.match_text('"a very important trip," Peskov said.'))
    assert m.similarity >= matcher.thresholds.paraphrase  # similar enough, but four words
    assert m.label == "related"
    assert m.quote is not None and m.quote.speaker_id == "dmitry-peskov"


def test_changed_number_is_flagged(matcher: Matcher) -> None:
    m = only(matcher.match_text("Bogdanov said he and his delegation met for five hours with Syria's new leader."))
    assert m.quote is not None and m.quote.speaker_id == "mikhail-bogdanov"
    number = [f for f in m.flags if f.type == "number"]
    assert number and number[0].removed == ("three",) and number[0].added == ("five",)
    assert not m.clean


def test_each_sentence_outside_quotations_is_a_segment(matcher: Matcher) -> None:
    text = f"{WEATHER} {PESKOV} Ok then."
    matches = matcher.match_text(text)
    assert [m.segment.kind for m in matches] == ["sentence", "sentence"]  # "Ok then." is a fragment
    assert [text[m.segment.start : m.segment.end] for m in matches] == [m.segment.text for m in matches]
    assert [m.label for m in matches] == ["none", "paraphrase"]


# -- attribution -----------------------------------------------------------------------------------


def test_disputed_quote(matcher: Matcher) -> None:
    named = only(matcher.match_text(RESTORATION))
    assert named.quote is not None and named.quote.disputed
    assert {a.speaker_id for a in named.quote.attributions} == {"syrian-government", "russian-delegation"}
    assert named.segment.speaker_id == "russian-delegation"
    assert named.attribution == "disputed"  # the input names one of the disputed speakers
    anonymous = only(
        matcher.match_text("Restoring relations must address past mistakes and respect the will of the Syrian people.")
    )
    assert anonymous.attribution == "disputed"
    other = only(matcher.match_text(RESTORATION, speaker="Dmitry Peskov"))
    assert other.attribution == "disputed", "the input's own naming wins over the argument"
    other = only(matcher.match_text(RESTORATION.replace("the Russian delegation", "Peskov")))
    assert other.attribution == "misattributed"


def test_speaker_argument_applies_when_the_input_names_nobody(matcher: Matcher) -> None:
    text = "Moscow will keep up a constant dialogue with the new Syrian authorities."
    assert only(matcher.match_text(text)).attribution == "unverified"
    assert only(matcher.match_text(text, speaker="Peskov")).attribution == "consistent"
    assert only(matcher.match_text(text, speaker="dmitry-peskov")).attribution == "consistent"
    assert only(matcher.match_text(text, speaker="Ahmed al-Sharaa")).attribution == "misattributed"
    assert only(matcher.match_text(text, speaker="John Nobody")).attribution == "misattributed"


def test_candidates_and_min_similarity(matcher: Matcher) -> None:
    m = only(matcher.match_text(PESKOV, top_k=3, min_similarity=0.0))
    assert len(m.alternatives) == 2
    assert m.quote is not None and m.quote.id not in {c.quote_id for c in m.alternatives}
    assert all(c.similarity <= m.similarity for c in m.alternatives)
    strict = only(matcher.match_text(PESKOV, min_similarity=0.95))
    assert strict.quote is None and strict.label == "none"
    assert only(matcher.match_text(WEATHER, top_k=2, min_similarity=0.0)).alternatives


# -- compare and the store -------------------------------------------------------------------------


def test_compare_catches_what_similarity_cannot(matcher: Matcher) -> None:
    original = "We do not want Russia to leave Syria, and we will keep working with Moscow."
    rendering = "We want Russia to leave Syria, and we will keep working with Moscow."
    similarity, label, flags = matcher.compare(original, rendering)
    assert similarity > 0.85 and label == "paraphrase"
    assert [f.type for f in flags] == ["negation"] and flags[0].removed == ("not",)
    assert matcher.compare(original, original)[1:] == ("verbatim", ())
    assert matcher.compare(original, "Russia to leave Syria")[1] == "verbatim"
    assert matcher.compare("", "anything") == (0.0, "none", ())


def test_matcher_reloads_when_the_store_changes(
    tmp_path: Path, store_path: Path, embedder: Embedder, nlp: object
) -> None:
    path = tmp_path / "quotes.sqlite3"
    shutil.copyfile(store_path, path)
    store = SqliteStore(path, embedder.name, embedder.revision)
    matcher = Matcher(store, embedder, nlp)
    before = matcher.store_version
    text = '"The harvest in the north will be the largest in a decade," Peskov told reporters on Monday.'
    assert only(matcher.match_text(text)).label != "verbatim"
    meta = ArticleMeta(outlet="Test Wire", url="https://example.org/harvest", published=None)
    add_article(store, make_article(text, meta), embedder, nlp)
    m = only(matcher.match_text(text))
    assert matcher.store_version == before + 1
    assert m.label == "verbatim" and m.attribution == "consistent"
    assert m.quote is not None and m.quote.sources[0].url == "https://example.org/harvest"


def test_segments_of_empty_text(matcher: Matcher) -> None:
    assert matcher.segment("") == [] and matcher.match_text("   \n") == []


def test_thresholds_come_from_the_calibration_file() -> None:
    th = Thresholds.load()
    assert 0.0 < th.related < th.paraphrase < 1.0 and th.min_words_paraphrase >= 1
    assert th.label(th.paraphrase, th.min_words_paraphrase) == "paraphrase"
    assert th.label(th.paraphrase, th.min_words_paraphrase - 1) == "related"
    assert th.label(th.related - 0.01, 20) == "none"


def test_thresholds_refuse_a_broken_file(tmp_path: Path) -> None:
    path = tmp_path / "calibration.json"
    path.write_text('{"thresholds": {"paraphrase": 0.3, "related": 0.6, "min_words_paraphrase": 4}}')
    with pytest.raises(RuntimeError, match="out of order"):
        Thresholds.load(path)
    path.write_text("{}")
    with pytest.raises(RuntimeError, match="calibrate"):
        Thresholds.load(path)


# -- flags -----------------------------------------------------------------------------------------


def types(flags: tuple[Flag, ...]) -> list[str]:
    return [f.type for f in flags]


@pytest.mark.parametrize(
    ("original", "rendering", "removed", "added"),
    [
        ("We do not want Russia to leave", "We want Russia to leave", ("not",), ()),
        ("We want Russia to leave", "We never want Russia to leave", (), ("never",)),
        ("Moscow doesn't intend to leave the bases", "Moscow intends to leave the bases", ("doesn't",), ()),
        ("We do not want Russia to leave", "want Russia to leave", ("not",), ()),  # negation before the part
    ],
)
def test_negation_flag(original: str, rendering: str, removed: tuple[str, ...], added: tuple[str, ...]) -> None:
    flags = [f for f in compare_meaning(original, rendering) if f.type == "negation"]
    assert flags and flags[0].removed == removed and flags[0].added == added


def test_equivalent_negations_and_numbers_are_not_flagged() -> None:
    assert compare_meaning("It poses no threat to its neighbours", "It poses not a threat to its neighbours") == ()
    assert compare_meaning("They met for three hours", "They met for 3 hours") == ()
    assert compare_meaning("twenty five soldiers were hurt", "25 soldiers were hurt") == ()


def test_number_flag() -> None:
    (flag,) = compare_meaning("Troops numbering 1,500 will stay", "Troops numbering 2,000 will stay")
    assert (flag.type, flag.removed, flag.added) == ("number", ("1,500",), ("2,000",))


def test_entity_flag(nlp: object) -> None:
    (flag,) = compare_meaning(
        "deep strategic interests between Russia and Syria", "deep strategic interests between Ukraine and Syria", nlp
    )
    assert (flag.type, flag.removed, flag.added) == ("entity", ("Russia",), ("Ukraine",))
    # A country, its demonym and its capital are one entity.
    assert (
        compare_meaning("The Russian side supports the unity of Syria", "Moscow supports the unity of Syria", nlp) == ()
    )


def test_the_recogniser_is_asked_only_about_an_opening_capital_or_a_word_in_capitals(nlp: object) -> None:
    from service import flags

    def asked(original: str, rendering: str) -> tuple[tuple[str, ...], int]:
        flags._spacy_entity_words.cache_clear()
        found = compare_meaning(original, rendering, nlp)
        return tuple(f.type for f in found), flags._spacy_entity_words.cache_info().misses

    # Opening stop words and places, and names inside the text, need no recogniser.
    assert asked("The talks between Russia and Syria went on", "The talks between Ukraine and Syria went on") == (
        ("entity",),
        0,
    )
    assert asked("Moscow wants the bases", "Moscow wants the bases") == ((), 0)
    # An opening capital is a name only if the recogniser says so; so is a word in capitals.
    assert asked("Peskov spoke to the press", "Lavrov spoke to the press") == (("entity",), 2)
    assert asked("Officials spoke to the press", "Diplomats spoke to the press") == ((), 2)
    assert asked("the UN spoke", "the EU spoke") == (("entity",), 2)


def test_insertion_and_deletion_flags() -> None:
    flags = compare_meaning("We want Russia to leave the bases", "We want Russia to leave the bases immediately")
    assert types(flags) == ["insertion"] and flags[0].added == ("immediately",)
    flags = compare_meaning(
        "respect the unity, territorial integrity and sovereignty of Syria",
        "respect the unity and sovereignty of Syria",
    )
    assert types(flags) == ["deletion"] and flags[0].removed == ("territorial", "integrity")


def test_partial_quotes_and_paraphrases_are_not_insertions() -> None:
    # Quoting the start of a statement leaves its end out: that is no deletion.
    assert compare_meaning("We will continue dialogue with the Syrian authorities", "We will continue dialogue") == ()
    # A loose paraphrase rewords: word-level checks do not apply.
    assert (
        compare_meaning(
            "Russian authorities will continue to establish dialogue with the new leadership of Syria",
            "Moscow will keep up a constant dialogue with the new Syrian authorities",
        )
        == ()
    )


@pytest.fixture(autouse=True)
def _no_leaked_speakers(request: pytest.FixtureRequest) -> Iterator[None]:
    """Matching never registers the people an input names in the store's registry."""
    yield
    if "matcher" in request.fixturenames:
        m: Matcher = request.getfixturevalue("matcher")
        assert "foreign-ministry" not in m.store.registry().speakers


def test_a_long_text_on_a_store_larger_than_one_search(
    tmp_path: Path, store_path: Path, embedder: Embedder, nlp: object
) -> None:
    """Each segment's search returns only some variants (64 of over 100): the wordings a segment is
    compared with may come from another segment's search or from the store."""
    path = tmp_path / "quotes.sqlite3"
    shutil.copyfile(store_path, path)
    store = SqliteStore(path, embedder.name, embedder.revision)
    texts = [p.read_text(encoding="utf-8") for p in sorted(CORPUS.glob("*.txt"))]
    meta = ArticleMeta(outlet="Digest", url="https://example.org/digest", published=None)
    add_article(store, make_article("\n\n".join(texts), meta), embedder, nlp)
    assert store.info()["variants"] > 100
    matches = Matcher(store, embedder, nlp).match_text("\n\n".join(texts[:2]))
    assert len(matches) > 20 and sum(m.label == "verbatim" for m in matches) > 10
