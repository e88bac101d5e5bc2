"""How the domain records are written as JSON: one shape for every answer, the API's and the CLI's.

The schemas dump the records themselves (Match, CanonicalQuote, Variant, QuoteMention, Speaker,
Flag, …) and the few answer records below that put them together; flask-smorest dumps what the
views return through them (and generates openapi.yaml from them), and `python -m service … --json`
prints the same. No answer is written by hand anywhere else.

A record that keeps only a speaker's id (a variant, a mention) is named by what it is part of: a
quote names its variants' speakers from its attributions, and an answer with mentions carries the
names of the registry that resolved them (`speaker_names`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from marshmallow import Schema, fields, validate
from marshmallow.experimental.context import Context
from marshmallow.utils import missing

from .records import (
    CanonicalQuote,
    CueClass,
    FlagType,
    Label,
    MentionKind,
    QuoteMention,
    SegmentKind,
    Speaker,
    SpeakerKind,
    Verdict,
)

if TYPE_CHECKING:
    from .match import Comparison, Match
    from .store import AddReport


class ModelIdentity(Protocol):
    """What made the vectors (the Embedder is one)."""

    @property
    def name(self) -> str: ...
    @property
    def revision(self) -> str: ...


# -- answer records: what the views and the CLI hand to the schemas -----------------------------------


@dataclass(frozen=True, slots=True)
class Attributions:
    """The matches of one text (one document of a batch, with its `id`)."""

    results: Sequence[Match]
    model: ModelIdentity
    store_version: int
    id: str | None = None


@dataclass(frozen=True, slots=True)
class BatchAttributions:
    documents: Sequence[Attributions]
    model: ModelIdentity
    store_version: int


@dataclass(frozen=True, slots=True)
class Compared:
    comparison: Comparison
    model: ModelIdentity


@dataclass(frozen=True, slots=True)
class Extracted:
    mentions: Sequence[QuoteMention]
    speaker_names: Mapping[str, str]  # of the registry that resolved them


@dataclass(frozen=True, slots=True)
class AddedArticle:
    report: AddReport
    speaker_names: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class QuotePage:
    total: int
    limit: int
    offset: int
    quotes: Sequence[CanonicalQuote]


@dataclass(frozen=True, slots=True)
class SpeakerQuotes:
    """A speaker with the canonical quotes any source ascribes to them."""

    speaker: Speaker
    quotes: int
    quote_ids: Sequence[str] = field(default=())


@dataclass(frozen=True, slots=True)
class Speakers:
    speakers: Sequence[SpeakerQuotes]


class SpeakerName(NamedTuple):
    id: str | None
    name: str | None


# -- fields for what a record derives or names -----------------------------------------------------

_SpeakerNames = Context[Mapping[str, str]]


def _named(speaker_id: str | None) -> SpeakerName:
    return SpeakerName(speaker_id, _SpeakerNames.get({}).get(speaker_id or ""))


class Derived:
    """A field whose value is `get(obj)`: what the record derives rather than stores."""

    def __init__(self, *args: Any, get: Callable[[Any], Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._get = get

    def get_value(self, obj: Any, attr: str, accessor: Any = None, default: Any = missing) -> Any:
        return self._get(obj)


class NestedFrom(Derived, fields.Nested):
    pass


class IntegerFrom(Derived, fields.Integer):
    pass


class StringsFrom(Derived, fields.List):
    pass


class DictFrom(Derived, fields.Dict):
    pass


class _NamedBy(fields.Nested):
    """Records that keep only speaker ids, named by `names(parent)` ({id: name}) as they are written."""

    def __init__(self, nested: type[Schema], names: Callable[[Any], Mapping[str, str]], **kwargs: Any) -> None:
        super().__init__(nested, **kwargs)
        self._names = names

    def _serialize(self, nested_obj: Any, attr: Any, obj: Any, **kwargs: Any) -> Any:  # type: ignore[override]  # as Nested names it
        with _SpeakerNames(self._names(obj)):
            return super()._serialize(nested_obj, attr, obj, **kwargs)


class Score(fields.Float):
    """A similarity, to four decimals."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return None if value is None else round(float(value), 4)


