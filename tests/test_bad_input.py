"""Bad, hostile and merely unusual input through the real app (real model, a copy of the real store).

Every refusal is RFC 9457 problem+json naming what is wrong (`invalid_params` or a clear detail) and
never a 500; text that is odd but valid (right-to-left scripts, emoji, combining marks, control
characters) is processed. The app here has small limits so that the limit cases stay fast.
"""

from __future__ import annotations

import dataclasses
import io
import shutil
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import EnvironBuilder, TestResponse, run_wsgi_app

from service.api import create_app
from service.api.runtime import Runtime
from service.config import Settings
from service.embed import Embedder
from service.store import SqliteStore

KEY = "bad-input-key-0123456789abcdef"
MAX_TEXT = 1_000
MAX_BODY = 4_096
MAX_DOCS = 3


def _app(settings: Settings, embedder: Embedder, nlp: object, store: SqliteStore) -> Flask:
    return create_app(settings, Runtime.preloaded(settings, embedder, nlp, store))


@pytest.fixture(scope="module")
def store(built_store: SqliteStore, embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> SqliteStore:
    path = tmp_path_factory.mktemp("bad-input") / "quotes.sqlite3"
    shutil.copy(built_store.path, path)  # POST /v1/articles is called here: never the session store
    return SqliteStore(path, embedder.name, embedder.revision)


@pytest.fixture(scope="module")
def small(store: SqliteStore) -> Settings:
    """Small limits, so that the limit cases are cheap; a key for the write endpoint; no rate limits."""
    return dataclasses.replace(
        Settings.from_env({}),
        store_path=store.path,
        api_keys=(KEY,),
        max_text_chars=MAX_TEXT,
        max_body_bytes=MAX_BODY,
        max_batch_documents=MAX_DOCS,
        rate_limit="",
        rate_limit_write="",
    )


@pytest.fixture(scope="module")
def app(small: Settings, embedder: Embedder, nlp: object, store: SqliteStore) -> Flask:
    return _app(small, embedder, nlp, store)


@pytest.fixture()
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def problem(response: TestResponse, status: int, field: str | None = None, where: str = "body") -> dict[str, Any]:
    """Assert a problem+json answer; with `field`, that invalid_params names it (and where it is)."""
    text = response.get_data(as_text=True)
    assert response.status_code == status, text
    assert response.mimetype == "application/problem+json", text
    body: dict[str, Any] = response.get_json()
    assert body["status"] == status and body["title"] and body["detail"], body
    assert "Traceback" not in text and 'File "' not in text
    if field is not None:
        named = {(p["name"], p["in"]) for p in body.get("invalid_params", [])}
        assert (field, where) in named, body
        assert field in body["detail"], body
    return body


def segments_are_slices(text: str, body: dict[str, Any]) -> None:
    """Offsets index the text as sent, whatever its script."""
    assert body["results"], body
    for r in body["results"]:
        assert text[r["start"] : r["end"]] == r["text"], r


def post_json(client: FlaskClient, path: str, raw: str | bytes, **kwargs: Any) -> TestResponse:
    return client.post(path, data=raw, content_type="application/json", **kwargs)


# -- the body is not JSON, or not acceptable JSON ---------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "{not json",
        '{"text": "hello",}',
        "{'text': 'hello'}",
        '{"text": "hello"} {"text": "again"}',
        '{"text": "unterminated',
    ],
)
def test_invalid_json_is_400(client: FlaskClient, raw: str) -> None:
    assert "not valid JSON" in problem(post_json(client, "/v1/attributions", raw), 400)["detail"]


@pytest.mark.parametrize(
    "raw",
    [
        b'{"text": "\xff\xfe hello"}',  # not UTF-8 at all
        b'{"text": "caf\xe9 au lait"}',  # Latin-1
        b'{"text": "\xed\xa0\x80 surrogate"}',  # a surrogate encoded as if it were UTF-8
        '{"text": "UTF-16"}'.encode("utf-16"),  # JSON on the wire is UTF-8 (RFC 8259)
    ],
    ids=["ff-fe", "latin-1", "encoded-surrogate", "utf-16"],
)
def test_body_not_utf8_is_400(client: FlaskClient, raw: bytes) -> None:
    assert "not valid JSON" in problem(post_json(client, "/v1/attributions", raw), 400)["detail"]


