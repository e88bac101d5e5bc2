"""Cold start to ready, and resident memory per worker, of the real gunicorn.

    .venv/bin/python -m bench.bench_startup [--runs 3] [--backend torch|onnx-int8]

Each run starts scripts/start.sh with one worker on a private copy of the store and times:
the whole start (process spawned → the worker logged "ready"), and the worker's own part (its
"Booting worker" log line → its "ready" line), split into the phases the worker logs (imports
before loading; model, spaCy, store and matcher, warm-up encode). Then the worker's RSS when ready.
Medians over the runs; the target is a worker ready within 3 s.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import datetime
from typing import Any

from bench.server import launch_on_copy, read_log, worker_rss
from service.config import Settings


def _when(line: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(line["time"])).timestamp()


def one_start(backend: str) -> dict[str, float]:
    spawned = time.time()
    with launch_on_copy(Settings.from_env().store_path, QUOTES_WORKERS="1", QUOTES_EMBEDDING_BACKEND=backend) as server:
        whole = time.time() - spawned
        lines = read_log(server.log_path)
        rss = worker_rss(server.process.pid)
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
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backend", choices=("torch", "onnx-int8"), default="torch")
    args = parser.parse_args()
    runs = [one_start(args.backend) for _ in range(args.runs)]
    print(f"backend {args.backend}, 1 worker, {args.runs} runs, medians")
    for key in runs[0]:
        print(f"  {key:<12} {statistics.median(r[key] for r in runs):8.2f}")
    print("target: worker ready (worker_s) <= 3 s")


if __name__ == "__main__":
    main()
