"""The fact-checkers' page at `/`: one HTML shell; its script calls the public /v1 API and nothing else.

Script, style and icon are files in `static/`, served by this app: the page loads nothing from
elsewhere, so it works in deployments without internet access, under a Content-Security-Policy
without 'unsafe-inline' (security.py).
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from flask import Blueprint, Response, current_app, render_template, url_for

page = Blueprint("page", __name__)

STATIC = Path(__file__).resolve().parent / "static"


@cache
def _version(filename: str) -> str:
    """A digest of the file: a changed asset gets a new URL, so no browser keeps an old copy of it."""
    return hashlib.sha256((STATIC / filename).read_bytes()).hexdigest()[:12]


def asset(filename: str) -> str:
    return url_for("static", filename=filename, v=_version(filename))


@page.get("/")
def index() -> Response:
    html = render_template("page.html", asset=asset)
    response = current_app.response_class(html, mimetype="text/html")
    response.cache_control.no_cache = True  # the shell names the current assets: always revalidate it
    return response
