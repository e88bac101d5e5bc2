"""Request and response schemas (marshmallow 4). Unknown fields are refused: marshmallow's default.

Request fields are read as JSON has them: a number is never taken from a string nor truncated, and
what the contract documents (`pattern`, `minLength`, ranges) is what the validators enforce.
"""

from __future__ import annotations

import re
from typing import Any

from marshmallow import Schema, ValidationError, fields, pre_load, validate

from ..records import CueClass, MentionKind

LABELS = ("verbatim", "paraphrase", "related", "none")
VERDICTS = ("consistent", "misattributed", "disputed", "unverified")
FLAG_TYPES = ("negation", "number", "entity", "insertion", "deletion")

# Longest text accepted; the real cap is QUOTES_MAX_TEXT_CHARS, checked in the view so that it can
# be configured without regenerating the contract.
MAX_TEXT = 5_000_000

# The characters str.isspace() (and so str.strip()) treats as whitespace, spelled out: ECMA-262's \s,
# which JSON Schema `pattern` uses, and Python's differ on \x1c-\x1f, \x85 and \ufeff.
SPACE = r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NOT_BLANK = f"[^{SPACE}]"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# scheme, host name with a top-level domain, port, then path, query and fragment without spaces or controls.
HTTP_URL = (
    rf"^https?://(?:{_LABEL}\.)+[A-Za-z][A-Za-z0-9-]{{0,61}}[A-Za-z0-9](?::[0-9]{{1,5}})?"
    rf"(?:[/?#][^\x00-\x20\x7f{SPACE}]*)?$"
)


class Pattern(validate.Validator):
    """A JSON Schema `pattern`, documented as written (apispec reads `regex`) and enforced the way JSON
    Schema reads it: a search, with `$` the very end of the string (Python's `$` also matches before a
    final newline)."""

    def __init__(self, pattern: str, error: str) -> None:
        self.regex = re.compile(pattern)
        self._enforced = re.compile(pattern[:-1] + r"\Z" if pattern.endswith("$") else pattern)
        self.error: str = error

    def __call__(self, value: str) -> str:
        if self._enforced.search(value) is None:
            raise ValidationError(self.error)
        return value


_NOT_BLANK = Pattern(NOT_BLANK, "must contain more than whitespace")


class Text(fields.String):
    """A text with at least one character that is not whitespace."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(validate=[validate.Length(min=1, max=MAX_TEXT), _NOT_BLANK], **kwargs)


class JsonInteger(fields.Integer):
    """An integer as JSON writes it (3 or 3.0): "3" and 3.5 are refused, not coerced or truncated."""

    def _validated(self, value: Any) -> int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return super()._validated(value)


class JsonNumber(fields.Float):
    """A JSON number: "0.5" is refused, not coerced."""

    def _validated(self, value: Any) -> float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return super()._validated(value)


# -- requests ----------------------------------------------------------------------------------


class RequestSchema(Schema):
    """A JSON object body whose strings are valid Unicode.

    JSON can spell a lone surrogate (`"\\ud800"`), which no UTF-8 text holds: it is refused here, naming
    the field, rather than failing later wherever the text is encoded.
    """

    error_messages = {"type": "must be a JSON object"}  # noqa: RUF012 (marshmallow's own attribute)

    @pre_load
    def _valid_unicode(self, data: Any, **kwargs: Any) -> Any:
        if isinstance(data, dict):
            invalid = {}
            for name, value in data.items():
                if isinstance(value, str):
                    try:
                        value.encode("utf-8")
                    except UnicodeEncodeError as exc:
                        invalid[name] = [f"not valid Unicode: a lone surrogate at character {exc.start}"]
            if invalid:
                raise ValidationError(invalid)
        return data


class AttributionRequest(RequestSchema):
    text = Text(required=True, metadata={"description": "Any text: an article, a paragraph, one sentence."})
    speaker = fields.String(
        validate=[validate.Length(min=1, max=200), _NOT_BLANK],
        metadata={"description": "Who the client says spoke, for segments whose text names nobody."},
    )
    top_k = JsonInteger(
        load_default=3, validate=validate.Range(1, 10), metadata={"description": "Candidates per segment."}
    )
    min_similarity = JsonNumber(
        validate=validate.Range(0, 1),
        metadata={"description": "Floor for candidates (default: the calibrated 'related' threshold)."},
    )


class BatchDocument(AttributionRequest):
    id = fields.String(validate=validate.Length(min=1, max=200), metadata={"description": "Echoed back."})


class BatchRequest(RequestSchema):
    documents = fields.List(
        fields.Nested(BatchDocument),
        required=True,
        validate=validate.Length(min=1),
        metadata={"description": "At most QUOTES_MAX_BATCH_DOCUMENTS (default 32) documents."},
    )


class SimilarityRequest(RequestSchema):
    original = Text(required=True, metadata={"description": "A: the original wording."})
    rendering = Text(required=True, metadata={"description": "B: the wording to check against A."})


class ExtractionRequest(RequestSchema):
    text = Text(required=True)


class ArticleRequest(RequestSchema):
    text = Text(required=True)
    outlet = fields.String(required=True, validate=[validate.Length(min=1, max=200), _NOT_BLANK])
    url = fields.String(
        required=True,
        validate=[
            validate.Length(max=2000),
            Pattern(HTTP_URL, "must be an absolute http(s) URL with a host name, such as https://example.org/story"),
        ],
        metadata={"description": "The article's absolute http(s) URL; an internationalised host name in punycode."},
    )
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
    kind = fields.String(validate=validate.OneOf([k.value for k in MentionKind]))
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
    kind = fields.String(
        validate=validate.OneOf([k.value for k in MentionKind]),
        metadata={"description": "direct or partial quote, indirect (reported) speech, or what a speech was about"},
    )
    text = fields.String(metadata={"description": "the wording: for a partial quote, the quoted words"})
    spans = fields.List(fields.Nested(SpanSchema))
    content = fields.List(
        fields.Nested(SpanSchema),
        metadata={"description": "what the outlet attributes: the whole clause around a partial quote"},
    )
    cue = fields.String()
    cue_class = fields.String(
        validate=validate.OneOf([c.value for c in CueClass]),
        metadata={"description": "speech, or a belief, intention, perception or evidence (never a quote)"},
    )
    speaker_mention = fields.String()
    speaker_span = fields.Nested(SpanSchema, allow_none=True)
    speaker = fields.Nested(SpeakerRef, allow_none=True)
    confidence = fields.Float()
    headline = fields.Boolean()
    quotable = fields.Boolean(
        metadata={"description": "what the quote store keeps: speech from the body by a resolved speaker"}
    )


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


class EmbeddingInfo(Schema):
    """The embedding backend; for onnx-int8, what its export chose and measured on this machine."""

    backend = fields.String(metadata={"enum": ["torch", "onnx-int8"]})
    quantization = fields.String(metadata={"description": "The int8 preset: avx2, avx512, avx512_vnni or arm64."})
    kept_fp32 = fields.Integer(metadata={"description": "How many MatMuls the int8 export keeps in fp32."})
    min_cosine = fields.Float(metadata={"description": "The lowest cosine to torch fp32 over the corpus statements."})
    min_cosine_required = fields.Float(metadata={"description": "What the export had to reach to be kept."})
    statements = fields.Integer(metadata={"description": "How many corpus statements the agreement was measured on."})
    measured_on = fields.String(metadata={"description": "The CPU the agreement was measured on."})


class InfoResponse(Schema):
    model = fields.Nested(ModelInfo)
    embedding = fields.Nested(EmbeddingInfo)
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
