"""Cold start to ready, and resident memory per worker, of the real gunicorn.

    .venv/bin/python -m bench.bench_startup [--runs 3] [--backend torch|onnx-int8] [--requests 200]
        [--workers 1] [--clients 1] [--set QUOTES_NAME=value ...]

Each run starts scripts/start.sh on a private copy of the store and times: the whole start (process
spawned → every worker logged "ready"), and a worker's own part (its "Booting worker" log line → its
"ready" line), split into the phases the worker logs (imports before loading; model, spaCy, store and
matcher, warm-up encode). Then the workers' RSS when ready, and again after `--requests` requests of
distinct texts (corpus sentences, every tenth a whole article) sent by `--clients` clients at once
(one connection each, kept alive), with each worker's private dirty memory (from
/proc/PID/smaps_rollup): the pages no other process shares, which is what each further worker costs
(RSS also counts the code, the master's pages and mapped files, shared by every worker). The largest
worker's figures; medians over the runs. `--set` passes settings to the server (e.g.
QUOTES_MMAP_THRESHOLD=0, QUOTES_MODEL_DIR=...). The targets: a worker ready within 2 s, at most
250 MiB.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from bench.server import launch_on_copy, read_log, worker_rss
from service.config import REPO_ROOT, Settings
from service.corpus import load_corpus


def _when(line: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(line["time"])).timestamp()


def _texts(n: int) -> list[str]:
    articles = [a.text for a in load_corpus(REPO_ROOT / "corpus")]
    sentences = [s.strip() for a in articles for s in re.split(r"(?<=[.!?])\s+", a) if len(s.split()) > 4]
    return [articles[i // 10 % len(articles)] if i % 10 == 9 else sentences[i % len(sentences)] for i in range(n)]


def _private_dirty(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text(encoding="utf-8").splitlines():
        if line.startswith("Private_Dirty:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no Private_Dirty in /proc/{pid}/smaps_rollup")


def _send(port: int, texts: list[str]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    for text in texts:
        conn.request("POST", "/v1/attributions", json.dumps({"text": text}), {"Content-Type": "application/json"})
        answer = conn.getresponse()
        answer.read()
        assert answer.status == 200, answer.status
    conn.close()


def one_start(backend: str, requests: int, workers: int, clients: int, settings: dict[str, str]) -> dict[str, float]:
    spawned = time.time()
    env = {"QUOTES_WORKERS": str(workers), "QUOTES_EMBEDDING_BACKEND": backend, **settings}
    with launch_on_copy(Settings.from_env().store_path, 180, 90, **env) as server:
        whole = time.time() - spawned
        lines = read_log(server.log_path)
        rss = worker_rss(server.process.pid)
        texts = _texts(requests)
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(partial(_send, server.port), [texts[i::clients] for i in range(clients)]))
        after = worker_rss(server.process.pid)
        private = max(_private_dirty(pid) for pid in after)
    boot = next(ln for ln in lines if str(ln.get("message", "")).startswith("Booting worker"))
    ready = next(ln for ln in lines if ln.get("message") == "ready")
    worker_s = _when(ready) - _when(boot)
    phases = {k: float(ready[k]) for k in ("model_s", "spacy_s", "store_s", "warmup_s")}
    return {
        "whole_s": whole,
        "worker_s": worker_s,
        "imports_s": worker_s - float(ready["load_s"]),
        **phases,
        "rss_mib": max(rss.values()) / 2**20,
        "rss_after_mib": max(after.values()) / 2**20,
        "private_after_mib": private / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backend", choices=("torch", "onnx-int8"), default=Settings.from_env().embedding_backend)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--set", action="append", default=[], metavar="QUOTES_NAME=value")
    args = parser.parse_args()
    settings = dict(item.split("=", 1) for item in args.set)
    if not all(name.startswith("QUOTES_") for name in settings):
        parser.error("--set takes QUOTES_NAME=value")
    runs = [one_start(args.backend, args.requests, args.workers, args.clients, settings) for _ in range(args.runs)]
    print(
        f"backend {args.backend}, {args.workers} worker(s), {args.clients} client(s), {args.runs} runs, medians"
        + (f"; {' '.join(args.set)}" if args.set else "")
    )
    for key in runs[0]:
        print(f"  {key:<17} {statistics.median(r[key] for r in runs):8.2f}")
    print(f"targets: worker ready (worker_s) <= 2 s; rss_mib <= 250 (rss_after_mib: after {args.requests} requests)")


if __name__ == "__main__":
    main()
