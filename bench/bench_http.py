"""The service over HTTP against the same work done in process, measured in one run.

    .venv/bin/python -m bench.bench_http [--backend torch|onnx-int8] [--seconds 15] [--workers 2] [--threads 4]
        [--set QUOTES_NAME=value ...]

In process, as a worker runs it (same backend, the model threads a worker gets: cores / workers;
for int8 without torch): the raw encode of one sentence (median of 200), the whole pipeline on that
sentence and on an 800-word article (`Matcher.match_text`: parse, encode, search, flags, verdict),
the parse alone (one parse and the extraction: `Matcher.segment`) of the sentence and of the article,
the article's raw batched encode; and the raw batched encode in one process per
worker in parallel, for throughput. Then the real gunicorn (scripts/start.sh, rate limits off)
under wrk (Debian's `wrk`, a load generator in C, on loopback): the sentence and the article, with
one connection (latency) and several (throughput). The encode cache is off on both sides (wrk
repeats one body; a cache hit would measure the cache). Prints the ratios the targets are stated in:

    one-sentence request p50 / raw encode of that sentence        (target <= 1.3)
    article request p50 / the same pipeline in process            (target <= 1.15)

and, to read them by: the sentence's parse alone against its raw encode (a floor under the first
ratio, since a request must parse before it knows what to encode), the article's HTTP throughput
against the raw batched encode, the parse's
and the encode's shares of the pipeline, and the sentence request against its pipeline.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

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


def _median_ms(fn: Callable[[], object], runs: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _load(backend: str, threads: int) -> tuple[object, object]:
    """(embedder, matcher) as a worker has them, without the encode cache."""
    # As gunicorn.conf.py sizes a worker's thread pools (numpy's among them), before numpy is imported.
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    if backend == "onnx-int8":
        from service.encoders import keep_torch_out
        from service.lean import keep_spacy_cli_out

        keep_torch_out()
        keep_spacy_cli_out()
    from service.embed import load_embedder
    from service.match import Matcher
    from service.nlp import load_nlp
    from service.store import open_store

    settings = Settings.from_env()
    embedder = load_embedder(settings.model_dir, backend=backend, cache_size=0, threads=threads)
    store = open_store(settings.store_location, embedder.name, embedder.revision, vector_index=settings.vector_index)
    return embedder, Matcher(store, embedder, load_nlp())


def _in_process(backend: str, threads: int, article: str) -> dict[str, float]:
    """The pipeline and its parts, in one process (medians, ms)."""
    embedder, matcher = _load(backend, threads)
    segments = [s.text for s in matcher.segment(article)]  # type: ignore[attr-defined]
    return {
        "segments": len(segments),
        "encode_sentence": _median_ms(lambda: embedder.encode([SENTENCE]), 200),  # type: ignore[attr-defined]
        "pipeline_sentence": _median_ms(lambda: matcher.match_text(SENTENCE), 50),  # type: ignore[attr-defined]
        "parse_sentence": _median_ms(lambda: matcher.segment(SENTENCE), 50),  # type: ignore[attr-defined]
        "pipeline_article": _median_ms(lambda: matcher.match_text(article), 10),  # type: ignore[attr-defined]
        "parse_article": _median_ms(lambda: matcher.segment(article), 10),  # type: ignore[attr-defined]
        "encode_article": _median_ms(lambda: embedder.encode(segments, batch_size=64), 10),  # type: ignore[attr-defined]
    }


def _batched_rate(backend: str, threads: int, article: str, runs: int) -> float:
    """Segments/s of the raw batched encode of the article's segments in this process."""
    embedder, matcher = _load(backend, threads)
    segments = [s.text for s in matcher.segment(article)]  # type: ignore[attr-defined]
    embedder.encode(segments)  # type: ignore[attr-defined]
    start = time.perf_counter()
    for _ in range(runs):
        embedder.encode(segments, batch_size=64)  # type: ignore[attr-defined]
    return len(segments) * runs / (time.perf_counter() - start)


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
    parser.add_argument("--set", action="append", default=[], metavar="QUOTES_NAME=value", help="a server setting")
    args = parser.parse_args()
    settings = dict(item.split("=", 1) for item in args.set)
    if not all(name.startswith("QUOTES_") for name in settings):
        parser.error("--set takes QUOTES_NAME=value")
    if not shutil.which("wrk"):
        print("wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    cores = os.cpu_count() or 1
    per_worker = max(1, cores // args.workers)
    backend = args.backend
    from bench.bench_extract import article_of  # here: it imports spaCy, and with it torch

    article = article_of(800)
    # Fresh interpreters, not forks of this one (which has imported torch): an int8 worker has none.
    spawn = multiprocessing.get_context("spawn")

    # In process, as a worker runs it.
    with ProcessPoolExecutor(1, mp_context=spawn) as pool:
        alone = pool.submit(_in_process, backend, per_worker, article).result()
    with ProcessPoolExecutor(args.workers, mp_context=spawn) as pool:
        n = args.workers
        raw_rate = sum(pool.map(_batched_rate, [backend] * n, [per_worker] * n, [article] * n, [5] * n))

    server_settings = {
        "QUOTES_WORKERS": str(args.workers),
        "QUOTES_THREADS": str(args.threads),
        "QUOTES_RATE_LIMIT": "off",
        "QUOTES_MAX_REQUESTS": "0",
        "QUOTES_EMBEDDING_BACKEND": backend,
        "QUOTES_ENCODE_CACHE_SIZE": "0",
        **settings,
    }
    with launch_on_copy(Settings.from_env().store_path, 180, 90, **server_settings) as server:
        sentence_1 = _wrk(server.port, "/v1/attributions", {"text": SENTENCE}, 1, args.seconds)
        sentence_8 = _wrk(server.port, "/v1/attributions", {"text": SENTENCE}, 8, args.seconds)
        article_1 = _wrk(server.port, "/v1/attributions", {"text": article}, 1, args.seconds * 2)
        article_4 = _wrk(server.port, "/v1/attributions", {"text": article}, 4, args.seconds * 2)

    segments = int(alone["segments"])
    http_rate = article_4["rps"] * segments
    print(f"machine: {cores} cores, {platform.processor() or platform.machine()}, {_cpu_model()}")
    print(f"backend {backend}; {args.workers} workers x {args.threads} threads, model threads per worker {per_worker}")
    print(f"article: {len(article.split())} words, {segments} segments")
    print()
    print("in process (one process, medians)")
    print(f"  raw encode, the sentence     {alone['encode_sentence']:8.2f} ms")
    print(f"  pipeline, the sentence       {alone['pipeline_sentence']:8.2f} ms")
    print(f"    of which the parse         {alone['parse_sentence']:8.2f} ms")
    print(f"  pipeline, the article        {alone['pipeline_article']:8.1f} ms")
    print(f"    of which the parse         {alone['parse_article']:8.1f} ms")
    print(f"    of which the batched encode{alone['encode_article']:8.1f} ms")
    print(f"  raw batched encode           {raw_rate:8.1f} segments/s ({args.workers} processes in parallel)")
    print("HTTP, real gunicorn, wrk on loopback")
    for name, r in (
        ("sentence, 1 conn", sentence_1),
        ("sentence, 8 conns", sentence_8),
        ("article, 1 conn", article_1),
        ("article, 4 conns", article_4),
    ):
        print(
            f"  {name:<18} p50 {r['p50']:8.1f} ms  p95 {r['p95']:8.1f}  p99 {r['p99']:8.1f}  "
            f"{r['rps']:7.1f} req/s  ({int(r['requests'])} requests, {int(r['non2xx'])} non-2xx)"
        )
    print(f"  article throughput     {http_rate:8.1f} segments/s")
    print()
    ratio = sentence_1["p50"] / alone["encode_sentence"]
    print(f"ratio sentence p50 / raw encode of the sentence        {ratio:6.2f}   (target <= 1.3)")
    ratio = article_1["p50"] / alone["pipeline_article"]
    print(f"ratio article p50 / the same pipeline in process       {ratio:6.2f}   (target <= 1.15)")
    print(
        f"ratio sentence p50 / the same pipeline in process      {sentence_1['p50'] / alone['pipeline_sentence']:6.2f}"
    )
    # The floor of the first ratio: the one parse a request must make, before any encode.
    ratio = alone["parse_sentence"] / alone["encode_sentence"]
    print(f"ratio sentence parse alone / raw encode of the sentence {ratio:5.2f}   (floor of the first ratio)")
    print(f"ratio article segments/s HTTP / raw batched encode     {http_rate / raw_rate:6.2f}")
    print(f"share of the article pipeline: parse {alone['parse_article'] / alone['pipeline_article']:.0%}, "
          f"batched encode {alone['encode_article'] / alone['pipeline_article']:.0%}")  # fmt: skip
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
