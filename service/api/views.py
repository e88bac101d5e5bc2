"""HTTP endpoints: validate, call the pipeline, serialise. Nothing here decides anything."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_smorest import Blueprint, abort

from ..corpus import ArticleMeta, CorpusError, make_article, validate_text
from ..extract import extract_article
from ..ingest import add_article
from ..records import CanonicalQuote
from ..schemas import (
    AddedArticle,
    ArticleResponse,
    AttributionResponse,
    Attributions,
    BatchAttributions,
    BatchResponse,
    Compared,
    Extracted,
    ExtractionResponse,
    QuoteDetail,
    QuotePage,
    QuotePageSchema,
    SimilarityResponse,
    SpeakerDetail,
    SpeakerList,
    SpeakerQuotes,
    Speakers,
)
from ..speakers import SpeakerRegistry
from . import schemas as s
from .runtime import Components, Runtime
from .telemetry import note_matches

api_v1 = Blueprint("v1", __name__, url_prefix="/v1", description="Quote attribution")
ops = Blueprint("ops", __name__, description="Liveness and readiness")


def errors(*codes: int) -> Any:
    """Document the problem+json responses an endpoint can give (503 while loading, always)."""
    described = {
        400: "Invalid JSON, or an API key in the query string",
        401: "Missing or wrong API key (writes; every endpoint with QUOTES_READ_REQUIRES_KEY=true)",
        403: "Writes disabled: no API key configured",
        404: "Not found",
        413: "Body over QUOTES_MAX_BODY_BYTES",
        415: "Body is not application/json",
        429: "Rate limit exceeded; Retry-After says when to try again",
        503: "Model or store not loaded yet",
    }

    def decorate(fn: Any) -> Any:
        for code in sorted({*codes, 400, 401, 429, 503}):
            fn = api_v1.alt_response(
                code, schema=s.ProblemSchema, description=described[code], content_type="application/problem+json"
            )(fn)
        return fn

    return decorate


_BODY_ERRORS = (400, 413, 415)
_PESKOV = (
    "Kremlin spokesman Dmitry Peskov stressed that Moscow will keep up a constant dialogue with the new Syrian "
    "authorities."
)


def runtime() -> Runtime:
    rt: Runtime = current_app.extensions["quotes_runtime"]
    return rt


def components() -> Components:
    return runtime().get()


def _check_length(text: str, field: str) -> None:
    cap = runtime().settings.max_text_chars
    if len(text) > cap:
        abort(422, errors={"json": {field: [f"longer than the {cap:,} characters allowed"]}})
    if not text.strip():
        abort(422, errors={"json": {field: ["must contain more than whitespace"]}})


def _attribute(doc: dict[str, Any], c: Components) -> Attributions:
    matches = c.matcher.match_text(
        doc["text"], speaker=doc.get("speaker"), top_k=doc["top_k"], min_similarity=doc.get("min_similarity")
    )
    note_matches(matches)
    return Attributions(matches, c.embedder, c.matcher.store_version, doc.get("id"))


def _speaker_names(registry: SpeakerRegistry) -> dict[str, str]:
    return {sp.id: sp.name for sp in registry.snapshot()}


@api_v1.route("/attributions", methods=["POST"])
@api_v1.doc(operationId="attribute_text")
@errors(*_BODY_ERRORS)
@api_v1.arguments(s.AttributionRequest, example={"text": _PESKOV, "top_k": 3})
@api_v1.response(200, AttributionResponse)
def attributions(body: dict[str, Any]) -> Attributions:
    """Match a text against the store: speaker, sources, similarity, label, flags, verdict.

    Quotations are segments first (with the speaker the text names for them), then the remaining
    sentences. Labels: verbatim, paraphrase, related; `match` is null when nothing is close.
    """
    _check_length(body["text"], "text")
    return _attribute(body, components())


@api_v1.route("/attributions/batch", methods=["POST"])
@api_v1.doc(operationId="attribute_documents")
@errors(*_BODY_ERRORS)
@api_v1.arguments(s.BatchRequest, example={"documents": [{"id": "story-1", "text": _PESKOV}]})
@api_v1.response(200, BatchResponse)
def attributions_batch(body: dict[str, Any]) -> BatchAttributions:
    """Match several documents in one call.

    For CMS plugins that check a page of stories at once: each document is matched as
    `POST /v1/attributions` would match it, and answered in the same order with its `id` echoed.
    At most QUOTES_MAX_BATCH_DOCUMENTS documents (default 32); more is a 422 naming `documents`.
    """
    cap = runtime().settings.max_batch_documents
    docs = body["documents"]
    if len(docs) > cap:
        abort(422, errors={"json": {"documents": [f"{len(docs)} documents; at most {cap} per request"]}})
    for i, doc in enumerate(docs):
        _check_length(doc["text"], f"documents.{i}.text")
    c = components()
    return BatchAttributions([_attribute(doc, c) for doc in docs], c.embedder, c.matcher.store_version)


@api_v1.route("/similarity", methods=["POST"])
@api_v1.doc(operationId="compare_wordings")
@errors(*_BODY_ERRORS)
@api_v1.arguments(
    s.SimilarityRequest,
    example={
        "original": "We do not want Russia to leave Syria in the way that some wish.",
        "rendering": "We want Russia to leave Syria.",
    },
)
@api_v1.response(200, SimilarityResponse)
def similarity(body: dict[str, Any]) -> Compared:
    """Compare two wordings: is B a faithful rendering of A?

    The cosine similarity of their embeddings, the label it earns (verbatim when B repeats A's
    words), and the changes of meaning found word by word (negation, number, entity, inserted or
    deleted words). `clean` is true only for a verbatim or paraphrase label without flags.
    """
    _check_length(body["original"], "original")
    _check_length(body["rendering"], "rendering")
    c = components()
    return Compared(c.matcher.compare(body["original"], body["rendering"]), c.embedder)


@api_v1.route("/extractions", methods=["POST"])
@api_v1.doc(operationId="extract_statements")
@errors(*_BODY_ERRORS)
@api_v1.arguments(s.ExtractionRequest, example={"text": '"We will continue dialogue," Peskov told reporters.'})
@api_v1.response(200, ExtractionResponse)
def extractions(body: dict[str, Any]) -> Extracted:
    """Extract the attributed statements of a text.

    Every attribution found (direct, partial and reported speech, and beliefs, intentions,
    perceptions and evidence, with their cue class), its wording and content spans, its cue and
    the source as written and resolved. The store is not changed.
    """
    _check_length(body["text"], "text")
    c = components()
    registry = c.store.registry()  # a private copy: what the text teaches is not kept
    article = make_article(body["text"], ArticleMeta("input", "https://input.invalid/", None))
    extraction = extract_article(article, registry, c.nlp)
    return Extracted(extraction.mentions, _speaker_names(registry))


@api_v1.route("/quotes", methods=["GET"])
@api_v1.doc(operationId="list_quotes")
@errors()
@api_v1.arguments(s.QueryArgs, location="query")
@api_v1.response(200, QuotePageSchema)
def quotes(args: dict[str, Any]) -> QuotePage:
    """List canonical quotes.

    Filtered by the speaker any source names, by the words a quote contains, or to the disputed
    ones (sources name different speakers); paginated with `limit` and `offset`.
    """
    total, found = components().store.quotes(
        speaker_id=args.get("speaker"),
        search=args.get("q"),
        disputed=args.get("disputed"),
        limit=args["limit"],
        offset=args["offset"],
    )
    return QuotePage(total, args["limit"], args["offset"], found)


@api_v1.route("/quotes/<string:quote_id>", methods=["GET"])
@api_v1.doc(operationId="get_quote")
@errors(404)
@api_v1.response(200, QuoteDetail)
def quote(quote_id: str) -> CanonicalQuote:
    """Get one canonical quote.

    With every variant (each outlet's wording, its source, cue and the speaker that source names)
    earliest source first, and the attributions counted per speaker.
    """
    found = components().store.quote(quote_id)
    if found is None:
        abort(404, message=f"no quote {quote_id!r}")
    assert found is not None
    return found


@api_v1.route("/speakers", methods=["GET"])
@api_v1.doc(operationId="list_speakers")
@errors()
@api_v1.response(200, SpeakerList)
def speakers() -> Speakers:
    """List the speakers.

    Every canonical speaker (people, organisations and the news media the registry knows) with
    their aliases and the number of canonical quotes any source ascribes to them.
    """
    return Speakers([SpeakerQuotes(sp, n) for sp, n in components().store.speakers()])


@api_v1.route("/speakers/<string:speaker_id>", methods=["GET"])
@api_v1.doc(operationId="get_speaker")
@errors(404)
@api_v1.response(200, SpeakerDetail)
def speaker(speaker_id: str) -> SpeakerQuotes:
    """Get one speaker.

    Their kind, role and aliases, and the ids of the canonical quotes any source ascribes to them.
    """
    store = components().store
    found = store.speaker(speaker_id)
    if found is None:
        abort(404, message=f"no speaker {speaker_id!r}")
    assert found is not None
    total, ascribed = store.quotes(speaker_id=speaker_id, limit=1000)
    return SpeakerQuotes(found, total, [q.id for q in ascribed])


@api_v1.route("/articles", methods=["POST"])
@api_v1.doc(operationId="add_article")
@errors(*_BODY_ERRORS, 401, 403)
@api_v1.doc(security=[{"ApiKey": []}])
@api_v1.arguments(s.ArticleRequest)
@api_v1.response(200, ArticleResponse)
def articles(body: dict[str, Any]) -> AddedArticle:
    """Add an article to the store.

    Needs an API key (X-API-Key). The article's statements are extracted, embedded and joined to
    the canonical quotes they repeat, or become new ones. Idempotent by URL and content hash: the
    same article again is `unchanged`, a new text at a known URL replaces the old one (`updated`).
    """
    _check_length(body["text"], "text")
    try:
        text = validate_text(body["text"], "text")
    except CorpusError as exc:
        abort(422, errors={"json": {"text": [str(exc).removeprefix("text: ")]}})
    c = components()
    meta = ArticleMeta(body["outlet"], body["url"], body.get("published"), body["language"], body["title"])
    article = make_article(text, meta)
    report = add_article(c.store, article, c.embedder, c.nlp)
    return AddedArticle(report, _speaker_names(c.store.registry()))


@ops.route("/healthz", methods=["GET"])
@ops.doc(operationId="check_health")
@ops.response(200, s.Health)
def healthz() -> s.Status:
    """Check that the process is alive.

    Answers at once, before the model and the store are loaded: for liveness probes.
    """
    return s.Status("ok")


@ops.route("/readyz", methods=["GET"])
@ops.doc(operationId="check_readiness")
@ops.response(200, s.Health)
@ops.alt_response(503, schema=s.ProblemSchema, description="Not ready", content_type="application/problem+json")
def readyz() -> s.Status:
    """Check that the service is ready.

    200 once the model and the store are loaded; 503 problem+json before, with the reason and
    Retry-After. For readiness probes and load balancers.
    """
    components()
    return s.Status("ready")


@api_v1.route("/info", methods=["GET"])
@api_v1.doc(operationId="get_info")
@errors()
@api_v1.response(200, s.InfoResponse)
def info() -> s.Info:
    """Describe the service.

    The embedding model and its backend (for int8: the preset, the MatMuls kept in fp32 and the
    measured agreement with torch), the store's size and version, the similarity thresholds and
    the request limits.
    """
    c = components()
    return s.Info(c.embedder, c.store.info(), c.matcher.thresholds, runtime().settings)
