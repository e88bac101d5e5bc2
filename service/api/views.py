"""HTTP endpoints: validate, call the pipeline, serialise. Nothing here decides anything."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_smorest import Blueprint, abort

from ..corpus import ArticleMeta, CorpusError, make_article, validate_text
from ..extract import extract_article
from ..flags import Flag
from ..ingest import add_article
from ..match import Match
from ..records import CanonicalQuote, QuoteMention, Span, Speaker, Variant
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


def _model() -> dict[str, str]:
    e = components().embedder
    return {"name": e.name, "revision": e.revision}


def _speaker_ref(speaker_id: str | None, name: str | None) -> dict[str, str | None]:
    return {"id": speaker_id, "name": name}


def _flag(f: Flag) -> dict[str, Any]:
    return {"type": f.type, "detail": f.detail, "removed": list(f.removed), "added": list(f.added)}


def _source(v: Variant, names: dict[str, str]) -> dict[str, Any]:
    return {
        "outlet": v.source.outlet,
        "url": v.source.url,
        "published": v.source.published,
        "title": v.source.title,
        "wording": v.text,
        "kind": v.kind.value,
        "speaker": _speaker_ref(v.speaker_id, names.get(v.speaker_id or "")),
    }


def _attributions(q: CanonicalQuote) -> list[dict[str, Any]]:
    return [
        {"speaker": _speaker_ref(a.speaker_id, a.speaker_name), "sources": a.sources, "mentions": a.mentions}
        for a in q.attributions
    ]


def _names(q: CanonicalQuote) -> dict[str, str]:
    return {a.speaker_id: a.speaker_name for a in q.attributions}


def _result(m: Match, registry: SpeakerRegistry) -> dict[str, Any]:
    seg = m.segment
    named = None
    if seg.speaker_mention:
        sp = registry.speakers.get(seg.speaker_id or "")
        named = {"mention": seg.speaker_mention, "id": seg.speaker_id, "name": sp.name if sp else None}
    match = None
    if m.quote is not None:
        q = m.quote
        names = _names(q)
        match = {
            "quote_id": q.id,
            "text": q.text,
            "speaker": _speaker_ref(q.speaker_id, q.speaker_name),
            "similarity": round(m.similarity, 4),
            "label": m.label,
            "clean": m.clean,
            "flags": [_flag(f) for f in m.flags],
            "attribution": m.attribution,
            "disputed": q.disputed,
            "attributions": _attributions(q),
            "compared_with": m.variant.text if m.variant else q.text,
            "sources": [_source(v, names) for v in _earliest_per_source(q)],
        }
    return {
        "text": seg.text,
        "start": seg.start,
        "end": seg.end,
        "kind": seg.kind,
        "speaker": named,
        "match": match,
        "alternatives": [
            {
                "quote_id": c.quote_id,
                "text": c.text,
                "speaker": _speaker_ref(c.speaker_id, c.speaker_name),
                "similarity": round(c.similarity, 4),
            }
            for c in m.alternatives
        ],
    }


def _earliest_per_source(q: CanonicalQuote) -> list[Variant]:
    """One wording per article (its fullest), sources earliest first."""
    best: dict[str, Variant] = {}
    for v in q.variants:  # already earliest first
        cur = best.get(v.source.article_id)
        if cur is None or len(v.text) > len(cur.text):
            best[v.source.article_id] = v
    return list(best.values())


def _attribute(doc: dict[str, Any]) -> dict[str, Any]:
    c = components()
    matches = c.matcher.match_text(
        doc["text"], speaker=doc.get("speaker"), top_k=doc["top_k"], min_similarity=doc.get("min_similarity")
    )
    note_matches(matches)
    registry = c.store.registry()
    return {
        "results": [_result(m, registry) for m in matches],
        "model": _model(),
        "store_version": c.matcher.store_version,
    }


@api_v1.route("/attributions", methods=["POST"])
@errors(*_BODY_ERRORS)
@api_v1.arguments(s.AttributionRequest, example={"text": _PESKOV, "top_k": 3})
@api_v1.response(200, s.AttributionResponse)
def attributions(body: dict[str, Any]) -> dict[str, Any]:
    """Match a text against the store: speaker, sources, similarity, label, flags, verdict.

    Quotations are segments first (with the speaker the text names for them), then the remaining
    sentences. Labels: verbatim, paraphrase, related; `match` is null when nothing is close.
    """
    _check_length(body["text"], "text")
    return _attribute(body)


@api_v1.route("/attributions/batch", methods=["POST"])
@errors(*_BODY_ERRORS)
@api_v1.arguments(s.BatchRequest, example={"documents": [{"id": "story-1", "text": _PESKOV}]})
@api_v1.response(200, s.BatchResponse)
def attributions_batch(body: dict[str, Any]) -> dict[str, Any]:
    """Several documents in one call (CMS plugins). At most QUOTES_MAX_BATCH_DOCUMENTS documents."""
    cap = runtime().settings.max_batch_documents
    docs = body["documents"]
    if len(docs) > cap:
        abort(422, errors={"json": {"documents": [f"{len(docs)} documents; at most {cap} per request"]}})
    for i, doc in enumerate(docs):
        _check_length(doc["text"], f"documents.{i}.text")
    out = []
    for doc in docs:
        result = _attribute(doc)
        out.append({"id": doc.get("id"), **result})
    return {"documents": out, "model": _model(), "store_version": components().matcher.store_version}


@api_v1.route("/similarity", methods=["POST"])
@errors(*_BODY_ERRORS)
@api_v1.arguments(
    s.SimilarityRequest,
    example={
        "original": "We do not want Russia to leave Syria in the way that some wish.",
        "rendering": "We want Russia to leave Syria.",
    },
)
@api_v1.response(200, s.SimilarityResponse)
def similarity(body: dict[str, Any]) -> dict[str, Any]:
    """Is B a faithful rendering of A? Similarity, label and the changes of meaning found."""
    _check_length(body["original"], "original")
    _check_length(body["rendering"], "rendering")
    score, label, flags = components().matcher.compare(body["original"], body["rendering"])
    return {
        "similarity": round(score, 4),
        "label": label,
        "clean": label in ("verbatim", "paraphrase") and not flags,
        "flags": [_flag(f) for f in flags],
        "model": _model(),
    }


def _mention(m: QuoteMention, registry: SpeakerRegistry) -> dict[str, Any]:
    sp = registry.speakers.get(m.speaker_id or "")
    return {
        "kind": m.kind.value,
        "text": m.text,
        "spans": [_span(x) for x in m.spans],
        "content": [_span(x) for x in m.content_spans],
        "cue": m.cue,
        "cue_class": m.cue_class.value,
        "speaker_mention": m.speaker_mention,
        "speaker_span": _span(m.speaker_span) if m.speaker_span else None,
        "speaker": _speaker_ref(m.speaker_id, sp.name if sp else None),
        "confidence": m.confidence,
        "headline": m.headline,
        "quotable": m.quotable,
    }


def _span(x: Span) -> dict[str, Any]:
    return {"start": x.start, "end": x.end, "text": x.text}


@api_v1.route("/extractions", methods=["POST"])
@errors(*_BODY_ERRORS)
@api_v1.arguments(s.ExtractionRequest, example={"text": '"We will continue dialogue," Peskov told reporters.'})
@api_v1.response(200, s.ExtractionResponse)
def extractions(body: dict[str, Any]) -> dict[str, Any]:
    """The quotes and speakers found in a text. The store is not changed."""
    _check_length(body["text"], "text")
    c = components()
    registry = c.store.registry()  # a private copy: what the text teaches is not kept
    article = make_article(body["text"], ArticleMeta("input", "https://input.invalid/", None))
    extraction = extract_article(article, registry, c.nlp)
    return {"mentions": [_mention(m, registry) for m in extraction.mentions]}


def _quote_summary(q: CanonicalQuote) -> dict[str, Any]:
    return {
        "id": q.id,
        "text": q.text,
        "speaker": _speaker_ref(q.speaker_id, q.speaker_name),
        "disputed": q.disputed,
        "attributions": _attributions(q),
        "sources": len(q.sources),
    }


@api_v1.route("/quotes", methods=["GET"])
@errors()
@api_v1.arguments(s.QueryArgs, location="query")
@api_v1.response(200, s.QuotePage)
def quotes(args: dict[str, Any]) -> dict[str, Any]:
    """Canonical quotes: by speaker, by words, disputed only; paginated."""
    total, found = components().store.quotes(
        speaker_id=args.get("speaker"),
        search=args.get("q"),
        disputed=args.get("disputed"),
        limit=args["limit"],
        offset=args["offset"],
    )
    return {
        "total": total,
        "limit": args["limit"],
        "offset": args["offset"],
        "quotes": [_quote_summary(q) for q in found],
    }


@api_v1.route("/quotes/<string:quote_id>", methods=["GET"])
@errors(404)
@api_v1.response(200, s.QuoteDetail)
def quote(quote_id: str) -> dict[str, Any]:
    """One canonical quote with its variants, sources and attributions."""
    found = components().store.quote(quote_id)
    if found is None:
        abort(404, message=f"no quote {quote_id!r}")
    assert found is not None
    names = _names(found)
    variants = [
        {
            **_source(v, names),
            "spans": [{"start": x.start, "end": x.end, "text": x.text} for x in v.spans],
            "cue": v.cue,
            "speaker_mention": v.speaker_mention,
            "confidence": v.confidence,
        }
        for v in found.variants
    ]
    return {**_quote_summary(found), "variants": variants}


def _speaker(sp: Speaker, count: int) -> dict[str, Any]:
    return {
        "id": sp.id,
        "name": sp.name,
        "kind": sp.kind.value,
        "role": sp.role,
        "aliases": sorted(sp.aliases),
        "quotes": count,
    }


@api_v1.route("/speakers", methods=["GET"])
@errors()
@api_v1.response(200, s.SpeakerList)
def speakers() -> dict[str, Any]:
    """Every canonical speaker with aliases and the number of quotes ascribed to them."""
    return {"speakers": [_speaker(sp, n) for sp, n in components().store.speakers()]}


@api_v1.route("/speakers/<string:speaker_id>", methods=["GET"])
@errors(404)
@api_v1.response(200, s.SpeakerDetail)
def speaker(speaker_id: str) -> dict[str, Any]:
    """One speaker: role, aliases and the quotes ascribed to them by any source."""
    store = components().store
    found = store.speaker(speaker_id)
    if found is None:
        abort(404, message=f"no speaker {speaker_id!r}")
    assert found is not None
    total, ascribed = store.quotes(speaker_id=speaker_id, limit=1000)
    return {**_speaker(found, total), "quote_ids": [q.id for q in ascribed]}


@api_v1.route("/articles", methods=["POST"])
@errors(*_BODY_ERRORS, 401, 403)
@api_v1.doc(security=[{"ApiKey": []}])
@api_v1.arguments(s.ArticleRequest)
@api_v1.response(200, s.ArticleResponse)
def articles(body: dict[str, Any]) -> dict[str, Any]:
    """Add an article to the store (API key required). Idempotent by URL and content hash."""
    _check_length(body["text"], "text")
    try:
        text = validate_text(body["text"], "text")
    except CorpusError as exc:
        abort(422, errors={"json": {"text": [str(exc).removeprefix("text: ")]}})
    c = components()
    meta = ArticleMeta(body["outlet"], body["url"], body.get("published"), body["language"], body["title"])
    article = make_article(text, meta)
    report = add_article(c.store, article, c.embedder, c.nlp)
    registry = c.store.registry()
    return {
        "article_id": report.article_id,
        "url": report.url,
        "status": report.status,
        "mentions": [_mention(m, registry) for m in report.statements],
        "new_quotes": list(report.new_quotes),
        "joined_quotes": list(report.joined_quotes),
        "new_speakers": list(report.new_speakers),
        "store_version": report.store_version,
    }


@ops.route("/healthz", methods=["GET"])
@ops.response(200, s.Health)
def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@ops.route("/readyz", methods=["GET"])
@ops.response(200, s.Health)
@ops.alt_response(503, schema=s.ProblemSchema, description="Not ready", content_type="application/problem+json")
def readyz() -> dict[str, str]:
    """Model and store loaded (503 problem+json before, with the reason)."""
    components()
    return {"status": "ready"}


@api_v1.route("/info", methods=["GET"])
@errors()
@api_v1.response(200, s.InfoResponse)
def info() -> dict[str, Any]:
    """Model, backend, store size and version, thresholds and limits."""
    c = components()
    settings = runtime().settings
    t = c.matcher.thresholds
    store = c.store.info()
    store.pop("location", None)
    return {
        "model": _model(),
        "embedding": c.embedder.info,
        "store": store,
        "thresholds": {
            "paraphrase": t.paraphrase,
            "related": t.related,
            "min_words_paraphrase": t.min_words_paraphrase,
        },
        "limits": {
            "max_text_chars": settings.max_text_chars,
            "max_body_bytes": settings.max_body_bytes,
            "max_batch_documents": settings.max_batch_documents,
            "max_top_k": 10,
        },
    }
