"""Operations through the Flask test client: configuration, keys, rate limits, CORS, proxies, logs."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.api import create_app
from service.api.runtime import Runtime
from service.config import ConfigError, Settings
from service.embed import Embedder
from service.logs import logging_config
from service.store import SqliteStore

KEY_A = "ops-key-a-0123456789abcdef"
KEY_B = "ops-key-b-0123456789abcdef"


@pytest.fixture(scope="module")
def make_app(built_store: SqliteStore, embedder: Embedder, nlp: object) -> Any:
    """Apps over the session store (read-only here) with settings changed per test."""

    def make(**changes: Any) -> Flask:
        base = dataclasses.replace(Settings.from_env({}), store_path=built_store.path)
        settings = dataclasses.replace(base, **changes)
        return create_app(settings, Runtime.preloaded(settings, embedder, nlp, built_store))

    return make


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"QUOTES_WORKERS": "0"}, "QUOTES_WORKERS='0' is out of range"),
        ({"QUOTES_THREADS": "four"}, "QUOTES_THREADS='four' is not an integer"),
        ({"QUOTES_BIND": "localhost"}, "QUOTES_BIND='localhost' is not HOST:PORT"),
        ({"QUOTES_BIND": "0.0.0.0:99999"}, "is not HOST:PORT"),
        ({"QUOTES_LOG_FORMAT": "xml"}, "QUOTES_LOG_FORMAT='xml' is not one of json, text"),
        ({"QUOTES_RATE_LIMIT": "fast"}, "QUOTES_RATE_LIMIT='fast' is not a rate limit"),
        ({"QUOTES_RATE_LIMIT_STORAGE": "memcached://x"}, "must be memory:// or a redis:// URL"),
        ({"QUOTES_CORS_ORIGINS": "cms.example.org"}, "'cms.example.org' is not an origin"),
        ({"QUOTES_PARAPHRASE_THRESHOLD": "1.5"}, "QUOTES_PARAPHRASE_THRESHOLD='1.5' is out of range"),
        ({"QUOTES_API_KEYS": "short"}, "at least 16 characters"),
        ({"QUOTES_API_KEYS_FILE": "/nonexistent/keys"}, "cannot be read"),
        ({"QUOTES_READ_REQUIRES_KEY": "true"}, "needs QUOTES_API_KEYS"),
        ({"QUOTES_MMAP_THRESHOLD": "67108864"}, "QUOTES_MMAP_THRESHOLD='67108864' is out of range"),
    ],
)
def test_bad_configuration_names_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=None) as caught:
        Settings.from_env(env)
    assert message in str(caught.value)


def test_threshold_overrides_are_checked_against_each_other_and_the_calibration(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"related threshold 0\.9 is above the paraphrase threshold"):
        Settings.from_env({"QUOTES_RELATED_THRESHOLD": "0.9"}).check_start()
    Settings.from_env({"QUOTES_PARAPHRASE_THRESHOLD": "0.8", "QUOTES_RELATED_THRESHOLD": "0.5"}).check_start()
    with pytest.raises(ConfigError, match=r"QUOTES_STORE_PATH=.* does not exist"):
        Settings.from_env({"QUOTES_STORE_PATH": str(tmp_path / "none.sqlite3")}).check_start()
    with pytest.raises(ConfigError, match=r"QUOTES_MODEL_DIR=.* holds no model"):
        Settings.from_env({"QUOTES_MODEL_DIR": str(tmp_path)}).check_start()


def test_configured_thresholds_are_the_ones_used(make_app: Any) -> None:
    settings = dataclasses.replace(Settings.from_env({}), paraphrase_threshold=0.81, related_threshold=0.45)
    app = make_app(paraphrase_threshold=0.81, related_threshold=0.45)
    rt: Runtime = app.extensions["quotes_runtime"]
    # Runtime.preloaded takes a ready matcher; a loading runtime applies the settings: check that path.
    loading = Runtime(settings)
    loading._load()
    assert loading.get().matcher.thresholds.paraphrase == 0.81
    assert loading.get().matcher.thresholds.related == 0.45
    assert rt.get().matcher.thresholds.paraphrase != 0.81  # the preloaded one was built without overrides


def test_keys_rotation_revocation_and_query_string(make_app: Any, tmp_path: Path) -> None:
    key_file = tmp_path / "keys"
    key_file.write_text(f"# current and previous key during a rotation\n{KEY_A}\n{KEY_B}\n")
    settings = Settings.from_env({"QUOTES_API_KEYS_FILE": str(key_file), "QUOTES_READ_REQUIRES_KEY": "true"})
    client = make_app(api_keys=settings.api_keys, read_requires_key=True).test_client()
    assert client.get("/v1/quotes").status_code == 401
    assert client.get("/v1/quotes", headers={"X-API-Key": "wrong-key-0123456789"}).status_code == 401
    assert client.get("/v1/quotes", headers={"X-API-Key": KEY_A}).status_code == 200
    assert client.get("/v1/quotes", headers={"Authorization": f"Bearer {KEY_B}"}).status_code == 200
    refused = client.get(f"/v1/quotes?api_key={KEY_A}")
    assert refused.status_code == 400 and "never in the URL" in refused.get_json()["detail"]
    assert client.get("/healthz").status_code == 200  # probes never need a key
    assert client.get("/metrics").status_code == 200

    # Revocation: the key is removed from the file; a restart (or gunicorn HUP) re-reads it.
    key_file.write_text(f"{KEY_B}\n")
    revoked = Settings.from_env({"QUOTES_API_KEYS_FILE": str(key_file), "QUOTES_READ_REQUIRES_KEY": "true"})
    client = make_app(api_keys=revoked.api_keys, read_requires_key=True).test_client()
    response = client.get("/v1/quotes", headers={"X-API-Key": KEY_A})
    assert response.status_code == 401 and response.mimetype == "application/problem+json"
    assert client.get("/v1/quotes", headers={"X-API-Key": KEY_B}).status_code == 200


def test_a_write_without_a_key_is_refused_before_its_body_is_read(make_app: Any) -> None:
    client = make_app(api_keys=(KEY_A,)).test_client()
    response = client.post("/v1/articles", json={"unknown": True})
    assert response.status_code == 401  # not 422: no key, no schema feedback


def test_rate_limit_is_a_problem_with_retry_after_per_key(make_app: Any) -> None:
    client = make_app(api_keys=(KEY_A, KEY_B), rate_limit="3/minute").test_client()
    served = [client.get("/v1/speakers") for _ in range(3)]
    assert all(r.status_code == 200 and "Retry-After" not in r.headers for r in served)
    assert served[-1].headers["X-RateLimit-Remaining"] == "0"
    refused = client.get("/v1/speakers")
    assert refused.status_code == 429 and refused.mimetype == "application/problem+json"
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert refused.get_json()["detail"].startswith("rate limit exceeded: 3 per 1 minute")  # the limiter's sentence
    # Another endpoint has its own allowance; a keyed client its own counter; probes none.
    assert client.get("/v1/quotes").status_code == 200
    assert client.get("/v1/speakers", headers={"X-API-Key": KEY_A}).status_code == 200
    assert all(client.get("/healthz").status_code == 200 for _ in range(5))


def test_guessing_keys_is_rate_limited_per_address(make_app: Any) -> None:
    client = make_app(api_keys=(KEY_A,), rate_limit_write="2/minute").test_client()
    guesses = [client.post("/v1/articles", json={}, headers={"X-API-Key": f"guess-{i:020d}"}) for i in range(3)]
    assert [r.status_code for r in guesses] == [401, 401, 429]


def test_rate_limits_can_be_switched_off(make_app: Any) -> None:
    client = make_app(rate_limit="", rate_limit_write="").test_client()
    response = client.get("/v1/speakers")
    assert response.status_code == 200 and "X-RateLimit-Limit" not in response.headers


def test_cors_only_for_configured_origins(make_app: Any) -> None:
    client = make_app(cors_origins=("https://cms.example.org",)).test_client()
    preflight = client.options(
        "/v1/attributions",
        headers={
            "Origin": "https://cms.example.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-api-key",
        },
    )
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://cms.example.org"
    assert "x-api-key" in preflight.headers["Access-Control-Allow-Headers"].lower()
    other = client.get("/v1/speakers", headers={"Origin": "https://evil.example.com"})
    assert "Access-Control-Allow-Origin" not in other.headers
    allowed = client.get("/v1/speakers", headers={"Origin": "https://cms.example.org"})
    assert "X-Request-ID" in allowed.headers["Access-Control-Expose-Headers"]
    assert (
        "Access-Control-Allow-Origin"
        not in make_app().test_client().get("/v1/speakers", headers={"Origin": "https://cms.example.org"}).headers
    )


@pytest.fixture()
def log_lines() -> Iterator[io.StringIO]:
    """The service's JSON logging configuration, writing to a buffer instead of stdout."""
    stream = io.StringIO()
    config = logging_config(Settings.from_env({}))
    logging.config.dictConfig(config)
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    yield stream
    logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})
    logging.getLogger().handlers.clear()


