"""A text to check, cut into the segments the matcher compares with the store.

Quotations first, each with the speaker the text names for it; then reported speech with its
speaker; then every other sentence. One parse serves it all: the attributions are read from the
same parse that gives the sentences and the loose quotations (the matcher never parses).

A text that cannot hold an attribution is parsed for its sentences only. An attribution needs a
quotation, a colon, "according to", or a word that spaCy's lemmatizer can read as a cue verb
(`_cue_forms`: every form that its rules or exceptions turn into a cue's lemma). Without any of
those, the extractor finds nothing, every segment is a sentence, and the sentences come from the
parser alone: the tagger, attribute ruler, lemmatizer and NER are skipped, about 55 % of the parse
(bench/bench_segments.py). tests/test_segments.py checks that the segments are the same either way.
"""

from __future__ import annotations

import re
import weakref
from typing import Any

from ..corpus import ArticleMeta, make_article
from ..records import MentionKind, QuoteMention, Segment, SegmentKind
from ..speakers import SpeakerRegistry
from .attribution import read_attributions
from .cues import ALL_CUE_VERBS, SPEECH_PHRASALS
from .layout import Block, split_blocks
from .parse import ParsedArticle, mask, parse_article
from .quotes import Quotation, find_quotations

# The extractor reads articles; a text sent for checking is one, from nowhere.
_INPUT_META = ArticleMeta(outlet="input", url="https://input.invalid/", published=None)
MIN_SENTENCE_WORDS = 3
_PRONOUNS = {"he", "she", "it", "they", "we", "i", "you", "who", "this", "that"}
_SUBJECT_DEPS = {"nsubj", "nsubjpass"}
_QUOTED_KINDS = (MentionKind.DIRECT, MentionKind.PARTIAL)


def segment_text(text: str, registry: SpeakerRegistry, nlp: object) -> list[Segment]:
    """The segments of `text` in order; speakers are resolved against `registry`, which is not changed."""
    if not text.strip():
        return []
    body_text = _body_text(text)
    sentences_only = _parse_sentences_only(body_text, nlp)
    if sentences_only is not None:
        return _sentences(sentences_only, text, [])
    # The extractor registers the people it meets; they must not leak into the shared registry.
    scratch = SpeakerRegistry.from_speakers(registry.snapshot(), registry.alias_origin)
    parsed = parse_article(make_article(body_text, _INPUT_META), nlp, prose=True)
    mentions = read_attributions(parsed, scratch).mentions
    known = registry.speakers

    def named(m: QuoteMention) -> tuple[str | None, str | None, str | None]:
        if m.speaker_id in known:
            return m.speaker_mention or None, m.speaker_id, known[m.speaker_id].name
        return m.speaker_mention or None, None, None

    segments: list[Segment] = []
    starts = {q.content_start for q in parsed.quotations}
    covered: set[int] = set()  # content_start of quotations inside a segment
    for m in mentions:
        if m.kind not in _QUOTED_KINDS or not any(s.start in starts for s in m.spans):
            continue
        covered.update(s.start for s in m.spans)
        segments.append(Segment(m.text, m.start, min(m.end, len(text)), SegmentKind.QUOTE, *named(m)))
    for q in parsed.quotations:
        if q.content_start not in covered and q.content_end <= len(text):
            named_by = _subject_of_quote(parsed, q, registry)
            segments.append(Segment(q.content(text), q.content_start, q.content_end, SegmentKind.QUOTE, *named_by))
    frames = [(q.open, q.close) for q in parsed.quotations]
    for m in mentions:
        if m.kind is not MentionKind.INDIRECT or _overlaps(m.start, m.end, frames):
            continue
        segments.append(Segment(m.text, m.start, m.end, SegmentKind.SENTENCE, *named(m)))
        frames.append((m.start, m.end))
    segments += _sentences(parsed.doc, text, frames)
    segments.sort(key=lambda s: (s.start, s.end))
    return segments


def _body_text(text: str) -> str:
    """What is parsed: a last line without a sentence end would read as a heading; appending one
    keeps every offset valid."""
    return text if text.rstrip()[-1:] in '.!?…"”’»)' else text + "."


def _sentences(doc: Any, text: str, frames: list[tuple[int, int]]) -> list[Segment]:
    """Every sentence of the parse outside `frames` (quotations and reported speech, segments of their
    own) and of at least MIN_SENTENCE_WORDS words, in order."""
    out = []
    for sent in doc.sents:
        start, end = sent.start_char, min(sent.end_char, len(text))
        if _overlaps(start, end, frames):
            continue
        chunk = text[start:end]
        stripped = chunk.strip()
        if len(_words(stripped)) < MIN_SENTENCE_WORDS:
            continue
        lead = len(chunk) - len(chunk.lstrip())
        out.append(Segment(stripped, start + lead, start + lead + len(stripped), SegmentKind.SENTENCE, None, None))
    return out


# -- texts that cannot hold an attribution ---------------------------------------------------------

# What spaCy's sentence boundaries depend on: the shared token vectors, the quotation frames, the
# parser. The other components serve attribution only.
_SENTENCE_PIPES = ("tok2vec", "quote_frames", "parser")
# Phrasal cues ("shot back", "pointed out") and "as X put it" are cues only with these words.
_WITH_WORDS: dict[str, frozenset[str]] = {
    **{lemma: frozenset(particles) for lemma, particles in SPEECH_PHRASALS.items()},
    "put": frozenset({"it"}),
}
_WORD = re.compile(r"[^\W\d_]+")