@pytest.mark.parametrize(
    ("path", "raw", "field"),
    [
        ("/v1/attributions", r'{"text": "a lone \ud800 surrogate"}', "text"),
        ("/v1/attributions", r'{"text": "hello", "speaker": "\udfff"}', "speaker"),
        ("/v1/attributions/batch", r'{"documents": [{"text": "ok"}, {"text": "\udc00"}]}', "documents.1.text"),
        ("/v1/similarity", r'{"original": "ok", "rendering": "\ud83d"}', "rendering"),
        ("/v1/extractions", r'{"text": "\ud800\ud800"}', "text"),
    ],
)
def test_json_escaped_lone_surrogate_is_422_naming_the_field(
    client: FlaskClient, path: str, raw: str, field: str
) -> None:
    """Valid JSON syntax, but no Unicode text: it was a 500 (UnicodeEncodeError in the pipeline)."""
    body = problem(post_json(client, path, raw), 422, field)
    assert "surrogate" in body["detail"]


@pytest.mark.parametrize("content_type", ["text/plain", None, "application/x-www-form-urlencoded"])
def test_body_not_declared_as_json_is_415(client: FlaskClient, content_type: str | None) -> None:
    kwargs = {"content_type": content_type} if content_type else {}
    response = client.post("/v1/attributions", data='{"text": "hello there"}', **kwargs)
    assert "application/json" in problem(response, 415)["detail"]


def test_body_over_the_cap_is_413(client: FlaskClient) -> None:
    raw = '{"text": "' + "x" * MAX_BODY + '"}'
    assert str(MAX_BODY) in problem(post_json(client, "/v1/attributions", raw), 413)["detail"]


def _streamed(app: Flask, payload: bytes) -> TestResponse:
    """A chunked body: no Content-Length, the server (gunicorn) terminates the stream."""
    builder = EnvironBuilder(
        path="/v1/attributions", method="POST", input_stream=io.BytesIO(payload), content_type="application/json"
    )
    environ = builder.get_environ()
    environ.pop("CONTENT_LENGTH", None)
    environ["wsgi.input_terminated"] = True
    environ["HTTP_TRANSFER_ENCODING"] = "chunked"
    body, status, headers = run_wsgi_app(app, environ)
    return TestResponse(body, status, headers, request=builder.get_request())


def test_streamed_body_within_the_cap_is_read(app: Flask) -> None:
    response = _streamed(app, b'{"text": "A streamed request body."}')
    assert response.status_code == 200, response.get_data(as_text=True)


@pytest.mark.parametrize(
    "payload",
    [b'{"text": "' + b"x" * MAX_BODY + b'"}', b'{"text": "hello there"}' + b" " * MAX_BODY],
    ids=["long-text", "padded"],
)
def test_streamed_body_over_the_cap_is_413(app: Flask, payload: bytes) -> None:
    problem(_streamed(app, payload), 413)


@pytest.mark.parametrize(
    "raw",
    [
        "[" * 2_000 + "]" * 2_000,
        '{"text": ' + "[" * 2_000 + "]" * 2_000 + "}",
        '{"documents": ' + "[" * 2_000 + "]" * 2_000 + "}",
    ],
    ids=["array", "in-a-field", "in-a-list"],
)
def test_deeply_nested_json_is_400(client: FlaskClient, raw: str) -> None:
    assert len(raw) < MAX_BODY  # the depth is refused, not the size
    path = "/v1/attributions/batch" if "documents" in raw else "/v1/attributions"
    assert "nested too deeply" in problem(post_json(client, path, raw), 400)["detail"]


def test_nested_but_parseable_json_is_422_naming_the_field(client: FlaskClient) -> None:
    problem(post_json(client, "/v1/attributions", '{"text": ' + "[" * 200 + "]" * 200 + "}"), 422, "text")


@pytest.mark.parametrize(
    ("path", "body"),
    [("/v1/attributions", [1, 2]), ("/v1/attributions", "text"), ("/v1/attributions/batch", {"documents": [[1]]})],
)
def test_body_that_is_not_an_object_is_422(client: FlaskClient, path: str, body: Any) -> None:
    field = "documents.0" if path.endswith("batch") else "body"
    assert "JSON object" in problem(client.post(path, json=body), 422, field)["detail"]


