"""Every error is RFC 9457 `application/problem+json`, naming the offending fields; never a trace."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, json, request
from werkzeug.exceptions import HTTPException, InternalServerError

from .runtime import NotReady

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"
NOT_READY_RETRY_AFTER = "5"  # seconds: loading the model and the store takes a few


def problem(
    status: int,
    detail: str,
    title: str | None = None,
    invalid: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    from http import HTTPStatus

    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": request.path,
    }
    if invalid:
        body["invalid_params"] = invalid
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM)
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _flatten(messages: Any, path: str = "") -> list[dict[str, str]]:
    """webargs' nested error dict → [{"name": "documents.0.top_k", "reason": "..."}].

    marshmallow files an error about a whole object (not a JSON object, say) under `_schema`: that is
    the object's own path, "" for the body itself.
    """
    if isinstance(messages, dict):
        out = []
        for key, value in messages.items():
            sub = path if key == "_schema" else (f"{path}.{key}" if path else str(key))
            out += _flatten(value, sub)
        return out
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return [{"name": path, "reason": " ".join(messages)}]
    if isinstance(messages, list):
        return [item for m in messages for item in _flatten(m, path)]
    return [{"name": path, "reason": str(messages)}]


def handle_http(exc: HTTPException) -> Response:
    # A problem made by an extension for its own refusal (the rate limiter's, with its sentence) stands.
    if isinstance(exc.response, Response) and exc.response.mimetype == PROBLEM:
        return exc.response
    status = exc.code or 500
    data = getattr(exc, "data", None) or {}
    messages = data.get("messages") or data.get("errors")
    invalid = []
    if messages:
        # webargs nests by location ("json", "query"); the field path is what a client needs.
        for location, fields in messages.items() if isinstance(messages, dict) else []:
            where = "body" if location == "json" else location
            for item in _flatten(fields):
                item["name"] = item["name"] or where  # the body (or query) as a whole
                item["in"] = where
                invalid.append(item)
    # flask-smorest's abort(code, message=...) puts the message in exc.data, not the description.
    message = data.get("message")
    detail: str = message if isinstance(message, str) else exc.description or ""
    if status == 422 and invalid:
        detail = "; ".join(f"{i['name']}: {i['reason']}" for i in invalid)
    elif status == 400 and ("JSON" in detail or (isinstance(messages, dict) and "json" in messages)):
        # webargs refuses a body it cannot decode (not UTF-8, a BOM, UTF-16) as {"json": ["Invalid JSON body."]}
        # with werkzeug's generic description: the same answer as every other unreadable body.
        detail = "the request body is not valid JSON"
        invalid = []
    headers = {k: v for k, v in exc.get_headers() if k.lower() not in ("content-type", "content-length")}
    return problem(status, detail, invalid=invalid or None, headers=headers)


def register(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle_http)

    @app.errorhandler(NotReady)
    def not_ready(exc: NotReady) -> Response:
        return problem(503, f"not ready: {exc}", headers={"Retry-After": NOT_READY_RETRY_AFTER})

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        if isinstance(exc, HTTPException):
            return handle_http(exc)
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem(500, InternalServerError.description or "internal error")