class _CueForms:
    """The written forms (lower case) that spaCy's lemmatizer may read as a cue's lemma."""

    def __init__(self, always: frozenset[str], with_words: dict[str, frozenset[str]]) -> None:
        self.always = always  # forms of the cue verbs
        self.with_words = with_words  # a form of a phrasal cue → the words it needs beside it


_forms_by_pipeline: weakref.WeakKeyDictionary[Any, _CueForms | None] = weakref.WeakKeyDictionary()


def _cue_forms(nlp: Any) -> _CueForms | None:
    """Read from the pipeline's own lemmatizer tables, so that no form it would lemmatise to a cue is
    missed: a word is lower-cased, then either kept (a base form), or given a lemma its exception
    table lists, or cut by a suffix rule (old → new). So the forms of lemma L are L, the exceptions
    that list L, and L with each rule's `new` ending replaced by its `old` one. None when the
    pipeline lemmatises otherwise (then every text takes the full parse)."""
    if nlp in _forms_by_pipeline:
        return _forms_by_pipeline[nlp]
    forms: _CueForms | None = None
    try:
        lemmatizer = nlp.get_pipe("lemmatizer")
        ruler = nlp.get_pipe("attribute_ruler")
    except (AttributeError, KeyError):
        lemmatizer = ruler = None
    if getattr(lemmatizer, "mode", None) == "rule" and ruler is not None:
        lemmas = set(ALL_CUE_VERBS) | set(_WITH_WORDS)
        set_by_ruler = {str(p.get("attrs", {}).get("LEMMA", "")).lower() for p in ruler.patterns}
        if not lemmas & set_by_ruler:  # the attribute ruler sets no cue's lemma itself
            rules = lemmatizer.lookups.get_table("lemma_rules")
            exceptions = lemmatizer.lookups.get_table("lemma_exc")
            of: dict[str, set[str]] = {lemma: {lemma} for lemma in lemmas}
            for pos in rules:
                for old, new in rules[pos]:
                    for lemma in lemmas:
                        if lemma.endswith(new) and len(lemma) > len(new):
                            of[lemma].add(lemma[: len(lemma) - len(new)] + old)
            for pos in exceptions:
                for form, listed in exceptions[pos].items():
                    for lemma in set(listed) & lemmas:
                        of[lemma].add(form.lower())
            always = frozenset(f for lemma in ALL_CUE_VERBS for f in of[lemma])
            with_words: dict[str, frozenset[str]] = {}
            for lemma, words in _WITH_WORDS.items():
                for f in of[lemma] - always:
                    with_words[f] = with_words.get(f, frozenset()) | words
            forms = _CueForms(always, with_words)
    _forms_by_pipeline[nlp] = forms
    return forms


def _parse_sentences_only(body_text: str, nlp: Any) -> Any | None:
    """The parse of a text that cannot hold an attribution, with the sentence components only; None
    when it might hold one (or the pipeline is not one this can reason about)."""
    if ":" in body_text:
        return None  # "Trump: '…'"
    forms = _cue_forms(nlp)
    if forms is None:
        return None
    words = set(_WORD.findall(body_text.lower()))
    if "according" in words or words & forms.always:
        return None
    if any(words & forms.with_words[w] for w in words & forms.with_words.keys()):
        return None
    # Blocks and quotations exactly as parse_article finds them in a text sent for checking.
    blocks = [Block(b.start, b.end, b.text, True) for b in split_blocks(body_text, "")]
    if find_quotations(body_text, blocks):
        return None
    skipped = [name for name in nlp.pipe_names if name not in _SENTENCE_PIPES]
    return nlp(mask(body_text, blocks, []), disable=skipped)


def _words(text: str) -> list[str]:
    from ..canon import normalise_text

    return normalise_text(text).split()


def _overlaps(start: int, end: int, spans: list[tuple[int, int]]) -> bool:
    return any(start < e and s < end for s, e in spans)


def _subject_of_quote(
    parsed: ParsedArticle, q: Quotation, registry: SpeakerRegistry
) -> tuple[str | None, str | None, str | None]:
    """The named subject of the verb a quotation hangs under: 'Sybiga spoke of "…"'."""
    doc = parsed.doc
    span = doc.char_span(q.content_start, q.content_end, alignment_mode="expand")
    if span is None or not len(span):
        return None, None, None
    node = span[0]
    for _ in range(4):
        if node.head.i == node.i:
            break
        node = node.head
        subject = next((c for c in node.children if c.dep_ in _SUBJECT_DEPS and c.i != span[0].i), None)
        if subject is None:
            continue
        if subject.lower_ in _PRONOUNS:
            return None, None, None  # a pronoun names nobody in a text without context
        # The subject's whole phrase, appositions included ("Ukraine's foreign minister Andriy
        # Sybiga" is parsed as "minister" + apposition), up to the quotation.
        last = min(subject.right_edge.i, span[0].i - 1)
        phrase_span = doc[subject.left_edge.i : last + 1]
        phrase = parsed.text[phrase_span.start_char : phrase_span.end_char].strip(" ,")
        for ent in phrase_span.ents:
            if ent.label_ == "PERSON":
                found = registry.find_person(ent.text) or registry.find_by_surname(ent.text)
                return phrase, found.id if found else None, found.name if found else None
        found = registry.resolve_name(phrase)
        return phrase, found.id if found else None, found.name if found else None
    return None, None, None