def _request_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    lines = [json.loads(raw) for raw in stream.getvalue().splitlines()]
    return [ln for ln in lines if ln.get("logger") == "service.request"]


def test_each_request_is_one_json_line_with_its_id(make_app: Any, log_lines: io.StringIO) -> None:
    client: FlaskClient = make_app(trusted_proxies=1).test_client()
    response = client.post(
        "/v1/attributions",
        json={"text": "Peskov said Moscow will keep up a constant dialogue with the new Syrian authorities."},
        headers={"X-Request-ID": "ops-1", "X-Forwarded-For": "198.51.100.4"},
    )
    assert response.headers["X-Request-ID"] == "ops-1"
    (line,) = [ln for ln in _request_lines(log_lines) if ln["request_id"] == "ops-1"]
    assert line["route"] == "/v1/attributions" and line["status"] == 200 and line["segments"] >= 1
    assert line["remote_addr"] == "198.51.100.4" and line["level"] == "INFO" and isinstance(line["pid"], int)


def test_forwarded_headers_are_ignored_without_trusted_proxies(make_app: Any, log_lines: io.StringIO) -> None:
    client: FlaskClient = make_app().test_client()
    client.get("/v1/speakers", headers={"X-Request-ID": "ops-2", "X-Forwarded-For": "198.51.100.4"})
    (line,) = [ln for ln in _request_lines(log_lines) if ln["request_id"] == "ops-2"]
    assert line["remote_addr"] == "127.0.0.1"


def test_metrics_count_requests_by_route_and_status(make_app: Any) -> None:
    client = make_app().test_client()
    client.get("/v1/speakers")
    client.get("/v1/quotes/no-such-quote")
    for _ in range(2):  # the second time, the segment's vector comes from the cache
        client.post("/v1/attributions", json={"text": "A sentence nobody has sent before, about the ports of Syria."})
    text = client.get("/metrics").get_data(as_text=True)
    assert "quotes_encode_cache_hits_total 1.0" in text
    assert 'quotes_segments_matched_total{label="none"}' in text or "quotes_segments_matched_total{" in text
    assert 'quotes_http_request_duration_seconds_count{method="GET",status="200",url_rule="/v1/speakers"} 1.0' in text
    assert 'status="404",url_rule="/v1/quotes/<string:quote_id>"} 1.0' in text
    assert "quotes_store_quotes " in text and "quotes_store_quotes 0.0" not in text
