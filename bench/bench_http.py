"""The service over HTTP against the model's own speed, measured in one run.

    .venv/bin/python -m bench.bench_http [--backend torch|onnx-int8] [--seconds 15] [--workers 2] [--threads 4]

The limit: in-process encode of the same segments with the same backend and the same torch
threads per process as a worker has (cores / workers): single-sentence latency (median of 200) and
batched throughput over the article's segments, one process per core in parallel (as the workers
run). Then the real gunicorn (scripts/start.sh, rate limits off) under wrk (Debian's `wrk`, a real
load generator in C, on loopback), for a one-sentence request and for an 800-word article:
p50/p95/p99 latency and throughput. The encode cache is off on both sides (wrk repeats one body; a
cache hit would measure the cache, not the service). Prints the ratios the targets are stated in:

    one-sentence request p50 / raw single-sentence encode   (target <= 1.3)
    article segments/s over HTTP / raw batched segments/s  (target >= 0.8)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from bench.bench_extract import article_of
from bench.server import launch_on_copy
from service.config import Settings

SENTENCE = (
    "Kremlin spokesman Dmitry Peskov stressed that Moscow will keep up a constant dialogue with the new Syrian "
    "authorities."
)
_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = %s
done = function(summary, latency, requests)
  io.write(string.format("RESULT %%d %%d %%f %%f %%f %%f\\n", summary.requests, summary.errors.status,
    summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(95) / 1e3,
    latency:percentile(99) / 1e3))
end
"""


def _segments(text: str) -> list[str]:
    from service.embed import load_embedder
    from service.match import Matcher
    from service.nlp import load_nlp
    from service.store import SqliteStore

    settings = Settings.from_env()
    embedder = load_embedder(settings.model_dir)
    store = SqliteStore(settings.store_path, embedder.name, embedder.revision)
    return [s.text for s in Matcher(store, embedder, load_nlp()).segment(text)]


def _raw(backend: str, texts: list[str], threads: int, single_runs: int, batch_runs: int) -> tuple[float, float]:
    """(median single-sentence encode ms, batched segments/s) in this process, with `threads` torch threads."""
    import torch

    from service.embed import load_embedder

    torch.set_num_threads(threads)
    embedder = load_embedder(Settings.from_env().model_dir, backend=backend, cache_size=0)
    embedder.encode(texts)  # warm-up
    singles = []
    for _ in range(single_runs):
        start = time.perf_counter()
        embedder.encode([SENTENCE])
        singles.append((time.perf_counter() - start) * 1000)
    start = time.perf_counter()
    for _ in range(batch_runs):
        embedder.encode(texts, batch_size=64)
    rate = len(texts) * batch_runs / (time.perf_counter() - start)
    return statistics.median(singles), rate


def _wrk(port: int, path: str, body: dict[str, object], connections: int, seconds: int) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(_LUA % json.dumps(json.dumps(body)))
    try:
        out = subprocess.run(
            ["wrk", f"-t{min(connections, 2)}", f"-c{connections}", f"-d{seconds}s", "-s", f.name, "--timeout", "30s",
             f"http://127.0.0.1:{port}{path}"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    finally:
        Path(f.name).unlink()
    match = re.search(r"RESULT (\d+) (\d+) ([\d.]+) ([\d.]+) ([\d.]+) ([\d.]+)", out)
    if not match:
        raise RuntimeError(f"wrk printed no result:\n{out}")
    requests, errors, secs, p50, p95, p99 = (float(x) for x in match.groups())
    return {"requests": requests, "non2xx": errors, "rps": requests / secs, "p50": p50, "p95": p95, "p99": p99}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=("torch", "onnx-int8"), default=Settings.from_env().embedding_backend)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    cores = os.cpu_count() or 1
    per_worker = max(1, cores // args.workers)
    backend = args.backend
    article = article_of(800)
    texts = _segments(article)

    # The limit, as the workers would run it: one process per worker, in parallel.
    with ProcessPoolExecutor(args.workers) as pool:
        n = args.workers
        raw = list(pool.map(_raw, [backend] * n, [texts] * n, [per_worker] * n, [200] * n, [5] * n))
    raw_single = statistics.median(r[0] for r in raw)
    raw_rate = sum(r[1] for r in raw)

    with launch_on_copy(
        Settings.from_env().store_path,
        QUOTES_WORKERS=str(args.workers),
        QUOTES_THREADS=str(args.threads),
        QUOTES_RATE_LIMIT="off",
        QUOTES_MAX_REQUESTS="0",
        QUOTES_EMBEDDING_BACKEND=backend,
        QUOTES_ENCODE_CACHE_SIZE="0",
    ) as server:
        alone = _wrk(server.port, "/v1/attributions", {"text": SENTENCE}, 1, args.seconds)
        loaded = _wrk(server.port, "/v1/attributions", {"text": SENTENCE}, 8, args.seconds)
        articles = _wrk(server.port, "/v1/attributions", {"text": article}, 4, args.seconds * 2)

    http_rate = articles["rps"] * len(texts)
    print(f"machine: {cores} cores, {platform.processor() or platform.machine()}, {_cpu_model()}")
    print(f"backend {backend}; {args.workers} workers x {args.threads} threads, torch threads per worker {per_worker}")
    print(f"article: {len(article.split())} words, {len(texts)} segments")
    print()
    print("raw encode (in process, same backend and threads)")
    print(f"  single sentence        {raw_single:8.2f} ms (median of 200, per process)")
    print(f"  article, batched       {raw_rate:8.1f} segments/s ({args.workers} processes in parallel)")
    print("HTTP, real gunicorn, wrk on loopback")
    for name, r in (("sentence, 1 conn", alone), ("sentence, 8 conns", loaded), ("article, 4 conns", articles)):
        print(
            f"  {name:<18} p50 {r['p50']:8.1f} ms  p95 {r['p95']:8.1f}  p99 {r['p99']:8.1f}  "
            f"{r['rps']:7.1f} req/s  ({int(r['requests'])} requests, {int(r['non2xx'])} non-2xx)"
        )
    print(f"  article throughput     {http_rate:8.1f} segments/s")
    print()
    print(f"ratio sentence p50 (1 conn) / raw single encode   {alone['p50'] / raw_single:6.2f}   (target <= 1.3)")
    print(f"ratio article segments/s HTTP / raw batched        {http_rate / raw_rate:6.2f}   (target >= 0.8)")
    return 0


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    sys.exit(main())
