"""Request and response schemas (marshmallow 4). Unknown fields are refused: marshmallow's default."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

LABELS = ("verbatim", "paraphrase", "related", "none")
VERDICTS = ("consistent", "misattributed", "disputed", "unverified")
FLAG_TYPES = ("negation", "number", "entity", "insertion", "deletion")

# Longest text accepted; the real cap is QUOTES_MAX_TEXT_CHARS, checked in the view so that it can
# be configured without regenerating the contract.
MAX_TEXT = 5_000_000


class Text(fields.String):
    """A non-empty text."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(validate=validate.Length(min=1, max=MAX_TEXT), **kwargs)  # type: ignore[arg-type]


# -- requests ----------------------------------------------------------------------------------


class AttributionRequest(Schema):
    text = Text(required=True, metadata={"description": "Any text: an article, a paragraph, one sentence."})
    speaker = fields.String(
        validate=validate.Length(min=1, max=200),
        metadata={"description": "Who the client says spoke, for segments whose text names nobody."},
    )
    top_k = fields.Integer(
        load_default=3, validate=validate.Range(1, 10), metadata={"description": "Candidates per segment."}
    )
    min_similarity = fields.Float(
        validate=validate.Range(0, 1),
        metadata={"description": "Floor for candidates (default: the calibrated 'related' threshold)."},
    )


class BatchDocument(AttributionRequest):
    id = fields.String(validate=validate.Length(min=1, max=200), metadata={"description": "Echoed back."})


class BatchRequest(Schema):
    documents = fields.List(
        fields.Nested(BatchDocument),
        required=True,
        validate=validate.Length(min=1),
        metadata={"description": "At most QUOTES_MAX_BATCH_DOCUMENTS (default 32) documents."},
    )


class SimilarityRequest(Schema):
    original = Text(required=True, metadata={"description": "A: the original wording."})
    rendering = Text(required=True, metadata={"description": "B: the wording to check against A."})


class ExtractionRequest(Schema):
    text = Text(required=True)


class ArticleRequest(Schema):
    text = Text(required=True)
    outlet = fields.String(required=True, validate=validate.Length(min=1, max=200))
    url = fields.Url(required=True, schemes={"http", "https"})
    published = fields.Date(allow_none=True, metadata={"description": "ISO date; null when unknown."})
    title = fields.String(load_default="", validate=validate.Length(max=500))
    language = fields.String(load_default="en", validate=validate.OneOf(["en"]))


class QueryArgs(Schema):
    speaker = fields.String(metadata={"description": "Speaker id."})
    q = fields.String(validate=validate.Length(min=1, max=500), metadata={"description": "Words the quote contains."})
    disputed = fields.Boolean(metadata={"description": "Only quotes whose sources disagree on the speaker."})
    limit = fields.Integer(load_default=20, validate=validate.Range(1, 100))
    offset = fields.Integer(load_default=0, validate=validate.Range(0, 1_000_000))


# -- responses ---------------------------------------------------------------------------------


class SpeakerRef(Schema):
    id = fields.String(allow_none=True)
    name = fields.String(allow_none=True)


class NamedSpeaker(Schema):
    mention = fields.String(metadata={"description": "The speaker as the input names them."})
    id = fields.String(allow_none=True, metadata={"description": "Null when the registry does not know them."})
    name = fields.String(allow_none=True)


class FlagSchema(Schema):
    type = fields.String(validate=validate.OneOf(FLAG_TYPES))
    detail = fields.String()
    removed = fields.List(fields.String(), metadata={"description": "Words of the original that are gone."})
    added = fields.List(fields.String(), metadata={"description": "Words the input adds."})


class SourceSchema(Schema):
    outlet = fields.String()
    url = fields.String()
    published = fields.Date(allow_none=True)
    title = fields.String()
    wording = fields.String(metadata={"description": "The variant's wording in that source."})
    kind = fields.String(validate=validate.OneOf(["direct", "partial", "indirect"]))
    speaker = fields.Nested(SpeakerRef, metadata={"description": "Who this source says spoke."})


class AttributionCount(Schema):
    speaker = fields.Nested(SpeakerRef)
    sources = fields.Integer()
    mentions = fields.Integer()


class CandidateSchema(Schema):
    quote_id = fields.String()
    text = fields.String()
    speaker = fields.Nested(SpeakerRef)
    similarity = fields.Float()


