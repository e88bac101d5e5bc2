"""Soak: many concurrent clients send a mixed load of good and bad requests to the real server.

    .venv/bin/python -m bench.soak [--clients 16] [--requests-per-client 60] [--workers 2] [--threads 4] [--seed 0]

Starts gunicorn with the shipped start script and the production settings (rate limits off, worker
recycling off so that a leak cannot hide behind a restart) on a free loopback port and a private copy
of the store, warms it up, then runs the measured phase. Prints the answers by status class, latency
percentiles per endpoint and overall, throughput, and the memory (RSS) of each worker after the
warm-up and after the run. Exits 1 when an answer was not what its request should get.

About 15 % of the requests are bad on purpose (invalid JSON, unknown fields, wrong content type,
unknown ids, over-cap values): each must get a 4xx application/problem+json, every other request a
2xx. The mix is drawn from the corpus and from the store's own quotes and speakers, with a fixed seed.

    (run from the repository root: .venv/bin/python -m bench.soak ...)
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.server import REPO_ROOT, launch_on_copy, worker_rss
from service.corpus import load_corpus

CORPUS = REPO_ROOT / "corpus"
PROBLEM = "application/problem+json"

# -- the load --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Call:
    endpoint: str  # the row of the report: method, route and what kind of input
    method: str
    path: str
    body: bytes | None = None
    content_type: str = "application/json"
    bad: bool = False  # sent wrong on purpose: the answer must be a 4xx problem+json


@dataclass(frozen=True, slots=True)
class Outcome:
    call: Call
    status: int  # 0: no response (connection refused or reset, timeout)
    seconds: float
    wrong: str | None  # why the answer is not what the request should get; None when it is


@dataclass(frozen=True, slots=True)
class Latency:
    count: int
    p50: float  # milliseconds
    p95: float
    p99: float


@dataclass
class SoakReport:
    clients: int
    requests: int  # in the measured phase
    seconds: float
    statuses: Counter[str]  # "2xx", "4xx", "5xx", "other", "no response"
    latency: dict[str, Latency]  # by endpoint, and "all"
    bad_requests: int
    wrong: list[str] = field(default_factory=list)  # answers that were not what the request should get
    rss_before: dict[int, int] = field(default_factory=dict)  # bytes by worker pid, after the warm-up
    rss_after: dict[int, int] = field(default_factory=dict)

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def table(self) -> str:
        rows = [f"{'endpoint':<44} {'n':>5} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9}"]
        for name, lat in sorted(self.latency.items(), key=lambda kv: (kv[0] == "all", kv[0])):
            rows.append(f"{name:<44} {lat.count:>5} {lat.p50:>9.1f} {lat.p95:>9.1f} {lat.p99:>9.1f}")
        statuses = ", ".join(f"{k} {self.statuses.get(k, 0)}" for k in ("2xx", "4xx", "5xx", "other", "no response"))
        rows.append(f"answers: {statuses}; bad requests sent {self.bad_requests}; wrong answers {len(self.wrong)}")
        rows.append(
            f"throughput: {self.throughput:.1f} requests/s ({self.requests} requests from {self.clients} clients "
            f"in {self.seconds:.1f} s)"
        )
        mib = 1024 * 1024
        for pid in sorted(self.rss_before.keys() | self.rss_after.keys()):
            before, after = self.rss_before.get(pid), self.rss_after.get(pid)
            growth = f"{(after - before) / mib:+.1f} MiB" if before and after else "worker not there throughout"
            rows.append(
                f"worker {pid} RSS: {before / mib if before else 0:.1f} MiB after warm-up, "
                f"{after / mib if after else 0:.1f} MiB after the run ({growth})"
            )
        rows += [f"wrong: {w}" for w in self.wrong[:20]]
        return "\n".join(rows)


@dataclass(frozen=True, slots=True)
class Material:
    """What requests are made of: corpus paragraphs and sentences, the store's quotes and speakers."""

    sentences: list[str]
    paragraphs: list[str]
    quoted_paragraphs: list[str]
    quotes: list[tuple[str, str, str | None]]  # id, text, speaker name
    speaker_ids: list[str]
    words: list[str]


def _get_json(port: int, path: str) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status} {body[:200]!r}")
        return json.loads(body)
    finally:
        conn.close()


def gather_material(port: int) -> Material:
    paragraphs = [
        " ".join(p.split())
        for a in load_corpus(CORPUS)
        for p in re.split(r"\n\s*\n", a.text)
        if len(p.split()) >= 25 and not p.lstrip().startswith(("#", "*", "["))
    ]
    sentences = [s for p in paragraphs for s in re.split(r"(?<=[.!?])\s+(?=[A-Z\"“])", p) if 6 <= len(s.split()) <= 45]
    page = _get_json(port, "/v1/quotes?limit=100")
    quotes = [(q["id"], q["text"], q["speaker"]["name"]) for q in page["quotes"]]
    speaker_ids = [sp["id"] for sp in _get_json(port, "/v1/speakers")["speakers"] if sp["quotes"]]
    words = sorted({w for _, text, _ in quotes for w in re.findall(r"[A-Za-z]{6,}", text)})
    if not (quotes and speaker_ids and sentences and paragraphs):
        raise RuntimeError("the store or the corpus is empty: nothing to make requests of")
    quoted = [p for p in paragraphs if re.search(r"[\"“”]", p)] or paragraphs
    return Material(sentences, paragraphs, quoted, quotes, speaker_ids, words)


