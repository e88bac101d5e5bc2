"""Embedding backends and cross-request batching, measured against each other in one run.

    .venv/bin/python bench/bench_backends.py [--threads N] [--runs 7] [--single 120] [--callers 8] [--per-caller 12]
    .venv/bin/python bench/bench_backends.py --presets avx2,avx512,avx512_vnni [--runs 7] [--single 120]

The machine is shared and noisy: every figure that matters is a ratio of two measurements taken in
alternation in this run (best of --runs and median both shown). Model threads default to what one
gunicorn worker gets (cores // workers, as gunicorn.conf.py sets them); both backends use the same
number. The encode cache is off throughout, so every text reaches the model.

1. Article workload: every sentence of the corpus articles (spaCy's sentences), encoded by one
   caller with batch_size 32 and 64: torch fp32 vs int8 ONNX throughput.
2. Single-sentence latency: median over --single one-sentence encodes, torch vs int8.
3. Agreement: cosine between the int8 and the torch vector of every sentence (min, mean).
4. Batching, closed loop: --callers threads each encoding --per-caller single sentences back to
   back, merging on (the configured window) vs on without a window (0 ms) vs off
   (QUOTES_BATCH_MAX_TEXTS=1): throughput.
5. Batching, open loop: the same callers sending at random (Poisson) times at --load of the
   capacity measured in 4: latency per request, which is what a window could trade.

With --presets, instead: each int8 preset exported (and checked, as `model export-onnx` does) in a
linked copy of the model folder, the served export untouched, then one table: what each export
kept in fp32 and its agreement, and its article throughput (batch 64) and single-sentence latency
against torch fp32, all models measured in alternation.
"""

from __future__ import annotations

import argparse
import os
import random
import shlex
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from service.config import REPO_ROOT, Settings
from service.corpus import load_corpus
from service.embed import Embedder, load_embedder
from service.model_files import cpu_name, linked_model_copy
from service.nlp import load_nlp
from service.onnx_export import Int8Refused, export_onnx


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
        export=base.export,
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


def batching_variants(base: Embedder, wait_ms: float) -> dict[str, Embedder]:
    """Merging with the configured window, without one, and off (labels give the window in effect:
    the int8 backend never waits, see Embedder)."""
    out: dict[str, Embedder] = {}
    for e in (fresh(base, wait_ms=wait_ms), fresh(base, wait_ms=0.0)):
        out.setdefault(f"on ({e.batcher.wait_s * 1000:g} ms)", e)
    out["off"] = fresh(base, max_texts=1)
    return out


def open_loop(embedder: Embedder, sentences: list[str], callers: int, per_caller: int, rate: float) -> list[float]:
    """Milliseconds per request when each caller sends at random times (`rate` per second on average)."""
    latencies: list[float] = []
    lock = threading.Lock()

    def caller(i: int) -> None:
        rng = random.Random(i)  # the same arrival times for every variant
        for j in range(per_caller):
            time.sleep(rng.expovariate(rate))
            ms = timed(partial(embedder.encode, [sentences[(i * per_caller + j) % len(sentences)]])) * 1000
            with lock:
                latencies.append(ms)

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies


def preset_table(
    settings: Settings, presets: list[str], torch_e: Embedder, sentences: list[str], args: argparse.Namespace
) -> None:
    int8: dict[str, Embedder] = {}
    with tempfile.TemporaryDirectory(prefix="bench-presets-") as tmp:
        for preset in presets:
            model = linked_model_copy(settings.model_dir, Path(tmp) / preset)
            started = time.perf_counter()
            try:
                export_onnx(
                    model,
                    quantization=preset,
                    corpus_dir=settings.corpus_dir,
                    speakers_file=settings.effective_speakers_file(),
                )
            except Int8Refused as exc:
                print(f"   {preset}: {exc}")
                continue
            int8[preset] = fresh(load_embedder(model, backend="onnx-int8", cache_size=0))
            print(f"   {preset}: exported and checked in {time.perf_counter() - started:.0f} s")
    models = {"torch fp32": torch_e, **int8}
    for e in models.values():  # warm-up: first calls allocate
        e.encode(sentences[:8], batch_size=64)
    t = alternate({k: partial(e.encode, sentences, batch_size=64) for k, e in models.items()}, args.runs)
    lat: dict[str, list[float]] = {k: [] for k in models}
    for i in range(args.single):
        for k, e in models.items():
            lat[k].append(timed(partial(e.encode, [sentences[i % len(sentences)]])) * 1000)
    ref = torch_e.encode(sentences, batch_size=64)
    base_rate = len(sentences) / min(t["torch fp32"])
    base_ms = statistics.median(lat["torch fp32"])
    print(
        f"\n   {'':11} {'fp32 MatMuls':>12} {'min cos corpus':>14} {'min cos articles':>16}   "
        f"{'articles, batch 64':>24}   {'one sentence, median':>22}"
    )
    for k, e in models.items():
        rate, ms = len(sentences) / min(t[k]), statistics.median(lat[k])
        speed = f"{rate:6.1f}/s (x{rate / base_rate:.2f})"
        latency = f"{ms:6.1f} ms (x{base_ms / ms:.2f})"
        if e.export is None:
            print(f"   {k:11} {'all':>12} {'':>14} {'':>16}   {speed:>24}   {latency:>22}")
            continue
        cos = np.einsum("ij,ij->i", ref, e.encode(sentences, batch_size=64))
        print(
            f"   {k:11} {len(e.export.kept_fp32):>12} {e.export.min_cosine:>14.4f} {cos.min():>16.4f}   "
            f"{speed:>24}   {latency:>22}"
        )


