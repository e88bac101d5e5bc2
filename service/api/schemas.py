"""Request schemas, and the answers only the API gives (marshmallow 4). Unknown fields are refused:
marshmallow's default. The shapes of the domain's answers, which the CLI prints too, are
service/schemas.py's.

Request fields are read as JSON has them: a number is never taken from a string nor truncated, and
what the contract documents (`pattern`, `minLength`, ranges) is what the validators enforce.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from marshmallow import Schema, ValidationError, fields, pre_load, validate
from marshmallow.utils import missing

from ..schemas import DictFrom, IntegerFrom, ModelInfo, NestedFrom
from ..thresholds import Thresholds

if TYPE_CHECKING:
    from ..config import Settings
    from ..embed import Embedder

MAX_TOP_K = 10

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
        load_default=3, validate=validate.Range(1, MAX_TOP_K), metadata={"description": "Candidates per segment."}
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


# -- answers only the API gives (the others are service/schemas.py's) ------------------------------


@dataclass(frozen=True, slots=True)
class Status:
    status: str


@dataclass(frozen=True, slots=True)
class Info:
    """What /v1/info tells: the model and its backend, the store, the thresholds, the limits."""

    embedder: Embedder
    store: Mapping[str, Any]
    thresholds: Thresholds
    settings: Settings


class Health(Schema):
    status = fields.String()


class EmbeddingInfo(Schema):
    """The embedding backend; for onnx-int8, what its export chose and measured on this machine."""

    backend = fields.String(metadata={"enum": ["torch", "onnx-int8"]})
    quantization = fields.String(
        attribute="export.quantization",
        metadata={"description": "The int8 preset: avx2, avx512, avx512_vnni or arm64."},
    )
    kept_fp32 = IntegerFrom(
        get=lambda e: len(e.export.kept_fp32) if e.export else missing,
        metadata={"description": "How many MatMuls the int8 export keeps in fp32."},
    )
    min_cosine = fields.Float(
        attribute="export.min_cosine",
        metadata={"description": "The lowest cosine to torch fp32 over the corpus statements."},
    )
    min_cosine_required = fields.Float(
        attribute="export.min_cosine_required", metadata={"description": "What the export had to reach to be kept."}
    )
    statements = fields.Integer(
        attribute="export.statements",
        metadata={"description": "How many corpus statements the agreement was measured on."},
    )
    measured_on = fields.String(
        attribute="export.measured_on", metadata={"description": "The CPU the agreement was measured on."}
    )


class ThresholdsSchema(Schema):
    paraphrase = fields.Float(metadata={"description": "Similarity from which a segment is a paraphrase."})
    related = fields.Float(metadata={"description": "Similarity from which a segment is related (a match)."})
    min_words_paraphrase = fields.Integer(metadata={"description": "Shorter segments are at most related."})


class LimitsSchema(Schema):
    max_text_chars = fields.Integer()
    max_body_bytes = fields.Integer()
    max_batch_documents = fields.Integer()
    max_top_k = IntegerFrom(get=lambda settings: MAX_TOP_K)


class InfoResponse(Schema):
    model = fields.Nested(ModelInfo, attribute="embedder")
    embedding = NestedFrom(EmbeddingInfo, get=lambda info: info.embedder)
    store = DictFrom(keys=fields.String(), get=lambda info: {k: v for k, v in info.store.items() if k != "location"})
    thresholds = fields.Nested(ThresholdsSchema)
    limits = fields.Nested(LimitsSchema, attribute="settings")


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