def _speaker(description: str | None = None, **kwargs: Any) -> fields.Nested:
    """{id, name} of a record with `speaker_id` and `speaker_name`."""
    meta = {"description": description} if description else {}
    return NestedFrom(SpeakerRef, get=lambda o: SpeakerName(o.speaker_id, o.speaker_name), metadata=meta, **kwargs)


def _speaker_named(description: str | None = None, **kwargs: Any) -> fields.Nested:
    """{id, name} of a record with only `speaker_id`, named by what it is part of."""
    meta = {"description": description} if description else {}
    return NestedFrom(SpeakerRef, get=lambda o: _named(o.speaker_id), metadata=meta, **kwargs)


def _enum(enum: Any, **kwargs: Any) -> fields.Enum:
    return fields.Enum(enum, by_value=fields.String, **kwargs)


# -- the shapes ------------------------------------------------------------------------------------


class SpeakerRef(Schema):
    id = fields.String(allow_none=True)
    name = fields.String(allow_none=True)


class NamedSpeaker(Schema):
    """The speaker a segment of the input names (a Segment)."""

    mention = fields.String(
        attribute="speaker_mention", metadata={"description": "The speaker as the input names them."}
    )
    id = fields.String(
        attribute="speaker_id", allow_none=True, metadata={"description": "Null when the registry does not know them."}
    )
    name = fields.String(attribute="speaker_name", allow_none=True)


class FlagSchema(Schema):
    type = _enum(FlagType)
    detail = fields.String()
    removed = fields.List(fields.String(), metadata={"description": "Words of the original that are gone."})
    added = fields.List(fields.String(), metadata={"description": "Words the input adds."})


class SourceSchema(Schema):
    """A variant as its source printed it."""

    outlet = fields.String(attribute="source.outlet")
    url = fields.String(attribute="source.url")
    published = fields.Date(attribute="source.published", allow_none=True)
    title = fields.String(attribute="source.title")
    wording = fields.String(attribute="text", metadata={"description": "The variant's wording in that source."})
    kind = _enum(MentionKind)
    speaker = _speaker_named("Who this source says spoke.")


class AttributionCount(Schema):
    speaker = _speaker()
    sources = fields.Integer()
    mentions = fields.Integer()


class CandidateSchema(Schema):
    quote_id = fields.String()
    text = fields.String()
    speaker = _speaker()
    similarity = Score()


class MatchSchema(Schema):
    """A Match with its quote: the canonical quote, how close the segment is, and who said it."""

    quote_id = fields.String(attribute="quote.id")
    text = fields.String(attribute="quote.text", metadata={"description": "The canonical wording."})
    speaker = NestedFrom(
        SpeakerRef,
        get=lambda m: SpeakerName(m.quote.speaker_id, m.quote.speaker_name),
        metadata={"description": "The speaker most sources name."},
    )
    similarity = Score(metadata={"description": "Cosine similarity 0-1 to the closest variant."})
    label = _enum(Label)
    clean = fields.Boolean(metadata={"description": "Verbatim or paraphrase with no flags: a faithful rendering."})
    flags = fields.List(fields.Nested(FlagSchema))
    attribution = _enum(Verdict)
    disputed = fields.Boolean(attribute="quote.disputed")
    attributions = fields.List(fields.Nested(AttributionCount), attribute="quote.attributions")
    compared_with = fields.String(metadata={"description": "The variant wording the flags refer to."})
    sources = fields.List(
        _NamedBy(SourceSchema, names=lambda m: m.quote.speaker_names),
        attribute="quote.wordings",
        metadata={"description": "One wording per source, earliest first."},
    )


class ResultSchema(Schema):
    """One segment of the input and what it matched."""

    text = fields.String(attribute="segment.text")
    start = fields.Integer(
        attribute="segment.start", metadata={"description": "Character offset in the input (inclusive)."}
    )
    end = fields.Integer(
        attribute="segment.end", metadata={"description": "Character offset in the input (exclusive)."}
    )
    kind = _enum(SegmentKind, attribute="segment.kind")
    speaker = NestedFrom(NamedSpeaker, get=lambda m: m.segment if m.segment.speaker_mention else None, allow_none=True)
    match = NestedFrom(MatchSchema, get=lambda m: m if m.quote is not None else None, allow_none=True)
    alternatives = fields.List(fields.Nested(CandidateSchema))


