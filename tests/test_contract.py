"""The committed contract (openapi.yaml) against the real app: schemathesis drives every operation
through WSGI with the real model and a real store, and checks each response against the file.

Bounded for CI: a fixed seed, derandomised Hypothesis, a few examples per operation.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
from types import SimpleNamespace
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings

from service.api import create_app, schemas
from service.api.runtime import Runtime
from service.config import REPO_ROOT, Settings
from service.embed import Embedder
from service.store import SqliteStore

KEY = "contract-key-0123456789abcdef"

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20250129,
    }
)
schema = schemathesis.openapi.from_path(REPO_ROOT / "openapi.yaml", config=CONFIG)


@pytest.fixture(scope="module")
def app(built_store: SqliteStore, embedder: Embedder, nlp: object, tmp_path_factory: pytest.TempPathFactory) -> Flask:
    # A private copy of the store: POST /v1/articles is fuzzed too and writes to it. Default limits
    # (the ones openapi.yaml states); rate limits off, or the fuzz itself would be throttled.
    path = tmp_path_factory.mktemp("contract") / "quotes.sqlite3"
    shutil.copy(built_store.path, path)
    store = SqliteStore(path, embedder.name, embedder.revision)
    config = dataclasses.replace(
        Settings.from_env({}), store_path=path, api_keys=(KEY,), rate_limit="", rate_limit_write=""
    )
    app = create_app(config, Runtime.preloaded(config, embedder, nlp, store))
    schema.app = app
    return app


def status_code_is_listed(ctx: schemathesis.CheckContext, response: schemathesis.Response, case: Any) -> None:
    """Stricter than `status_code_conformance`, which every status passes here: flask-smorest adds a
    `default` response to each operation. A client can only rely on the statuses the file lists."""
    if response.request.method.upper() != case.operation.method.upper():
        return  # an undeclared method: that 405 belongs to no operation (unsupported_method checks it)
    listed = set(case.operation.definition.raw["responses"]) - {"default"}
    assert str(response.status_code) in listed, (
        f"{case.operation.label} answered {response.status_code}, which openapi.yaml does not list ({sorted(listed)})"
    )


@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
def test_every_operation_conforms_to_openapi_yaml(case: schemathesis.Case, app: Flask) -> None:
    # All default checks: no 5xx, documented status and content type, response schema, schema-valid
    # requests accepted and schema-invalid ones refused, auth enforced; plus the listed-status check.
    # The key is sent everywhere, so POST /v1/articles really adds (and runs the pipeline on) articles.
    case.operation.schema.app = app  # parametrize() works on a clone: bind it too, for the probes checks send
    case.call_and_validate(app=app, headers={"X-API-Key": KEY}, additional_checks=[status_code_is_listed])


def test_the_listed_status_check_can_fail() -> None:
    operation = schema["/v1/info"]["GET"]
    listed = SimpleNamespace(status_code=200, request=SimpleNamespace(method="GET"))
    status_code_is_listed(None, listed, operation.Case())
    with pytest.raises(AssertionError, match="418"):
        unlisted = SimpleNamespace(status_code=418, request=SimpleNamespace(method="GET"))
        status_code_is_listed(None, unlisted, operation.Case())


def _validated(path: str, method: str = "GET", **kwargs: Any) -> Any:
    case = schema[path][method].Case(**kwargs)
    response = case.call_and_validate(headers={"X-API-Key": KEY}, additional_checks=[status_code_is_listed])
    assert response.status_code == 200, response.text
    return response.json()


def test_every_stored_quote_and_speaker_conforms(app: Flask) -> None:  # `app` binds the schema to it
    """The fuzz cannot guess ids, so every detail response of the store is checked here."""
    quotes: list[dict[str, Any]] = []
    total = 1
    while len(quotes) < total:
        page = _validated("/v1/quotes", query={"limit": 100, "offset": len(quotes)})
        assert page["quotes"], page
        quotes, total = quotes + page["quotes"], page["total"]
    for quote in quotes:
        detail = _validated("/v1/quotes/{quote_id}", path_parameters={"quote_id": quote["id"]})
        assert detail["id"] == quote["id"] and detail["variants"]
    speakers = _validated("/v1/speakers")["speakers"]
    assert speakers
    for sp in speakers:
        assert _validated("/v1/speakers/{speaker_id}", path_parameters={"speaker_id": sp["id"]})["id"] == sp["id"]


def test_adding_an_article_conforms(app: Flask) -> None:  # `app` binds the schema to it
    article = {
        "text": '"We will reopen the embassy in Damascus next month," Russian Foreign Minister Sergei Lavrov said.',
        "outlet": "Contract Wire",
        "url": "https://example.org/contract/lavrov-embassy",
        "published": "2025-03-01",
    }
    added = _validated("/v1/articles", "POST", body=article, media_type="application/json")
    assert added["status"] == "added" and added["mentions"]
    again = _validated("/v1/articles", "POST", body=article, media_type="application/json")
    assert again["status"] == "unchanged" and again["store_version"] == added["store_version"]


# -- what the contract's patterns promise --------------------------------------------------------------


def test_not_blank_pattern_is_exactly_what_strip_removes() -> None:
    """ECMA-262 (JSON Schema) and Python disagree on \\s; the spelled-out class must be Python's whitespace."""
    blank = re.compile(f"[{schemas.SPACE}]")
    assert all(bool(blank.fullmatch(chr(c))) == chr(c).isspace() for c in range(0x110000))


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://example.org/story", True),
        ("http://news.example.co.uk:8080/a/b?c=d#e", True),
        ("https://xn--e1afmkfd.xn--p1ai/", True),
        ("https://example.org", True),
        ("https://example.org/\n", False),  # Python's `$` would let the newline through
        ("https://example.org/a b", False),
        ("ftp://example.org/", False),
        ("https://localhost/", False),
        ("example.org/story", False),
        ("", False),
    ],
)
def test_documented_url_pattern_is_the_enforced_one(url: str, ok: bool) -> None:
    documented = schema["/v1/articles"]["POST"].definition.raw["requestBody"]["content"]["application/json"]
    assert documented["schema"]["$ref"] == "#/components/schemas/ArticleRequest"
    pattern = schema.raw_schema["components"]["schemas"]["ArticleRequest"]["properties"]["url"]["pattern"]
    assert pattern == schemas.HTTP_URL
    errors = schemas.ArticleRequest().validate({"text": "Some text.", "outlet": "X", "url": url})
    assert ("url" not in errors) is ok, errors
