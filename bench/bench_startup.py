"""Cold start to ready, and resident memory per worker, of the real gunicorn.

    .venv/bin/python -m bench.bench_startup [--runs 3] [--backend torch|onnx-int8] [--requests 200]

Each run starts scripts/start.sh with one worker on a private copy of the store and times:
the whole start (process spawned → the worker logged "ready"), and the worker's own part (its
"Booting worker" log line → its "ready" line), split into the phases the worker logs (imports
before loading; model, spaCy, store and matcher, warm-up encode). Then the worker's RSS when ready,
and again after `--requests` requests of distinct texts (corpus sentences, every tenth a whole
article), with the part of it that is the worker's alone (USS: not shared with the master, the
other workers or the page cache's mapped files), which is what each further worker costs. Medians
over the runs; the targets: a worker ready within 2 s, at most 250 MiB.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import statistics
import time
from datetime import datetime
from typing import Any

import psutil

from bench.server import launch_on_copy, read_log, worker_rss
from service.config import REPO_ROOT, Settings
from service.corpus import load_corpus


def _when(line: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(line["time"])).timestamp()


def _texts(n: int) -> list[str]:
    articles = [a.text for a in load_corpus(REPO_ROOT / "corpus")]
    sentences = [s.strip() for a in articles for s in re.split(r"(?<=[.!?])\s+", a) if len(s.split()) > 4]
    return [articles[i // 10 % len(articles)] if i % 10 == 9 else sentences[i % len(sentences)] for i in range(n)]


def one_start(backend: str, requests: int) -> dict[str, float]:
    spawned = time.time()
    with launch_on_copy(Settings.from_env().store_path, QUOTES_WORKERS="1", QUOTES_EMBEDDING_BACKEND=backend) as server:
        whole = time.time() - spawned
        lines = read_log(server.log_path)
        rss = worker_rss(server.process.pid)
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
        for text in _texts(requests):
            conn.request("POST", "/v1/attributions", json.dumps({"text": text}), {"Content-Type": "application/json"})
            answer = conn.getresponse()
            answer.read()
            assert answer.status == 200, answer.status
        conn.close()
        after = worker_rss(server.process.pid)
        (worker,) = psutil.Process(server.process.pid).children()
        private = worker.memory_full_info().uss
    boot = next(ln for ln in lines if str(ln.get("message", "")).startswith("Booting worker"))
    ready = next(ln for ln in lines if ln.get("message") == "ready")
    worker = _when(ready) - _when(boot)
    phases = {k: float(ready[k]) for k in ("model_s", "spacy_s", "store_s", "warmup_s")}
    return {
        "whole_s": whole,
        "worker_s": worker,
        "imports_s": worker - float(ready["load_s"]),
        **phases,
        "rss_mib": max(rss.values()) / 2**20,
        "rss_after_mib": max(after.values()) / 2**20,
        "uss_after_mib": private / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backend", choices=("torch", "onnx-int8"), default=Settings.from_env().embedding_backend)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    runs = [one_start(args.backend, args.requests) for _ in range(args.runs)]
    print(f"backend {args.backend}, 1 worker, {args.runs} runs, medians")
    for key in runs[0]:
        print(f"  {key:<12} {statistics.median(r[key] for r in runs):8.2f}")
    print(f"targets: worker ready (worker_s) <= 2 s; rss_mib <= 250 (rss_after_mib: after {args.requests} requests)")


if __name__ == "__main__":
    main()
