"""The HTTP surface through Flask's test client, with the real model and a store built from the corpus."""

from __future__ import annotations

import dataclasses
import re
import shutil
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask import Flask
from flask.testing import FlaskClient

from service.api import create_app, openapi_document
from service.api.runtime import Runtime
from service.config import REPO_ROOT, Settings
from service.embed import Embedder
from service.store import SqliteStore

KEY = "test-key-0123456789abcdef"


@pytest.fixture(scope="module")
def app(built_store: SqliteStore, embedder: Embedder, nlp: object, tmp_path_factory: pytest.TempPathFactory) -> Flask:
    # A private copy of the store: this module writes to it.
    path = tmp_path_factory.mktemp("api") / "quotes.sqlite3"
    shutil.copy(built_store.path, path)
    store = SqliteStore(path, embedder.name, embedder.revision)
    settings = dataclasses.replace(Settings.from_env({}), store_path=path, api_keys=(KEY,), max_body_bytes=200_000)
    return create_app(settings, Runtime.preloaded(settings, embedder, nlp, store))


@pytest.fixture()
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body: dict[str, Any] = response.get_json()
    assert body["status"] == status and body["title"] and "Traceback" not in response.get_data(as_text=True)
    return body


def test_openapi_yaml_is_what_the_app_generates() -> None:
    committed = yaml.safe_load((REPO_ROOT / "openapi.yaml").read_text(encoding="utf-8"))
    assert committed == openapi_document(), "regenerate with: python -m service openapi > openapi.yaml"


