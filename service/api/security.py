"""Security headers on every response: the page's Content-Security-Policy, and a closed one for the API.

The page (`/`, `/docs`) loads its script and style from the service itself and nothing inline, so its
policy allows 'self' and no 'unsafe-inline'. JSON and other responses get a policy that allows
nothing at all: a JSON body opened as a document can neither run nor embed anything.
"""

from __future__ import annotations

from flask import Flask, Response

PAGE_CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",  # the page calls /v1 on its own origin, nowhere else
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
API_CSP = "default-src 'none'; frame-ancestors 'none'; sandbox"


def install(app: Flask) -> None:
    @app.after_request
    def secure(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        # Source links on the page lead to news sites: they learn nothing of the deployment's address.
        headers.setdefault("Referrer-Policy", "no-referrer")
        if response.mimetype == "text/html":
            headers.setdefault("Content-Security-Policy", PAGE_CSP)
            headers.setdefault("X-Frame-Options", "DENY")  # frame-ancestors for browsers without CSP 2
        elif response.mimetype not in ("text/css", "text/javascript", "application/javascript", "image/svg+xml"):
            headers.setdefault("Content-Security-Policy", API_CSP)
        return response