def _post(endpoint: str, path: str, body: Any) -> Call:
    return Call(endpoint, "POST", path, json.dumps(body).encode())


def _attribution_sentence(rng: random.Random, m: Material) -> Call:
    if rng.random() < 0.5:
        _, text, name = rng.choice(m.quotes)
        text = f"“{text.rstrip('.')},” {name} said." if name and rng.random() < 0.5 else text
    else:
        text = rng.choice(m.sentences)
    return _post("POST /v1/attributions (sentence)", "/v1/attributions", {"text": text, "top_k": rng.randint(1, 5)})


def _attribution_paragraph(rng: random.Random, m: Material) -> Call:
    text = "\n\n".join(rng.sample(m.paragraphs, rng.randint(1, 3)))
    return _post("POST /v1/attributions (paragraphs)", "/v1/attributions", {"text": text})


def _similarity(rng: random.Random, m: Material) -> Call:
    original = rng.choice(m.quotes)[1]
    words = original.split()
    change = rng.randrange(3)
    if change == 1 and len(words) > 3:
        del words[rng.randrange(len(words))]
    elif change == 2:
        words.insert(rng.randrange(len(words) + 1), "not")
    return _post("POST /v1/similarity", "/v1/similarity", {"original": original, "rendering": " ".join(words)})


def _extraction(rng: random.Random, m: Material) -> Call:
    return _post("POST /v1/extractions", "/v1/extractions", {"text": rng.choice(m.quoted_paragraphs)})


def _search(rng: random.Random, m: Material) -> Call:
    return Call("GET /v1/quotes?q=", "GET", f"/v1/quotes?q={rng.choice(m.words)}&limit={rng.randint(1, 20)}")


def _by_speaker(rng: random.Random, m: Material) -> Call:
    return Call("GET /v1/quotes?speaker=", "GET", f"/v1/quotes?speaker={rng.choice(m.speaker_ids)}&limit=20")


def _quote(rng: random.Random, m: Material) -> Call:
    return Call("GET /v1/quotes/{id}", "GET", f"/v1/quotes/{rng.choice(m.quotes)[0]}")


def _bad_json(rng: random.Random, m: Material) -> Call:
    body = rng.choice([b'{"text": ', b"{'text': 'single quotes'}", b'{"text": "a" "b"}', b"[1, 2,]"])
    return Call("bad: invalid JSON", "POST", "/v1/attributions", body, bad=True)


def _bad_field(rng: random.Random, m: Material) -> Call:
    body = {"text": rng.choice(m.sentences), rng.choice(["colour", "topk", "lang"]): "x"}
    return Call("bad: unknown field", "POST", "/v1/attributions", json.dumps(body).encode(), bad=True)


def _bad_type(rng: random.Random, m: Material) -> Call:
    body = json.dumps({"original": "a", "rendering": "b"}).encode()
    ctype = rng.choice(["text/plain", "application/x-www-form-urlencoded"])
    return Call("bad: wrong content type", "POST", "/v1/similarity", body, content_type=ctype, bad=True)


def _bad_id(rng: random.Random, m: Material) -> Call:
    return Call("bad: unknown id", "GET", f"/v1/quotes/q_missing{rng.randrange(10**6):06d}", bad=True)


def _bad_cap(rng: random.Random, m: Material) -> Call:
    if rng.random() < 0.5:
        body = {"text": rng.choice(m.sentences), "top_k": rng.randint(11, 500)}
        return Call("bad: over-cap value", "POST", "/v1/attributions", json.dumps(body).encode(), bad=True)
    return Call("bad: over-cap value", "GET", f"/v1/quotes?limit={rng.randint(101, 10_000)}", bad=True)


# Weights out of 100: the bad requests are 15 of them.
MIX: list[tuple[Callable[[random.Random, Material], Call], float]] = [
    (_attribution_sentence, 22),
    (_attribution_paragraph, 8),
    (_similarity, 12),
    (_extraction, 10),
    (_search, 8),
    (_by_speaker, 6),
    (_quote, 8),
    (lambda rng, m: Call("GET /v1/speakers", "GET", "/v1/speakers"), 5),
    (lambda rng, m: Call("GET /v1/info", "GET", "/v1/info"), 6),
    (_bad_json, 3),
    (_bad_field, 3),
    (_bad_type, 3),
    (_bad_id, 3),
    (_bad_cap, 3),
]