def test_spec_and_docs_are_served(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").get_json()
    assert "/v1/attributions" in spec["paths"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and b"openapi.json" in docs.data
    # Its script and style are files, as the page's Content-Security-Policy (no 'unsafe-inline') wants.
    assert b"<script>" not in docs.data and b"<style>" not in docs.data
    assert "script-src 'self'" in docs.headers["Content-Security-Policy"]
    with client.get("/static/docs.js") as script:  # a file response: closed, or it leaks its handle
        assert script.status_code == 200 and script.mimetype == "text/javascript"
    assert "/" not in spec["paths"]  # the page is not part of the API contract


def test_the_page_is_served_with_its_files_as_package_data(client: FlaskClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert "unsafe-inline" not in page.headers["Content-Security-Policy"]
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assets = re.findall(r'(?:src|href)="(/static/[^"?]+)\?v=[0-9a-f]{12}"', page.get_data(as_text=True))
    assert len(assets) == 3
    for asset in assets:
        with client.get(asset) as response:
            assert response.status_code == 200 and response.headers["X-Content-Type-Options"] == "nosniff"
    # A non-editable install has only what pyproject's package-data names.
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["service"]
    root = REPO_ROOT / "service"
    shipped = [p.relative_to(root) for d in ("api/static", "api/templates") for p in (root / d).rglob("*")]
    missing = [str(f) for f in shipped if f.suffix and not any(f.match(pattern) for pattern in patterns)]
    assert shipped and not missing, missing


def test_peskov_paraphrase_with_sources(client: FlaskClient) -> None:
    text = (
        "Kremlin spokesman Dmitry Peskov stressed that Moscow will keep up a constant dialogue with the new "
        "Syrian authorities."
    )
    body = client.post("/v1/attributions", json={"text": text}).get_json()
    assert body["model"]["name"] == "sentence-transformers/all-MiniLM-L6-v2" and body["store_version"] >= 1
    matched = [r for r in body["results"] if r["match"]]
    assert matched, body
    match = matched[0]["match"]
    assert match["speaker"]["id"] == "dmitry-peskov"
    assert match["label"] == "paraphrase" and match["attribution"] == "consistent" and match["clean"]
    assert 0 < match["similarity"] <= 1
    assert match["sources"] and all(src["url"].startswith("https://") for src in match["sources"])
    dates = [src["published"] for src in match["sources"] if src["published"]]
    assert dates == sorted(dates)
    segment = matched[0]
    assert text[segment["start"] : segment["end"]] == segment["text"]


def test_negated_statement_is_flagged_not_clean(client: FlaskClient) -> None:
    text = (
        '"Russia does not support the unity, territorial integrity and sovereignty of the Syrian Arab Republic," '
        "the Foreign Ministry said."
    )
    result = client.post("/v1/attributions", json={"text": text}).get_json()["results"][0]
    match = result["match"]
    assert match["speaker"]["id"] == "russian-foreign-ministry"
    assert not match["clean"]
    assert any(f["type"] == "negation" for f in match["flags"])


def test_misattribution_names_the_real_speaker(client: FlaskClient) -> None:
    text = 'Ukraine\'s foreign minister Andriy Sybiga spoke of "deep strategic interests between Russia and Syria."'
    results = client.post("/v1/attributions", json={"text": text}).get_json()["results"]
    quoted = next(r for r in results if r["kind"] == "quote")
    assert quoted["speaker"]["id"] == "andriy-sybiga"
    assert quoted["match"]["attribution"] == "misattributed"
    assert quoted["match"]["speaker"] == {"id": "ahmed-al-sharaa", "name": "Ahmed al-Sharaa"}


def test_weather_has_no_match(client: FlaskClient) -> None:
    body = client.post("/v1/attributions", json={"text": "It was sunny and warm in Damascus on Tuesday afternoon."})
    assert [r["match"] for r in body.get_json()["results"]] == [None]


def test_batch_and_its_cap(client: FlaskClient, app: Flask) -> None:
    docs = [
        {"id": "a", "text": "We will continue dialogue with the Syrian authorities."},
        {"text": "Hello there everyone."},
    ]
    body = client.post("/v1/attributions/batch", json={"documents": docs}).get_json()
    assert [d["id"] for d in body["documents"]] == ["a", None]
    assert body["documents"][0]["results"][0]["match"]["label"] == "verbatim"
    cap = app.extensions["quotes_runtime"].settings.max_batch_documents
    too_many = {"documents": [{"text": "x y z"}] * (cap + 1)}
    problem = _problem(client.post("/v1/attributions/batch", json=too_many), 422)
    assert problem["invalid_params"][0]["name"] == "documents"


def test_similarity(client: FlaskClient) -> None:
    body = client.post(
        "/v1/similarity",
        json={
            "original": "We do not want Russia to leave Syria in the way that some wish.",
            "rendering": "We want Russia to leave Syria in the way that some wish.",
        },
    ).get_json()
    assert body["similarity"] > 0.8 and not body["clean"]
    assert [f["type"] for f in body["flags"]] == ["negation"]


def test_extractions_do_not_change_the_store(client: FlaskClient) -> None:
    before = client.get("/v1/info").get_json()["store"]
    text = '"We will never leave," Ukrainian Foreign Minister Andriy Sybiga told reporters.'
    body = client.post("/v1/extractions", json={"text": text}).get_json()
    assert body["mentions"][0]["speaker"]["id"] == "andriy-sybiga"
    assert client.get("/v1/info").get_json()["store"] == before


def test_quotes_and_speakers(client: FlaskClient) -> None:
    page = client.get("/v1/quotes?disputed=true").get_json()
    assert page["total"] == 2 and all(q["disputed"] for q in page["quotes"])
    peskov = client.get("/v1/quotes?q=permanent+dialogue+Syrian+authorities&speaker=dmitry-peskov").get_json()
    assert peskov["total"] >= 1
    detail = client.get(f"/v1/quotes/{peskov['quotes'][0]['id']}").get_json()
    assert len({v["url"] for v in detail["variants"]}) == 3
    assert len(client.get("/v1/quotes?limit=1&offset=1").get_json()["quotes"]) == 1
    speaker = client.get("/v1/speakers/ahmed-al-sharaa").get_json()
    assert "Muhammad al-Julani" in speaker["aliases"] and speaker["quote_ids"]
    assert any(sp["id"] == "dmitry-peskov" for sp in client.get("/v1/speakers").get_json()["speakers"])


@pytest.mark.parametrize(
    ("kwargs", "status", "field"),
    [
        ({"data": "{not json", "content_type": "application/json"}, 400, None),
        ({"data": "text=hello", "content_type": "application/x-www-form-urlencoded"}, 415, None),
        ({"json": {"text": "hello", "colour": "red"}}, 422, "colour"),
        ({"json": {}}, 422, "text"),
        ({"json": {"text": 42}}, 422, "text"),
        ({"json": {"text": "hello", "top_k": 11}}, 422, "top_k"),
        ({"json": {"text": "hello", "min_similarity": 2}}, 422, "min_similarity"),
        ({"json": {"text": "   "}}, 422, "text"),
        ({"json": {"text": "x" * 100_001}}, 422, "text"),
        ({"data": '{"text": "' + "x" * 210_000 + '"}', "content_type": "application/json"}, 413, None),
        ({"data": "[" * 100_000 + "]" * 100_000, "content_type": "application/json"}, 400, None),
    ],
)
def test_bad_requests_are_problems_naming_the_field(
    client: FlaskClient, kwargs: dict[str, Any], status: int, field: str | None
) -> None:
    problem = _problem(client.post("/v1/attributions", **kwargs), status)
    if field:
        assert field in {p["name"] for p in problem["invalid_params"]}


def test_unknown_ids_and_methods(client: FlaskClient) -> None:
    _problem(client.get("/v1/quotes/q_000000000000"), 404)
    _problem(client.get("/v1/speakers/nobody"), 404)
    _problem(client.delete("/v1/quotes"), 405)
    _problem(client.get("/v1/nothing-here"), 404)


ARTICLE = {
    "text": '"Talks with Damascus will resume in March," Kremlin spokesman Dmitry Peskov told reporters on Friday.',
    "outlet": "Test Wire",
    "url": "https://example.org/peskov-march",
    "published": "2025-02-20",
}


def test_adding_an_article_needs_a_key(client: FlaskClient) -> None:
    _problem(client.post("/v1/articles", json=ARTICLE), 401)
    _problem(client.post("/v1/articles", json=ARTICLE, headers={"X-API-Key": "wrong-key-0123456789"}), 401)
    _problem(client.post(f"/v1/articles?api_key={KEY}", json=ARTICLE), 400)
    added = client.post("/v1/articles", json=ARTICLE, headers={"X-API-Key": KEY})
    assert added.status_code == 200, added.get_json()
    body = added.get_json()
    assert body["status"] == "added" and body["new_quotes"]
    assert body["mentions"][0]["speaker"]["id"] == "dmitry-peskov"
    again = client.post("/v1/articles", json=ARTICLE, headers={"Authorization": f"Bearer {KEY}"}).get_json()
    assert again["status"] == "unchanged" and again["store_version"] == body["store_version"]
    found = client.post("/v1/attributions", json={"text": "Talks with Damascus will resume in March."}).get_json()
    assert found["results"][0]["match"]["label"] == "verbatim"


def test_writes_are_off_without_configured_keys(built_store: SqliteStore, embedder: Embedder, nlp: object) -> None:
    settings = Settings.from_env({})
    app = create_app(settings, Runtime.preloaded(settings, embedder, nlp, built_store))
    _problem(app.test_client().post("/v1/articles", json=ARTICLE, headers={"X-API-Key": KEY}), 403)


def test_not_ready_is_503_and_alive_is_200(tmp_path: Path) -> None:
    settings = dataclasses.replace(Settings.from_env({}), store_path=tmp_path / "missing.sqlite3")
    app = create_app(settings)
    runtime = app.extensions["quotes_runtime"]
    assert runtime.wait(120)
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    problem = _problem(client.get("/readyz"), 503)
    assert "python -m service build" in problem["detail"]
    response = client.post("/v1/attributions", json={"text": "hello world again"})
    _problem(response, 503)
    # The few seconds of a load, not the minute of the rate limiter's window (which set it before).
    assert response.headers["Retry-After"] == "5"
