"""End to end: the real gunicorn, started by the shipped start script with the production settings.

Two workers on a free loopback port, a private copy of the store, JSON logs captured from stdout.
The shutdown test runs last: it stops the server.
"""

from __future__ import annotations

import http.client
import json
import re
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from servers import START, Server, free_port, server_env, start_server

from service.config import REPO_ROOT
from service.store import SqliteStore

pytestmark = pytest.mark.slow

KEY = "e2e-key-0123456789abcdef"
PESKOV = (
    "Kremlin spokesman Dmitry Peskov stressed that Moscow will keep up a constant dialogue with the new Syrian "
    "authorities."
)


@pytest.fixture(scope="module")
def server(built_store: SqliteStore, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("e2e")
    store_path = tmp / "quotes.sqlite3"
    shutil.copy(built_store.path, store_path)
    with start_server(
        tmp,
        store_path,
        QUOTES_WORKERS="2",
        QUOTES_THREADS="4",
        QUOTES_API_KEYS=KEY,
        QUOTES_LOG_LEVEL="debug",  # "request started" lines tell the shutdown test a request is in flight
        QUOTES_TRUSTED_PROXIES="1",
        QUOTES_GRACEFUL_TIMEOUT="60",
    ) as srv:
        yield srv


def test_main_endpoints_answer_over_http(server: Server) -> None:
    assert server.request("GET", "/healthz")[0] == 200
    assert server.request("GET", "/readyz")[0] == 200
    status, _, body = server.request("GET", "/v1/info")
    assert status == 200 and json.loads(body)["store"]["quotes"] > 0
    status, _, body = server.request("GET", "/v1/quotes?limit=2")
    assert status == 200 and len(json.loads(body)["quotes"]) == 2
    status, _, body = server.request("POST", "/v1/attributions", {"text": PESKOV})
    result = json.loads(body)["results"][0]
    assert status == 200
    assert result["match"]["speaker"]["name"] == "Dmitry Peskov"
    assert server.request("GET", "/openapi.json")[0] == 200


def test_request_id_round_trip_and_log_line(server: Server) -> None:
    status, headers, _ = server.request(
        "POST", "/v1/attributions", {"text": PESKOV}, {"X-Request-ID": "e2e-rid-1", "X-Forwarded-For": "203.0.113.9"}
    )
    assert status == 200 and headers["x-request-id"] == "e2e-rid-1"
    line = server.wait_for_log(lambda ln: ln.get("request_id") == "e2e-rid-1" and ln.get("message") == "request")
    assert line["method"] == "POST" and line["route"] == "/v1/attributions" and line["status"] == 200
    assert line["segments"] == 1 and line["duration_ms"] > 0 and line["level"] == "INFO"
    assert line["remote_addr"] == "203.0.113.9"  # one trusted proxy: the client it forwarded for

    # An id that could forge log content is replaced by one of ours, and still returned.
    status, headers, _ = server.request("GET", "/v1/info", headers={"X-Request-ID": "bad id\twith spaces"})
    assert status == 200 and re.fullmatch(r"[0-9a-f]{32}", headers["x-request-id"])


def test_errors_are_problem_json_with_the_request_id(server: Server) -> None:
    status, headers, body = server.request("POST", "/v1/attributions", b'{"text": ', {"X-Request-ID": "e2e-bad"})
    assert status == 400 and headers["content-type"] == "application/problem+json"
    assert headers["x-request-id"] == "e2e-bad" and json.loads(body)["status"] == 400
    status, headers, body = server.request("POST", "/v1/attributions", {"text": PESKOV, "top_k": 99})
    assert status == 422 and json.loads(body)["invalid_params"][0]["name"] == "top_k"
    status, _, _ = server.request("POST", "/v1/articles", {"text": "x"})
    assert status == 401


def test_a_client_that_uploads_before_it_reads_gets_the_413(server: Server) -> None:
    """urllib writes the whole body, then reads: a 5 MB body (cap 1 MiB) must end in the 413, not a
    broken pipe, whether its length is announced or it comes chunked."""
    url = f"http://127.0.0.1:{server.port}/v1/attributions"
    body = b'{"text": "' + b"a" * 5_000_000 + b'"}'
    announced = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    chunked = urllib.request.Request(
        url, data=iter([body[i : i + 65536] for i in range(0, len(body), 65536)]),
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
    )  # fmt: skip
    for request in (announced, chunked):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=60)  # noqa: S310 (a loopback http URL built here)
        assert refused.value.code == 413 and refused.value.headers["Content-Type"] == "application/problem+json"
        assert "larger than the 1048576 bytes" in json.loads(refused.value.read())["detail"]