# -- fields: missing, unknown, wrong type, out of range ------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/attributions", {}, "text"),
        ("/v1/attributions", {"speaker": "Dmitry Peskov"}, "text"),
        ("/v1/similarity", {"original": "We will continue the dialogue."}, "rendering"),
        ("/v1/extractions", {}, "text"),
        ("/v1/attributions/batch", {}, "documents"),
        ("/v1/attributions/batch", {"documents": [{"text": "ok"}, {"id": "b"}]}, "documents.1.text"),
        ("/v1/articles", {"text": "Some text.", "outlet": "Wire"}, "url"),
    ],
)
def test_missing_required_field_is_422(client: FlaskClient, path: str, body: dict[str, Any], field: str) -> None:
    problem(client.post(path, json=body, headers={"X-API-Key": KEY}), 422, field)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/attributions", {"text": "hello", "colour": "red"}, "colour"),
        ("/v1/attributions", {"text": "hello", "Text": "hello"}, "Text"),
        ("/v1/similarity", {"original": "a", "rendering": "b", "threshold": 0.5}, "threshold"),
        ("/v1/attributions/batch", {"documents": [{"text": "ok", "colour": "red"}]}, "documents.0.colour"),
    ],
)
def test_unknown_field_is_422(client: FlaskClient, path: str, body: dict[str, Any], field: str) -> None:
    assert "Unknown field" in problem(client.post(path, json=body), 422, field)["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": 42}, "text"),
        ({"text": ["hello"]}, "text"),
        ({"text": None}, "text"),
        ({"text": "hello", "top_k": "3"}, "top_k"),
        ({"text": "hello", "top_k": 1.5}, "top_k"),  # was silently truncated to 1
        ({"text": "hello", "top_k": True}, "top_k"),
        ({"text": "hello", "min_similarity": "0.5"}, "min_similarity"),
        ({"text": "hello", "speaker": 5}, "speaker"),
    ],
)
def test_wrong_type_is_422(client: FlaskClient, body: dict[str, Any], field: str) -> None:
    problem(client.post("/v1/attributions", json=body), 422, field)


def test_integral_float_is_an_integer(client: FlaskClient) -> None:
    """JSON has one number type: 3.0 is the integer 3 (JSON Schema agrees)."""
    assert client.post("/v1/attributions", json={"text": "We will talk.", "top_k": 3.0}).status_code == 200


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ('{"text": "hello", "top_k": ' + "1" + "0" * 40 + "}", "top_k"),
        ('{"text": "hello", "top_k": 1e400}', "top_k"),
        ('{"text": "hello", "min_similarity": 1e400}', "min_similarity"),
        ('{"text": "hello", "min_similarity": -1e400}', "min_similarity"),
        ('{"text": "hello", "min_similarity": 1' + "0" * 400 + "}", "min_similarity"),
        ('{"text": "hello", "min_similarity": NaN}', "min_similarity"),
        ('{"text": "hello", "min_similarity": Infinity}', "min_similarity"),
    ],
)
def test_huge_and_special_numbers_are_422(client: FlaskClient, raw: str, field: str) -> None:
    problem(post_json(client, "/v1/attributions", raw), 422, field)


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"top_k": 0}, "top_k"),
        ({"top_k": 11}, "top_k"),
        ({"top_k": -1}, "top_k"),
        ({"min_similarity": -0.01}, "min_similarity"),
        ({"min_similarity": 1.01}, "min_similarity"),
    ],
)
def test_out_of_range_is_422(client: FlaskClient, extra: dict[str, Any], field: str) -> None:
    problem(client.post("/v1/attributions", json={"text": "hello", **extra}), 422, field)


@pytest.mark.parametrize("top_k", [1, 10])
def test_range_ends_are_accepted(client: FlaskClient, top_k: int) -> None:
    body = {"text": "We will continue dialogue with the Syrian authorities.", "top_k": top_k}
    results = client.post("/v1/attributions", json=body).get_json()["results"]
    assert results and results[0]["match"]["label"] == "verbatim"
    assert all(len(r["alternatives"]) + (r["match"] is not None) <= top_k for r in results)


# -- text: empty, blank, too long -----------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", " ", "   \n\t  ", "\u3000\xa0\u2003", "\x1c\x1f"])
@pytest.mark.parametrize(("path", "field"), [("/v1/attributions", "text"), ("/v1/similarity", "original")])
def test_empty_or_blank_text_is_422(client: FlaskClient, text: str, path: str, field: str) -> None:
    body = {"text": text} if field == "text" else {"original": text, "rendering": "We will talk."}
    problem(client.post(path, json=body), 422, field)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/attributions", {"text": "a " * (MAX_TEXT // 2) + "b"}, "text"),
        ("/v1/extractions", {"text": "x" * (MAX_TEXT + 1)}, "text"),
        ("/v1/similarity", {"original": "ok", "rendering": "y" * (MAX_TEXT + 1)}, "rendering"),
        ("/v1/attributions/batch", {"documents": [{"text": "ok"}, {"text": "z" * (MAX_TEXT + 1)}]}, "documents.1.text"),
    ],
)
def test_text_over_the_cap_is_422(client: FlaskClient, path: str, body: dict[str, Any], field: str) -> None:
    assert f"{MAX_TEXT:,}" in problem(client.post(path, json=body), 422, field)["detail"]


