"""API keys: several at once (rotation), revoked by removing them, compared as hashes in constant time.

Writes always need a key. With QUOTES_READ_REQUIRES_KEY=true every /v1 endpoint does.
"""

from __future__ import annotations

import hashlib
import hmac

from flask import Flask, current_app, request
from flask_smorest import abort

from ..config import Settings

_EXTENSION = "quotes_key_digests"
WRITE_ENDPOINTS = frozenset({"v1.articles"})


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def _given() -> str:
    given = request.headers.get("X-API-Key", "")
    auth = request.headers.get("Authorization", "")
    if not given and auth[:7].lower() == "bearer ":
        given = auth[7:].strip()
    return given


def presented_key() -> str:
    """The key from X-API-Key or `Authorization: Bearer`; a key in the URL is refused (it ends up in logs)."""
    if "api_key" in request.args or "apikey" in request.args:
        abort(400, message="send the API key in the X-API-Key header, never in the URL")
    return _given()


def key_id() -> str | None:
    """A short, non-secret name for the valid key presented (rate limits are kept per key), else None."""
    given = _given()
    if not given:
        return None
    digest = _digest(given)
    ok = False
    for known in current_app.extensions[_EXTENSION]:
        ok |= hmac.compare_digest(digest, known)  # every key is compared: the time says nothing of which
    return digest.hex()[:16] if ok else None


def require_key() -> None:
    if not current_app.extensions[_EXTENSION]:
        abort(403, message="writes are disabled: no API key is configured (QUOTES_API_KEYS)")
    if not presented_key() or key_id() is None:
        abort(401, message="a valid API key is required (X-API-Key header)", headers={"WWW-Authenticate": "ApiKey"})


def install(app: Flask, settings: Settings) -> None:
    # Only the hashes are kept in memory once the app is made.
    app.extensions[_EXTENSION] = tuple(_digest(k) for k in settings.api_keys)

    # Before the body is validated: a client without a key learns nothing about what it would accept.
    @app.before_request
    def check_key() -> None:
        if request.method == "OPTIONS":  # CORS preflight carries no credentials
            return
        if request.endpoint in WRITE_ENDPOINTS or (settings.read_requires_key and request.blueprint == "v1"):
            require_key()