def _judge(call: Call, status: int, content_type: str, body: bytes) -> str | None:
    where = f"{call.method} {call.path[:80]} ({call.endpoint})"
    try:
        doc = json.loads(body)
    except ValueError:
        return f"{where}: {status} with a body that is not JSON: {body[:120]!r}"
    if call.bad:
        if not 400 <= status < 500:
            return f"{where}: {status}, expected a 4xx"
        if content_type != PROBLEM or not isinstance(doc, dict) or doc.get("status") != status:
            return f"{where}: {status} {content_type}, expected {PROBLEM} with the status: {body[:120]!r}"
        return None
    if not 200 <= status < 300 or content_type != "application/json":
        return f"{where}: {status} {content_type}, expected a 2xx application/json: {body[:200]!r}"
    return None


def send(port: int, call: Call, timeout: float = 120) -> Outcome:
    """One request on a new connection, timed from connecting to the last byte of the answer."""
    start = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": call.content_type} if call.body is not None else {}
        conn.request(call.method, call.path, body=call.body, headers=headers)
        response = conn.getresponse()
        body = response.read()
        status, ctype = response.status, response.getheader("Content-Type", "").split(";")[0].strip()
    except (OSError, http.client.HTTPException) as exc:
        return Outcome(call, 0, time.perf_counter() - start, f"{call.method} {call.path[:80]}: no response ({exc!r})")
    finally:
        conn.close()
    return Outcome(call, status, time.perf_counter() - start, _judge(call, status, ctype, body))


def _client(port: int, material: Material, seed: str, count: int) -> list[Outcome]:
    rng = random.Random(seed)
    makers, weights = zip(*MIX, strict=True)
    return [send(port, rng.choices(makers, weights)[0](rng, material)) for _ in range(count)]


def _run_phase(port: int, material: Material, clients: int, count: int, seed: str) -> tuple[list[Outcome], float]:
    start = time.perf_counter()
    with ThreadPoolExecutor(clients, thread_name_prefix="soak-client") as pool:
        futures = [pool.submit(_client, port, material, f"{seed}/{c}", count) for c in range(clients)]
        outcomes = [o for f in futures for o in f.result()]
    return outcomes, time.perf_counter() - start


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of values sorted ascending."""
    return sorted_values[max(0, math.ceil(p / 100 * len(sorted_values)) - 1)]


def _latency(seconds: list[float]) -> Latency:
    ms = sorted(s * 1000 for s in seconds)
    return Latency(len(ms), percentile(ms, 50), percentile(ms, 95), percentile(ms, 99))


def _status_class(status: int) -> str:
    if status == 0:
        return "no response"
    return f"{status // 100}xx" if 2 <= status // 100 <= 5 else "other"


def run_soak(
    port: int,
    clients: int = 16,
    requests_per_client: int = 60,
    seed: int = 0,
    warmup_per_client: int = 8,
    server_pid: int | None = None,
) -> SoakReport:
    """Warm up, then `clients` threads each send `requests_per_client` requests of the mix, one after another.

    With `server_pid` (gunicorn's master) the RSS of each worker is sampled after the warm-up and after
    the run. Wrong answers of the warm-up are reported too; its latencies and statuses are not.
    """
    material = gather_material(port)
    warmup, _ = _run_phase(port, material, clients, warmup_per_client, f"{seed}/warm-up")
    rss_before = worker_rss(server_pid) if server_pid else {}
    outcomes, seconds = _run_phase(port, material, clients, requests_per_client, f"{seed}/run")
    rss_after = worker_rss(server_pid) if server_pid else {}
    by_endpoint: dict[str, list[float]] = {}
    for o in outcomes:
        by_endpoint.setdefault(o.call.endpoint, []).append(o.seconds)
    latency = {name: _latency(values) for name, values in by_endpoint.items()}
    latency["all"] = _latency([o.seconds for o in outcomes])
    return SoakReport(
        clients=clients,
        requests=len(outcomes),
        seconds=seconds,
        statuses=Counter(_status_class(o.status) for o in outcomes),
        latency=latency,
        bad_requests=sum(o.call.bad for o in outcomes),
        wrong=[f"warm-up: {o.wrong}" for o in warmup if o.wrong] + [o.wrong for o in outcomes if o.wrong],
        rss_before=rss_before,
        rss_after=rss_after,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests-per-client", type=int, default=60)
    parser.add_argument("--warmup-per-client", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--store", type=Path, default=REPO_ROOT / "var" / "quotes.sqlite3", help="copied, not changed")
    args = parser.parse_args()
    with launch_on_copy(
        args.store,
        QUOTES_WORKERS=str(args.workers),
        QUOTES_THREADS=str(args.threads),
        QUOTES_RATE_LIMIT="off",
        QUOTES_RATE_LIMIT_WRITE="off",
        QUOTES_MAX_REQUESTS="0",  # no worker recycling: a leak must show, not be reset
    ) as server:
        print(f"gunicorn {server.process.pid} on 127.0.0.1:{server.port}, {args.workers} workers x {args.threads}")
        report = run_soak(
            server.port,
            args.clients,
            args.requests_per_client,
            args.seed,
            args.warmup_per_client,
            server.process.pid,
        )
    print(report.table())
    return 1 if report.wrong or report.statuses.get("5xx") else 0


if __name__ == "__main__":
    sys.exit(main())
