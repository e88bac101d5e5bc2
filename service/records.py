"""Typed records passed between the pipeline stages: corpus → extract → store → match → api."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum


class MentionKind(StrEnum):
    DIRECT = "direct"  # a quoted sentence or clause, set off from its cue
    PARTIAL = "partial"  # a quoted fragment inside the journalist's own sentence
    INDIRECT = "indirect"  # reported speech, no quotation marks
    TOPIC = "topic"  # what the speech was about, not what it said ("attacked Clinton", "talked about taxes")


class CueClass(StrEnum):
    """What the cue says the source did. Only speech makes a quote; the rest are attributions a
    reader should not take for something said ("polls show", "X believes", "X wants")."""

    SPEECH = "speech"  # say, tell, write, tweet, "according to", a headline colon
    BELIEF = "belief"  # believe, think, feel, doubt
    INTENTION = "intention"  # want, plan, hope, intend
    PERCEPTION = "perception"  # see, hear, notice, learn
    EVIDENCE = "evidence"  # polls show, records indicate, data suggest


class SegmentKind(StrEnum):
    QUOTE = "quote"  # a quotation, with the speaker the text names for it
    SENTENCE = "sentence"  # reported speech, or any other sentence


class Label(StrEnum):
    """How close a segment's wording is to the quote it matched (the flags say whether the meaning is)."""

    VERBATIM = "verbatim"  # the same words, or a run of at least three words of one wording
    PARAPHRASE = "paraphrase"
    RELATED = "related"
    NONE = "none"  # nothing close enough: no match

    @property
    def faithful(self) -> bool:
        """A wording close enough to stand for the quote (its flags decide whether it does)."""
        return self in (Label.VERBATIM, Label.PARAPHRASE)


class Verdict(StrEnum):
    """The speaker a text names for a quote, against the quote's attributions."""

    CONSISTENT = "consistent"  # the speaker most sources name
    MISATTRIBUTED = "misattributed"  # someone no source gives it to
    DISPUTED = "disputed"  # the sources disagree, and the text names one of them or nobody
    UNVERIFIED = "unverified"  # nobody named, and the sources agree


class FlagType(StrEnum):
    NEGATION = "negation"
    NUMBER = "number"
    ENTITY = "entity"  # a named entity or nationality swapped for another
    INSERTION = "insertion"  # content words added to a rendering that follows the wording
    DELETION = "deletion"  # content words left out of one


class SpeakerKind(StrEnum):
    PERSON = "person"
    ORGANISATION = "organisation"
    MEDIA = "media"  # outlets and agencies: they report statements, they never make them here


@dataclass(frozen=True, slots=True)
class Article:
    id: str  # stable: derived from the URL
    outlet: str
    url: str
    published: dt.date | None
    language: str
    title: str
    text: str
    file: str | None = None
    wire: str | None = None
    content_hash: str = ""


@dataclass(frozen=True, slots=True)
class Span:
    """Half-open character range [start, end) into the article text."""

    start: int
    end: int
    text: str


@dataclass(slots=True)
class Speaker:
    id: str
    name: str
    kind: SpeakerKind
    role: str | None = None
    aliases: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class QuoteMention:
    """One attributed statement inside one article.

    `spans` are its wording as the store keeps and matches it: for a partial quote, the quoted words
    only (what the source verifiably said). `content` is what the outlet attributes to the source:
    the same spans, except around a partial quote, where it is the whole clause ("said the election
    was \"rigged\" against him"). Empty `content` means the same as `spans`.
    """

    article_id: str
    kind: MentionKind
    spans: tuple[Span, ...]
    cue: str
    speaker_mention: str  # as written: "he", "Peskov", "Syria's leadership"
    speaker_id: str | None  # resolved canonical speaker; None when the text does not say who
    confidence: float
    cue_class: CueClass = CueClass.SPEECH
    content: tuple[Span, ...] = ()
    speaker_span: Span | None = None  # where the source is named ("he" in "he said"), if it is
    headline: bool = False  # in the article's title: the desk's summary, not a reported statement

    @property
    def content_spans(self) -> tuple[Span, ...]:
        return self.content or self.spans

    @property
    def is_speech(self) -> bool:
        return self.cue_class is CueClass.SPEECH

    @property
    def quotable(self) -> bool:
        """What the quote store keeps: speech from the article's body by a resolved speaker."""
        return (
            self.is_speech and self.speaker_id is not None and not self.headline and self.kind is not MentionKind.TOPIC
        )

    @property
    def text(self) -> str:
        return " … ".join(s.text for s in self.spans) if len(self.spans) > 1 else self.spans[0].text

    @property
    def start(self) -> int:
        return self.spans[0].start

    @property
    def end(self) -> int:
        return self.spans[-1].end


@dataclass(frozen=True, slots=True)
class Extraction:
    """What one article yields: its mentions and the speakers (with aliases) it taught us."""

    article: Article
    mentions: tuple[QuoteMention, ...]
    speakers: tuple[Speaker, ...]


@dataclass(frozen=True, slots=True)
class Segment:
    """A piece of a text to check: a quotation, reported speech, or another sentence."""

    text: str
    start: int
    end: int
    kind: SegmentKind
    speaker_mention: str | None  # the speaker the input names for this segment, as written
    speaker_id: str | None  # that speaker, when the store's registry knows them
    speaker_name: str | None = None  # and their canonical name


@dataclass(frozen=True, slots=True)
class Flag:
    """One change of meaning from a wording to a rendering of it, with the words it removes and adds."""

    type: FlagType
    detail: str
    removed: tuple[str, ...]
    added: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Source:
    """A variant as a reader sees it: who published this wording, where and when."""

    article_id: str
    outlet: str
    url: str
    published: dt.date | None
    title: str


@dataclass(frozen=True, slots=True)
class Variant:
    id: int
    quote_id: str
    text: str
    kind: MentionKind
    spans: tuple[Span, ...]
    cue: str
    speaker_mention: str
    speaker_id: str | None
    confidence: float
    source: Source
    # As the mention had them (records before the store kept them read as speech, no clause, no span).
    cue_class: CueClass = CueClass.SPEECH
    content: tuple[Span, ...] = ()  # the clause the outlet attributes, when it is more than `spans`
    speaker_span: Span | None = None


@dataclass(frozen=True, slots=True)
class Attribution:
    """How many sources (articles) ascribe a canonical quote to one speaker."""

    speaker_id: str
    speaker_name: str
    sources: int
    mentions: int


@dataclass(frozen=True, slots=True)
class CanonicalQuote:
    id: str
    text: str
    speaker_id: str | None  # the majority attribution (earliest source breaks ties)
    speaker_name: str | None
    disputed: bool
    attributions: tuple[Attribution, ...]
    variants: tuple[Variant, ...] = ()

    @property
    def sources(self) -> tuple[Source, ...]:
        seen: dict[str, Source] = {}
        for v in self.variants:
            seen.setdefault(v.source.article_id, v.source)
        return tuple(seen.values())

    @property
    def wordings(self) -> tuple[Variant, ...]:
        """One wording per source (its fullest), sources earliest first (variants come that way)."""
        best: dict[str, Variant] = {}
        for v in self.variants:
            cur = best.get(v.source.article_id)
            if cur is None or len(v.text) > len(cur.text):
                best[v.source.article_id] = v
        return tuple(best.values())

    @property
    def speaker_names(self) -> dict[str, str]:
        """The name of every speaker a variant gives the quote to."""
        return {a.speaker_id: a.speaker_name for a in self.attributions}
