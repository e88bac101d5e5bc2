"""The HTTP API: an app factory binding flask-smorest, the problem+json errors and the runtime."""

from __future__ import annotations

import json as _json
import time
from pathlib import Path
from typing import Any

from flask import Flask, Response, request
from flask_cors import CORS
from flask_smorest import Api
from werkzeug.middleware.proxy_fix import ProxyFix

from ..config import Settings
from . import auth, errors, ratelimit, security, telemetry
from .page import page
from .runtime import Runtime
from .schemas import ProblemSchema

API_VERSION = "1.0.0"


class ProblemApi(Api):
    ERROR_SCHEMA = ProblemSchema

    def _register_responses(self) -> None:
        """flask-smorest documents its shared error responses as application/json; ours are problem+json."""
        self.DEFAULT_RESPONSE_CONTENT_TYPE = errors.PROBLEM
        try:
            super()._register_responses()
        finally:
            del self.DEFAULT_RESPONSE_CONTENT_TYPE

    def _register_pagination_header(self) -> None:
        """No endpoint pages with flask-smorest's header: its schema would sit unused in the contract."""


def create_app(settings: Settings | None = None, runtime: Runtime | None = None, load: bool = True) -> Flask:
    """The app; `load=False` skips loading model and store (for writing the OpenAPI document)."""
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config.update(
        API_TITLE="Quote attribution API",
        API_VERSION=API_VERSION,
        OPENAPI_VERSION="3.1.0",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        API_SPEC_OPTIONS={
            # Where `./run serve` listens (QUOTES_BIND); generated clients take another base URL.
            "servers": [{"url": "http://127.0.0.1:8000", "description": "./run serve on this machine"}],
            "info": {
                "contact": {"name": "Quote attribution service maintainers"},
                "description": (
                    "Who said it, who reported it, and does a text quote it faithfully? Errors are "
                    "application/problem+json (RFC 9457) with the offending fields in invalid_params. "
                    f"Limits: request body {settings.max_body_bytes} bytes (413), text "
                    f"{settings.max_text_chars} characters, {settings.max_batch_documents} documents per batch."
                ),
            },
            "components": {"securitySchemes": {"ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}}},
        },
    )
    rt = runtime or Runtime(settings)
    app.extensions["quotes_runtime"] = rt
    api = ProblemApi(app)
    from .views import api_v1, ops

    api.register_blueprint(ops)
    api.register_blueprint(api_v1)
    app.register_blueprint(page)  # the fact-checkers' page at /: plain Flask, not part of the API contract
    errors.register(app)
    # Order matters: the request id and the clock start before any check can refuse the request.
    telemetry.install(app, rt)
    ratelimit.install(app, settings)  # before the key check: guessing keys is rate-limited too
    auth.install(app, settings)
    _guard_requests(app)
    _docs_page(app)
    security.install(app)
    if settings.cors_origins:
        CORS(
            app,
            resources={r"/v1/*": {"origins": list(settings.cors_origins)}},
            allow_headers=["Content-Type", "X-API-Key", "Authorization", telemetry.REQUEST_ID_HEADER],
            expose_headers=[telemetry.REQUEST_ID_HEADER, "Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining"],
            max_age=600,
        )
    if settings.trusted_proxies:
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n, x_prefix=n)  # type: ignore[method-assign]
    if load:
        rt.start()
    return app


def openapi_document() -> dict[str, object]:
    """The contract as the app generates it, with default settings (what openapi.yaml holds)."""
    app = create_app(Settings.from_env({}), load=False)
    with app.app_context():
        spec: dict[str, object] = app.extensions["flask-smorest"]["apis"][""]["ext_obj"].spec.to_dict()
    return spec


def _guard_requests(app: Flask) -> None:
    @app.before_request
    def require_json() -> Response | None:
        # An unknown path or a method the route does not take is a 404/405, whatever the body.
        if request.routing_exception is not None or request.method not in ("POST", "PUT", "PATCH"):
            return None
        if request.mimetype != "application/json":
            return errors.problem(415, "send the body as application/json")
        cap = app.config["MAX_CONTENT_LENGTH"] or 0
        length = request.content_length
        if length is not None and length > cap:
            _drain(request.environ["wsgi.input"], length)
            return errors.problem(413, f"the body is larger than the {cap} bytes allowed")
        data = request.get_data(cache=True)
        # A chunked body has no length: werkzeug stops reading at the cap without saying so.
        if length is None and len(data) >= cap and request.environ["wsgi.input"].read(1):
            _drain(request.environ["wsgi.input"], None)
            return errors.problem(413, f"the body is larger than the {cap} bytes allowed")
        try:
            _json.loads(data or b"null")
        except RecursionError:
            return errors.problem(400, "the JSON body is nested too deeply")
        except ValueError:
            return errors.problem(400, "the request body is not valid JSON")
        return None


# A body over the cap is read and dropped before the 413 goes out, up to these bounds: a client that
# writes its whole body before it reads (urllib, with Connection: close) otherwise meets a connection
# reset by a server that answered and closed while the upload went on, and never reads the 413.
# Beyond them the answer goes out at once (and such a client may see the reset).
DRAIN_MAX_BYTES = 64 * 1024 * 1024
DRAIN_MAX_SECONDS = 10.0
_DRAIN_CHUNK = 256 * 1024


def _drain(stream: Any, length: int | None) -> None:
    """Read and drop what is left of a request body: `length` bytes, or to its end when chunked."""
    if length is not None and length > DRAIN_MAX_BYTES:
        return
    # Never read past a known length: on a kept-alive connection the next bytes are the next request.
    left = DRAIN_MAX_BYTES if length is None else length
    deadline = time.monotonic() + DRAIN_MAX_SECONDS
    while left > 0 and time.monotonic() < deadline:
        chunk = stream.read(min(_DRAIN_CHUNK, left))
        if not chunk:
            return
        left -= len(chunk)


_DOCS = (Path(__file__).resolve().parent / "docs.html").read_text(encoding="utf-8")


def _docs_page(app: Flask) -> None:
    @app.get("/docs")
    def docs() -> Response:
        return Response(_DOCS, mimetype="text/html")
