"""A text to check, cut into the segments the matcher compares with the store.

Quotations first, each with the speaker the text names for it; then reported speech with its
speaker; then every other sentence. One parse serves it all: the attributions are read from the
same parse that gives the sentences and the loose quotations (the matcher never parses).
"""

from __future__ import annotations

from ..corpus import ArticleMeta, make_article
from ..records import MentionKind, QuoteMention, Segment, SegmentKind
from ..speakers import SpeakerRegistry
from .attribution import read_attributions
from .parse import ParsedArticle, parse_article
from .quotes import Quotation

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
    # A last line without a sentence end would read as a heading; appending keeps offsets valid.
    body_text = text if text.rstrip()[-1:] in '.!?…"”’»)' else text + "."
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
    for sent in parsed.doc.sents:
        start, end = sent.start_char, min(sent.end_char, len(text))
        if _overlaps(start, end, frames):
            continue  # the frame of a quotation or of reported speech
        chunk = text[start:end]
        stripped = chunk.strip()
        if len(_words(stripped)) < MIN_SENTENCE_WORDS:
            continue
        lead = len(chunk) - len(chunk.lstrip())
        segments.append(Segment(stripped, start + lead, start + lead + len(stripped), SegmentKind.SENTENCE, None, None))
    segments.sort(key=lambda s: (s.start, s.end))
    return segments


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
        if node.head is node:
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
