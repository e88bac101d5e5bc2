"""Rate limits per API key, or per client address without one (Flask-Limiter).

Each endpoint has its own allowance; writes (POST /v1/articles) have a smaller one. The counters live
in memory (per worker process) unless QUOTES_RATE_LIMIT_STORAGE names a Redis server, which several
workers and replicas then share. A limiter whose storage fails lets requests through and logs it:
an outage of Redis must not become an outage of the API.
"""

from __future__ import annotations

from flask import Flask, Response, request
from flask_limiter import Limiter, RequestLimit

from ..config import Settings
from . import auth, errors


def _client() -> str:
    kid = auth.key_id()
    # After ProxyFix (QUOTES_TRUSTED_PROXIES) remote_addr is the client, not the gateway.
    return f"key:{kid}" if kid else f"addr:{request.remote_addr or 'unknown'}"


def install(app: Flask, settings: Settings) -> Limiter | None:
    if not settings.rate_limit and not settings.rate_limit_write:
        return None

    def limit() -> str:
        return settings.rate_limit_write if request.endpoint in auth.WRITE_ENDPOINTS else settings.rate_limit

    def exempt() -> bool:
        # Probes, scrapes and the docs are the gateway's and the operator's, not a client's.
        return request.blueprint != "v1" or not limit()

    def breached(limit: RequestLimit) -> Response:
        # Flask-Limiter adds Retry-After and the X-RateLimit-* headers to this response.
        return errors.problem(
            429, f"rate limit exceeded: {limit.limit} for this endpoint, per API key or client address"
        )

    @app.after_request
    def retry_after_only_when_refused(response: Response) -> Response:
        # Registered before the limiter, so it runs after it: Flask-Limiter puts Retry-After on
        # every response, which tells a client that was served to wait, and raises a 503's few
        # seconds to the end of the rate window (a minute): a client would wait that long for a
        # service that is only loading.
        if response.status_code == 503:
            response.headers["Retry-After"] = errors.NOT_READY_RETRY_AFTER
        elif response.status_code != 429:
            response.headers.pop("Retry-After", None)
        return response

    return Limiter(
        _client,
        on_breach=breached,
        app=app,
        default_limits=[limit],
        default_limits_exempt_when=exempt,
        headers_enabled=True,
        storage_uri=settings.rate_limit_storage,
        strategy="moving-window",
        swallow_errors=True,
    )