def test_text_at_the_cap_is_accepted(client: FlaskClient) -> None:
    text = ("We will continue dialogue with the Syrian authorities. " * 20)[:MAX_TEXT]
    assert len(text) == MAX_TEXT
    response = client.post("/v1/attributions", json={"text": text})
    assert response.status_code == 200, response.get_data(as_text=True)


def test_batch_over_its_cap_is_422_naming_documents(client: FlaskClient) -> None:
    docs = {"documents": [{"text": "hello there"}] * (MAX_DOCS + 1)}
    body = problem(client.post("/v1/attributions/batch", json=docs), 422, "documents")
    assert f"at most {MAX_DOCS}" in body["detail"]
    problem(client.post("/v1/attributions/batch", json={"documents": []}), 422, "documents")


# -- unusual but valid text -------------------------------------------------------------------------------

UNUSUAL = {
    "arabic": "قال المتحدث باسم الكرملين إن موسكو ستواصل الحوار مع السلطات السورية الجديدة.",
    "hebrew": 'הדובר אמר: "אנחנו נמשיך בדיאלוג עם השלטונות בסוריה," כך דווח.',
    "mixed-bidi": "Peskov said \u202bموسكو ستواصل الحوار\u202c and \u2067שלום\u2069 in one sentence.",
    "emoji": "We will continue dialogue 🤝🇷🇺🇸🇾 with the Syrian authorities 👍🏽 said the Kremlin.",
    "combining": "Z\u0351\u036b\u0343a\u0362l\u0338g\u0336o said: \u201ccafe\u0301 n\u0303o\u0308\u201d, again.",
    "astral": "𝔗𝔥𝔢 𝔎𝔯𝔢𝔪𝔩𝔦𝔫 said 𝕥𝕙𝕒𝕥 the talks will resume.",
}


@pytest.mark.parametrize("text", list(UNUSUAL.values()), ids=list(UNUSUAL))
def test_unusual_scripts_are_processed(client: FlaskClient, text: str) -> None:
    response = client.post("/v1/attributions", json={"text": text})
    assert response.status_code == 200, response.get_data(as_text=True)
    segments_are_slices(text, response.get_json())
    extracted = client.post("/v1/extractions", json={"text": text})
    assert extracted.status_code == 200 and isinstance(extracted.get_json()["mentions"], list)
    compared = client.post("/v1/similarity", json={"original": text, "rendering": text}).get_json()
    assert compared["label"] == "verbatim" and compared["similarity"] == pytest.approx(1.0, abs=1e-3)


CONTROLS = {
    "nul": '"We will continue dialogue\x00 with the Syrian authorities," Peskov said.',
    "bell-escape-del": "Peskov\x07 said \x1b[31mthat\x1b[0m talks\x7f will resume.",
    "zero-width-bom": "\ufeffPeskov said\u200b that talks\u200d will resume.",
    "c1": "Peskov said\x85 that talks\x9b will resume.",
}


@pytest.mark.parametrize("text", list(CONTROLS.values()), ids=list(CONTROLS))
def test_control_characters_in_text_are_processed(client: FlaskClient, text: str) -> None:
    """Deliberate: the read-only endpoints take control characters (NUL included) as characters of the
    text, so that offsets index the text exactly as sent; nothing is stored."""
    response = client.post("/v1/attributions", json={"text": text})
    assert response.status_code == 200, response.get_data(as_text=True)
    segments_are_slices(text, response.get_json())
    assert client.post("/v1/extractions", json={"text": text}).status_code == 200