def test_a_refused_body_leaves_a_kept_alive_connection_usable(server: Server) -> None:
    """The drain reads exactly the announced body: the next request on the connection is read as one."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.request("POST", "/v1/similarity", body=b"x" * 2_000_000, headers={"Content-Type": "application/json"})
        first = conn.getresponse()
        assert first.status == 413 and first.getheader("Connection") != "close"
        first.read()
        conn.request("GET", "/healthz")
        assert conn.getresponse().status == 200
    finally:
        conn.close()


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line[: line.index("}")]))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_add_up_across_workers(server: Server) -> None:
    count = "quotes_http_request_duration_seconds_count"
    before = _metric(server.request("GET", "/metrics")[2].decode(), count, url_rule="/v1/speakers", status="200")
    sent: list[str] = []
    with ThreadPoolExecutor(8) as pool:
        for round_ in range(5):  # until both workers have served some of them
            ids = [f"m-{round_}-{i}" for i in range(24)]
            statuses = list(
                pool.map(lambda rid: server.request("GET", "/v1/speakers", headers={"X-Request-ID": rid})[0], ids)
            )
            assert statuses == [200] * len(ids)
            sent += ids
            wanted = set(sent)
            pids = {
                ln["pid"] for ln in server.logs() if ln.get("request_id") in wanted and ln.get("message") == "request"
            }
            if len(pids) == 2:
                break
    assert len(pids) == 2, "every request went to one worker: the test proves nothing"
    text = server.request("GET", "/metrics")[2].decode()
    assert _metric(text, count, url_rule="/v1/speakers", status="200") - before == len(sent)
    assert _metric(text, "quotes_segments_matched_total") >= 2  # the Peskov requests above
    assert re.search(r"^quotes_store_quotes(\{[^}]*\})? [1-9]", text, re.M)
    assert re.search(r"^quotes_model_encode_seconds_count(\{[^}]*\})? [1-9]", text, re.M)


def test_bad_configuration_stops_the_start_with_one_message(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(START)],
        env=server_env(QUOTES_WORKERS="lots", QUOTES_BIND=f"127.0.0.1:{free_port()}"),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "configuration error: QUOTES_WORKERS='lots' is not an integer" in output
    assert "Traceback" not in output


def test_hup_reloads_workers_revoking_a_removed_key_and_keeping_the_metrics(
    built_store: SqliteStore, tmp_path: Path
) -> None:
    old, new = "e2e-old-key-0123456789abcdef", "e2e-new-key-0123456789abcdef"
    key_file = tmp_path / "keys"
    key_file.write_text(f"{old}\n")
    store_path = tmp_path / "quotes.sqlite3"
    shutil.copy(built_store.path, store_path)
    env = {"QUOTES_WORKERS": "1", "QUOTES_API_KEYS_FILE": str(key_file), "QUOTES_READ_REQUIRES_KEY": "true"}
    with start_server(tmp_path, store_path, **env) as server:
        assert server.request("GET", "/v1/speakers", headers={"X-API-Key": old})[0] == 200
        count = "quotes_http_request_duration_seconds_count"
        before = _metric(server.request("GET", "/metrics")[2].decode(), count, url_rule="/v1/speakers")

        key_file.write_text(f"{new}\n")  # rotation done: the old key is revoked
        server.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 120
        while sum(ln.get("message") == "ready" for ln in server.logs()) < 2:  # the new worker
            assert time.monotonic() < deadline, "no worker came back after HUP"
            time.sleep(0.2)
        assert server.request("GET", "/v1/speakers", headers={"X-API-Key": old})[0] == 401
        assert server.request("GET", "/v1/speakers", headers={"X-API-Key": new})[0] == 200
        after = _metric(server.request("GET", "/metrics")[2].decode(), count, url_rule="/v1/speakers")
        assert after == before + 2  # the samples of the worker before the reload are still counted


def test_sigterm_lets_in_flight_requests_finish_and_leaves_the_store_consistent(server: Server) -> None:
    articles = [p.read_text(encoding="utf-8") for p in sorted((REPO_ROOT / "corpus").glob("*.txt"))]
    corpus_text = "\n\n".join(articles)  # about 2,700 words: seconds of work, not milliseconds
    article = {
        "text": articles[0]
        + '\n\n"We expect a second round of talks in Damascus in March," a Syrian official told reporters.',
        "outlet": "E2E Wire",
        "url": "https://e2e.example.org/second-round",
        "title": "Second round expected",
        "language": "en",
        "published": "2025-02-01",
    }
    results: dict[str, tuple[int, float]] = {}

    def send(name: str, method: str, path: str, body: Any, headers: dict[str, str]) -> None:
        status = server.request(method, path, body, {**headers, "X-Request-ID": name}, timeout=120)[0]
        results[name] = (status, time.monotonic())

    threads = [
        threading.Thread(target=send, args=("slow-read", "POST", "/v1/attributions", {"text": corpus_text}, {})),
        threading.Thread(target=send, args=("slow-write", "POST", "/v1/articles", article, {"X-API-Key": KEY})),
    ]
    for t in threads:
        t.start()
    for name in ("slow-read", "slow-write"):
        server.wait_for_log(lambda ln, n=name: ln.get("request_id") == n and ln.get("message") == "request started")
    signalled = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    for t in threads:
        t.join(timeout=120)
    assert server.process.wait(timeout=90) == 0
    assert results["slow-read"][0] == 200 and results["slow-write"][0] == 200, results
    # Both were still being served when the signal came: they finished after it.
    assert min(finished for _, finished in results.values()) > signalled
    with sqlite3.connect(server.store_path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        urls = {row[0] for row in conn.execute("SELECT url FROM articles")}
    assert article["url"] in urls