class ModelInfo(Schema):
    name = fields.String()
    revision = fields.String()


class AttributionResponse(Schema):
    results = fields.List(fields.Nested(ResultSchema))
    model = fields.Nested(ModelInfo)
    store_version = fields.Integer()


class BatchItem(AttributionResponse):
    id = fields.String(allow_none=True)


class BatchResponse(Schema):
    documents = fields.List(fields.Nested(BatchItem))
    model = fields.Nested(ModelInfo)
    store_version = fields.Integer()


class SimilarityResponse(Schema):
    similarity = Score(attribute="comparison.similarity")
    label = _enum(Label, attribute="comparison.label")
    clean = fields.Boolean(attribute="comparison.clean")
    flags = fields.List(fields.Nested(FlagSchema), attribute="comparison.flags")
    model = fields.Nested(ModelInfo)


class SpanSchema(Schema):
    start = fields.Integer()
    end = fields.Integer()
    text = fields.String()


class MentionSchema(Schema):
    kind = _enum(
        MentionKind,
        metadata={"description": "direct or partial quote, indirect (reported) speech, or what a speech was about"},
    )
    text = fields.String(metadata={"description": "the wording: for a partial quote, the quoted words"})
    spans = fields.List(fields.Nested(SpanSchema))
    content = fields.List(
        fields.Nested(SpanSchema),
        attribute="content_spans",
        metadata={"description": "what the outlet attributes: the whole clause around a partial quote"},
    )
    cue = fields.String()
    cue_class = _enum(
        CueClass, metadata={"description": "speech, or a belief, intention, perception or evidence (never a quote)"}
    )
    speaker_mention = fields.String()
    speaker_span = fields.Nested(SpanSchema, allow_none=True)
    speaker = _speaker_named(allow_none=True)
    confidence = fields.Float()
    headline = fields.Boolean()
    quotable = fields.Boolean(
        metadata={"description": "what the quote store keeps: speech from the body by a resolved speaker"}
    )


def _mentions(**kwargs: Any) -> fields.List:
    return fields.List(_NamedBy(MentionSchema, names=lambda answer: answer.speaker_names), **kwargs)


class ExtractionResponse(Schema):
    mentions = _mentions()


class VariantSchema(SourceSchema):
    spans = fields.List(fields.Nested(SpanSchema))
    cue = fields.String()
    speaker_mention = fields.String()
    confidence = fields.Float()


class QuoteSchema(Schema):
    id = fields.String()
    text = fields.String()
    speaker = _speaker()
    disputed = fields.Boolean()
    attributions = fields.List(fields.Nested(AttributionCount))
    sources = IntegerFrom(get=lambda q: len(q.sources), metadata={"description": "Number of articles that report it."})


class QuoteDetail(QuoteSchema):
    variants = fields.List(
        _NamedBy(VariantSchema, names=lambda q: q.speaker_names), metadata={"description": "Earliest source first."}
    )


class QuotePageSchema(Schema):
    total = fields.Integer()
    limit = fields.Integer()
    offset = fields.Integer()
    quotes = fields.List(fields.Nested(QuoteSchema))


class SpeakerSchema(Schema):
    id = fields.String(attribute="speaker.id")
    name = fields.String(attribute="speaker.name")
    kind = _enum(SpeakerKind, attribute="speaker.kind")
    role = fields.String(attribute="speaker.role", allow_none=True)
    aliases = StringsFrom(fields.String(), get=lambda s: sorted(s.speaker.aliases))
    quotes = fields.Integer()


class SpeakerList(Schema):
    speakers = fields.List(fields.Nested(SpeakerSchema))


class SpeakerDetail(SpeakerSchema):
    quote_ids = fields.List(fields.String())


class ArticleResponse(Schema):
    article_id = fields.String(attribute="report.article_id")
    url = fields.String(attribute="report.url")
    status = fields.String(attribute="report.status", validate=validate.OneOf(["added", "updated", "unchanged"]))
    mentions = _mentions(attribute="report.statements")
    new_quotes = fields.List(fields.String(), attribute="report.new_quotes")
    joined_quotes = fields.List(fields.String(), attribute="report.joined_quotes")
    new_speakers = fields.List(fields.String(), attribute="report.new_speakers")
    store_version = fields.Integer(attribute="report.store_version")