def test_nul_in_an_article_is_422_and_nothing_is_stored(client: FlaskClient) -> None:
    """Deliberate: the store refuses NUL, as the command line refuses a text file holding NUL bytes."""
    before = client.get("/v1/info").get_json()["store"]
    article = {"text": CONTROLS["nul"], "outlet": "Wire", "url": "https://example.org/nul"}
    body = problem(client.post("/v1/articles", json=article, headers={"X-API-Key": KEY}), 422, "text")
    assert "NUL" in body["detail"]
    assert client.get("/v1/info").get_json()["store"] == before


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"url": "https://localhost/x"}, "url"),
        ({"url": "https://example.org/a b"}, "url"),
        ({"url": "javascript:alert(1)"}, "url"),
        ({"url": "https://example.org/\ud800"}, "url"),
        ({"outlet": "   "}, "outlet"),
        ({"published": "yesterday"}, "published"),
        ({"published": "2025-02-30"}, "published"),
        ({"language": "ru"}, "language"),
    ],
)
def test_bad_article_fields_are_422(client: FlaskClient, extra: dict[str, str], field: str) -> None:
    article = {"text": "Peskov said talks will resume.", "outlet": "Wire", "url": "https://example.org/a", **extra}
    problem(client.post("/v1/articles", json=article, headers={"X-API-Key": KEY}), 422, field)


def test_ten_thousand_lines_are_processed(embedder: Embedder, nlp: object, store: SqliteStore, small: Settings) -> None:
    """Default caps (100,000 characters, 1 MiB): 10,000 short lines fit and are answered in the request."""
    roomy = dataclasses.replace(small, max_text_chars=100_000, max_body_bytes=1_048_576)
    client = _app(roomy, embedder, nlp, store).test_client()
    text = "a\n" * 10_000
    response = client.post("/v1/attributions", json={"text": text})
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    for r in response.get_json()["results"]:
        assert text[r["start"] : r["end"]] == r["text"]
    many = "Peskov said talks will resume.\n" * 3_300  # 102,300 characters
    problem(client.post("/v1/attributions", json={"text": many}), 422, "text")


# -- URLs and methods --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("/v1/quotes/q_000000000000", "q_000000000000"),
        ("/v1/speakers/nobody-at-all", "nobody-at-all"),
        ("/v1/speakers/%E2%80%AE%00", None),
        ("/v1/speakers/..%2F..%2Fetc%2Fpasswd", None),
        ("/v1/nothing-here", None),
    ],
)
def test_unknown_id_or_path_is_404(client: FlaskClient, url: str, needle: str | None) -> None:
    body = problem(client.get(url), 404)
    if needle:
        assert needle in body["detail"]


@pytest.mark.parametrize(
    ("method", "url", "allowed"),
    [
        ("DELETE", "/v1/quotes", "GET"),
        ("GET", "/v1/attributions", "POST"),
        ("DELETE", "/v1/speakers/dmitry-peskov", "GET"),
        ("PUT", "/v1/attributions", "POST"),
        ("POST", "/v1/quotes", "GET"),
        ("PATCH", "/healthz", "GET"),
    ],
)
def test_wrong_method_is_405_with_allow(client: FlaskClient, method: str, url: str, allowed: str) -> None:
    response = client.open(url, method=method)
    problem(response, 405)
    assert allowed in {m.strip() for m in response.headers["Allow"].split(",")}, response.headers


def test_post_to_an_unknown_path_is_404(client: FlaskClient) -> None:
    problem(client.post("/v1/nothing-here"), 404)


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("limit=abc", ["limit"]),
        ("limit=0", ["limit"]),
        ("limit=101", ["limit"]),
        ("limit=99999999999999999999999", ["limit"]),
        ("offset=-1", ["offset"]),
        ("offset=x&limit=0", ["offset", "limit"]),
        ("disputed=maybe", ["disputed"]),
        ("q=", ["q"]),
    ],
)
def test_bad_query_string_is_422_in_query(client: FlaskClient, query: str, fields: list[str]) -> None:
    response = client.get(f"/v1/quotes?{query}")
    for field in fields:
        problem(response, 422, field, where="query")


@pytest.mark.parametrize("q", ['"', "NEAR(", "'; DROP TABLE quotes; --", "x\\y", "*"])
def test_search_syntax_in_q_is_plain_text(client: FlaskClient, q: str) -> None:
    response = client.get("/v1/quotes", query_string={"q": q})
    assert response.status_code == 200, response.get_data(as_text=True)


def test_like_wildcards_in_q_are_literal(client: FlaskClient) -> None:
    assert client.get("/v1/quotes", query_string={"q": "dialogue"}).get_json()["total"] > 0
    assert client.get("/v1/quotes", query_string={"q": "di_logue"}).get_json()["total"] == 0