def main() -> int:
    settings = Settings.from_env()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--threads", type=int, default=settings.model_threads(), help="model threads (both backends)")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--single", type=int, default=120, help="one-sentence encodes for the latency median")
    parser.add_argument("--callers", type=int, default=8)
    parser.add_argument("--per-caller", type=int, default=12)
    parser.add_argument("--load", type=float, default=0.6, help="open loop: offered load, share of capacity")
    parser.add_argument("--presets", help="comma-separated int8 presets to export and compare (avx2,avx512,...)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)  # before loading: the ONNX session takes the same count
    torch_e = fresh(load_embedder(settings.model_dir, cache_size=0))
    nlp = load_nlp()
    articles = load_corpus(REPO_ROOT / "corpus")
    sentences = [s.text.strip() for a in articles for s in nlp(a.text).sents if s.text.strip()]

    print(f"command: {' '.join(shlex.quote(a) for a in [sys.executable, *sys.argv])}")
    print(
        f"machine: {os.cpu_count()} cores, {cpu_name()}; load average {load()}; model threads {args.threads}; "
        f"torch {torch.__version__}"
    )
    print(f"workload: {len(articles)} articles, {len(sentences)} sentences, {sum(map(len, sentences))} characters\n")
    if args.presets:
        print("int8 presets against torch fp32 (best of runs; ratios of measurements taken in alternation)")
        preset_table(settings, args.presets.split(","), torch_e, sentences, args)
        print(f"\nload average at the end: {load()}")
        return 0
    try:
        export_onnx(settings.model_dir)
    except Int8Refused as exc:
        print(f"no int8 backend to compare: {exc}")
        return 1
    int8_e = fresh(load_embedder(settings.model_dir, backend="onnx-int8", cache_size=0))

    for e in (torch_e, int8_e):  # warm-up: first calls allocate
        e.encode(sentences[:8], batch_size=32)

    print("1. article workload (one caller), sentences/s: best of runs (median)")
    t = alternate(
        {
            f"{name} {bs}": partial(e.encode, sentences, batch_size=bs)
            for bs in (32, 64)
            for name, e in (("torch", torch_e), ("int8", int8_e))
        },
        args.runs,
    )
    for bs in (32, 64):
        best = {k: len(sentences) / min(t[f"{k} {bs}"]) for k in ("torch", "int8")}
        med = {k: len(sentences) / statistics.median(t[f"{k} {bs}"]) for k in ("torch", "int8")}
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
    lat: dict[str, list[float]] = {"torch": [], "int8": [], "bare": []}
    bare = torch_e._model  # the SentenceTransformer without batcher and cache: what a lone request saves
    for i in range(args.single):
        text = [sentences[i % len(sentences)]]
        lat["torch"].append(timed(partial(torch_e.encode, text)) * 1000)
        lat["int8"].append(timed(partial(int8_e.encode, text)) * 1000)
        lat["bare"].append(timed(partial(bare.encode, text, normalize_embeddings=True, show_progress_bar=False)) * 1000)
    mt, mi, mb = (statistics.median(lat[k]) for k in ("torch", "int8", "bare"))
    print(f"   torch fp32 {mt:6.1f}   int8 onnx {mi:6.1f}   torch/int8 x{mt / mi:.2f}")
    print(f"   torch fp32 called bare (no batcher, no cache) {mb:6.1f}: the batcher adds {mt - mb:+.2f} ms")

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
    print(f"\n4. batching, closed loop: {args.callers} callers x {args.per_caller} single sentences back to back")
    print("   texts/s, best of 3 (x merging off); model calls per run")
    capacity = {}
    for name, base in (("torch fp32", torch_e), ("int8 onnx", int8_e)):
        variants = batching_variants(base, settings.batch_wait_ms)
        t = alternate({k: callers_run(e, sentences, args.callers, args.per_caller) for k, e in variants.items()}, 3)
        best = {k: total / min(v) for k, v in t.items()}
        capacity[name] = best["off"]
        calls = {k: e.batcher.model_calls / 3 for k, e in variants.items()}
        line = "   ".join(f"{k} {v:6.1f} (x{v / best['off']:.2f}, {calls[k]:.0f} calls)" for k, v in best.items())
        print(f"   {name:10}: {line}")

    print(
        f"\n5. batching, open loop: {args.callers} callers, random (Poisson) arrivals at {args.load:.0%} of the "
        "merging-off capacity above; latency per request in ms, p50 / p95"
    )
    for name, base in (("torch fp32", torch_e), ("int8 onnx", int8_e)):
        rate = capacity[name] * args.load / args.callers  # requests per second per caller
        cells = []
        for k, e in batching_variants(base, settings.batch_wait_ms).items():
            ms = np.asarray(open_loop(e, sentences, args.callers, args.per_caller * 2, rate))
            p50, p95 = float(np.percentile(ms, 50)), float(np.percentile(ms, 95))
            cells.append(f"{k} {p50:5.1f} / {p95:5.1f} ({e.batcher.model_calls} calls)")
        print(f"   {name:10}: " + "   ".join(cells))
    print(f"\nload average at the end: {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
