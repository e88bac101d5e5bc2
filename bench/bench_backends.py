"""Embedding backends and cross-request batching, measured against each other in one run.

    .venv/bin/python bench/bench_backends.py [--threads N] [--runs 5] [--single 120] [--callers 8] [--per-caller 12]

The machine is shared and noisy: every figure that matters is a ratio of two measurements taken in
alternation in this run (best of --runs and median both shown). Model threads default to what one
gunicorn worker gets (cores // workers, as gunicorn.conf.py sets them); both backends use the same
number. The encode cache is off throughout, so every text reaches the model.

1. Article workload: every sentence of the corpus articles (spaCy's sentences), encoded by one
   caller with batch_size 32 and 64: torch fp32 vs int8 ONNX throughput.
2. Single-sentence latency: median over --single one-sentence encodes, torch vs int8.
3. Agreement: cosine between the int8 and the torch vector of every sentence (min, mean).
4. Batching: --callers threads each encoding --per-caller single sentences, merging on (the
   configured window) vs off (QUOTES_BATCH_MAX_TEXTS=1), and on without a window (0 ms).
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from service.config import REPO_ROOT, Settings
from service.corpus import load_corpus
from service.embed import Embedder, export_onnx, load_embedder
from service.nlp import load_nlp


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "?"


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def alternate(fns: dict[str, Callable[[], object]], runs: int) -> dict[str, list[float]]:
    """Seconds per run of each function, the functions taking turns so that load drifts hit all."""
    out: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            out[name].append(timed(fn))
    return out


def fresh(base: Embedder, **options: float) -> Embedder:
    """An embedder on the same loaded model with its own batching options and no cache."""
    return Embedder(
        base._model,
        base.revision,
        backend=base.backend,
        cache_size=0,
        batch_wait_ms=float(options.get("wait_ms", 5.0)),
        batch_max_texts=int(options.get("max_texts", 64)),
    )


def callers_run(embedder: Embedder, sentences: list[str], callers: int, per_caller: int) -> Callable[[], None]:
    def run() -> None:
        start = threading.Barrier(callers)

        def caller(i: int) -> None:
            start.wait()
            for j in range(per_caller):
                embedder.encode([sentences[(i * per_caller + j) % len(sentences)]])

        threads = [threading.Thread(target=caller, args=(i,)) for i in range(callers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    return run


def main() -> int:
    settings = Settings.from_env()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--threads", type=int, default=settings.torch_threads(), help="model threads (both backends)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--single", type=int, default=120, help="one-sentence encodes for the latency median")
    parser.add_argument("--callers", type=int, default=8)
    parser.add_argument("--per-caller", type=int, default=12)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)  # before loading: the ONNX session takes the same count
    export_onnx(settings.model_dir)
    torch_e = fresh(load_embedder(settings.model_dir, cache_size=0))
    int8_e = fresh(load_embedder(settings.model_dir, backend="onnx-int8", cache_size=0))
    nlp = load_nlp()
    articles = load_corpus(REPO_ROOT / "corpus")
    sentences = [s.text.strip() for a in articles for s in nlp(a.text).sents if s.text.strip()]

    print(f"command: {' '.join(shlex.quote(a) for a in [sys.executable, *sys.argv])}")
    print(
        f"machine: {os.cpu_count()} cores, {cpu_model()}; load average {load()}; model threads {args.threads}; "
        f"torch {torch.__version__}"
    )
    print(f"workload: {len(articles)} articles, {len(sentences)} sentences, {sum(map(len, sentences))} characters\n")

    for e in (torch_e, int8_e):  # warm-up: first calls allocate
        e.encode(sentences[:8], batch_size=32)

    print("1. article workload (one caller), sentences/s: best of runs (median)")
    rows = {}
    for bs in (32, 64):
        t = alternate(
            {
                "torch": partial(torch_e.encode, sentences, batch_size=bs),
                "int8": partial(int8_e.encode, sentences, batch_size=bs),
            },
            args.runs,
        )
        rows[bs] = t
        best = {k: len(sentences) / min(v) for k, v in t.items()}
        med = {k: len(sentences) / statistics.median(v) for k, v in t.items()}
        print(
            f"   batch {bs:>2}: torch fp32 {best['torch']:7.1f} ({med['torch']:6.1f})   "
            f"int8 onnx {best['int8']:7.1f} ({med['int8']:6.1f})   "
            f"int8/torch x{best['int8'] / best['torch']:.2f} (median x{med['int8'] / med['torch']:.2f})"
        )
    # Why int8 runs one text per ONNX call: the padded batch is no faster and its vectors depend on the batch.
    raw = int8_e._model
    padded = alternate(
        {
            "padded": lambda: raw.encode(sentences, batch_size=32, normalize_embeddings=True, show_progress_bar=False),
            "per-text": lambda: int8_e.encode(sentences, batch_size=32),
        },
        args.runs,
    )
    print(
        f"   int8 in padded batches of 32 (not used): {len(sentences) / min(padded['padded']):7.1f}/s "
        f"vs one text per run {len(sentences) / min(padded['per-text']):7.1f}/s"
    )

    print(f"\n2. single-sentence latency, median of {args.single} encodes (ms)")
    lat: dict[str, list[float]] = {"torch": [], "int8": []}
    for i in range(args.single):
        text = [sentences[i % len(sentences)]]
        lat["torch"].append(timed(partial(torch_e.encode, text)) * 1000)
        lat["int8"].append(timed(partial(int8_e.encode, text)) * 1000)
    mt, mi = statistics.median(lat["torch"]), statistics.median(lat["int8"])
    print(f"   torch fp32 {mt:6.1f}   int8 onnx {mi:6.1f}   torch/int8 x{mt / mi:.2f}")

    print("\n3. agreement, cosine(int8, torch fp32) per sentence")
    ref = torch_e.encode(sentences, batch_size=64)
    got = int8_e.encode(sentences, batch_size=64)
    cos = np.einsum("ij,ij->i", ref, got)
    worst = int(np.argmin(cos))
    print(
        f"   min {cos.min():.4f}  mean {cos.mean():.4f}  below 0.98: {int((cos < 0.98).sum())} of {len(cos)}"
        f"  (worst: {sentences[worst][:60]!r})"
    )
    batched = np.asarray(raw.encode(sentences, batch_size=32, normalize_embeddings=True, show_progress_bar=False))
    bcos = np.einsum("ij,ij->i", ref, batched)
    print(f"   int8 in padded batches of 32 (not used): min {bcos.min():.4f}  mean {bcos.mean():.4f}")

    total = args.callers * args.per_caller
    print(f"\n4. batching: {args.callers} callers x {args.per_caller} single sentences ({total} texts), texts/s")
    for name, base in (("torch fp32", torch_e), ("int8 onnx", int8_e)):
        variants = {
            f"on ({settings.batch_wait_ms:g} ms)": fresh(base, wait_ms=settings.batch_wait_ms),
            "on (0 ms)": fresh(base, wait_ms=0.0),
            "off": fresh(base, max_texts=1),
        }
        t = alternate({k: callers_run(e, sentences, args.callers, args.per_caller) for k, e in variants.items()}, 3)
        best = {k: total / min(v) for k, v in t.items()}
        off = best["off"]
        calls = {k: e.batcher.model_calls / 3 for k, e in variants.items()}  # per run of `total` texts
        line = "   ".join(f"{k} {v:6.1f} (x{v / off:.2f}, {calls[k]:.0f} calls)" for k, v in best.items())
        print(f"   {name:10}: {line}")
    print(f"\nload average at the end: {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