class MatchSchema(Schema):
    quote_id = fields.String()
    text = fields.String(metadata={"description": "The canonical wording."})
    speaker = fields.Nested(SpeakerRef, metadata={"description": "The speaker most sources name."})
    similarity = fields.Float(metadata={"description": "Cosine similarity 0-1 to the closest variant."})
    label = fields.String(validate=validate.OneOf(LABELS))
    clean = fields.Boolean(metadata={"description": "Verbatim or paraphrase with no flags: a faithful rendering."})
    flags = fields.List(fields.Nested(FlagSchema))
    attribution = fields.String(validate=validate.OneOf(VERDICTS))
    disputed = fields.Boolean()
    attributions = fields.List(fields.Nested(AttributionCount))
    compared_with = fields.String(metadata={"description": "The variant wording the flags refer to."})
    sources = fields.List(fields.Nested(SourceSchema), metadata={"description": "Earliest first."})


class ResultSchema(Schema):
    text = fields.String()
    start = fields.Integer(metadata={"description": "Character offset in the input (inclusive)."})
    end = fields.Integer(metadata={"description": "Character offset in the input (exclusive)."})
    kind = fields.String(validate=validate.OneOf(["quote", "sentence"]))
    speaker = fields.Nested(NamedSpeaker, allow_none=True)
    match = fields.Nested(MatchSchema, allow_none=True)
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
    similarity = fields.Float()
    label = fields.String(validate=validate.OneOf(LABELS))
    clean = fields.Boolean()
    flags = fields.List(fields.Nested(FlagSchema))
    model = fields.Nested(ModelInfo)


class SpanSchema(Schema):
    start = fields.Integer()
    end = fields.Integer()
    text = fields.String()


class MentionSchema(Schema):
    kind = fields.String(validate=validate.OneOf(["direct", "partial", "indirect"]))
    text = fields.String()
    spans = fields.List(fields.Nested(SpanSchema))
    cue = fields.String()
    speaker_mention = fields.String()
    speaker = fields.Nested(SpeakerRef)
    confidence = fields.Float()


class ExtractionResponse(Schema):
    mentions = fields.List(fields.Nested(MentionSchema))


class VariantSchema(SourceSchema):
    spans = fields.List(fields.Nested(SpanSchema))
    cue = fields.String()
    speaker_mention = fields.String()
    confidence = fields.Float()


class QuoteSchema(Schema):
    id = fields.String()
    text = fields.String()
    speaker = fields.Nested(SpeakerRef)
    disputed = fields.Boolean()
    attributions = fields.List(fields.Nested(AttributionCount))
    sources = fields.Integer(metadata={"description": "Number of articles that report it."})


class QuoteDetail(QuoteSchema):
    variants = fields.List(fields.Nested(VariantSchema), metadata={"description": "Earliest source first."})


class QuotePage(Schema):
    total = fields.Integer()
    limit = fields.Integer()
    offset = fields.Integer()
    quotes = fields.List(fields.Nested(QuoteSchema))


class SpeakerSchema(Schema):
    id = fields.String()
    name = fields.String()
    kind = fields.String(validate=validate.OneOf(["person", "organisation", "media"]))
    role = fields.String(allow_none=True)
    aliases = fields.List(fields.String())
    quotes = fields.Integer()


class SpeakerList(Schema):
    speakers = fields.List(fields.Nested(SpeakerSchema))


class SpeakerDetail(SpeakerSchema):
    quote_ids = fields.List(fields.String())


class ArticleResponse(Schema):
    article_id = fields.String()
    url = fields.String()
    status = fields.String(validate=validate.OneOf(["added", "updated", "unchanged"]))
    mentions = fields.List(fields.Nested(MentionSchema))
    new_quotes = fields.List(fields.String())
    joined_quotes = fields.List(fields.String())
    new_speakers = fields.List(fields.String())
    store_version = fields.Integer()


class Health(Schema):
    status = fields.String()


class InfoResponse(Schema):
    model = fields.Nested(ModelInfo)
    store = fields.Dict(keys=fields.String())
    thresholds = fields.Dict(keys=fields.String())
    limits = fields.Dict(keys=fields.String(), values=fields.Integer())


class ProblemSchema(Schema):
    """RFC 9457 problem details."""

    type = fields.String()
    title = fields.String()
    status = fields.Integer()
    detail = fields.String()
    instance = fields.String()
    invalid_params = fields.List(
        fields.Dict(keys=fields.String(), values=fields.String()),
        metadata={"description": "The offending fields: name (JSON pointer-ish path) and reason."},
    )
