"""Vector search at store scale: exact float32 against the compact index, 1k to 1M quotes.

    .venv/bin/python bench/bench_store_scale.py [--sizes 1000,10000,100000,1000000] [--queries 200]
        [--mrpc ../shared/data/mrpc_train.tsv]

Synthetic stores, built from real sentence embeddings (the service's model), not from uniform
random vectors (which have no neighbourhoods and are the worst case for any approximate index):

- **Bases**: the first sentence of every MRPC pair (news sentences, read from ../shared/data and
  never copied here; skipped when absent) and the corpus sentences, encoded once and cached in
  var/bench/ (a first run spends a few minutes encoding on two cores).
- **A quote** is a mix of a base and one of its 10 nearest bases, plus noise, normalised. The noise
  is a sum of differences between random bases, so it follows the real embeddings' covariance
  (their variance is concentrated in a few hundred directions, unlike isotropic noise). Its scale
  (0.75) was chosen so that at the bases' own count (3.8k) the nearest-neighbour cosines match
  real sentences': median nearest 0.55 (real MRPC second sentences: 0.50), median 10th nearest
  0.34 (real: 0.36). The first quotes are the bases themselves.
- **Variants**: each quote has 1, 2, 3, 5 or 7 wordings in the proportions of the corpus store
  (25/7/3/1/1 of 37 quotes; 1.62 per quote), each the quote plus noise (cosine 0.9 to the quote,
  0.81 between two wordings, as in the corpus store). A row of the index is a variant.
- **Queries**: `--queries` held-out paraphrases (a stored variant plus noise, cosine 0.86 to it,
  the median of MRPC's paraphrase pairs; never stored) and 100 real sentences: MRPC second
  sentences of paraphrase pairs, whose first sentence is a base.

Per size: exact float32 search and the compact index, each query searched alone at one thread
(faiss and BLAS limited to one), median and p95; recall@10 of the compact index against exact
float32 (same rows among the 10 best); top-1 loss (exact cosine of the best row minus exact cosine
of the compact index's first row, worst query); the largest |compact score - exact cosine| over
all returned rows; memory per quote as faiss.serialize_index bytes (what the index holds) and as
the process's RSS growth while building (allocator slack included). Builds use both cores.

The stores' own search (SQLite's layered index, PostgreSQL's HNSW), the verbatim lookup and
ingest at scale are measured by bench/bench_store_backends.py.
"""

from __future__ import annotations

import argparse
import csv
import gc
import hashlib
import os
import platform
import re
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
from threadpoolctl import threadpool_limits

from service.config import REPO_ROOT, Settings
from service.corpus import load_corpus
from service.model_files import model_revision
from service.vectors import AUTO_COMPACT_MIN_ROWS, CompactIndex, ExactIndex, VectorIndex

CACHE = REPO_ROOT / "var" / "bench"
SEED = 20240611
NOISE = 0.75  # quote: mix of two bases plus this much noise
VARIANT_NOISE = 0.5  # cosine 0.90 to the quote
QUERY_NOISE = 0.6  # cosine 0.86 to the variant it paraphrases
# Variants per quote in the corpus store (var/quotes.sqlite3): 25 quotes with 1, 7 with 2, ...
VARIANT_COUNTS = (1, 2, 3, 5, 7)
VARIANT_WEIGHTS = (25, 7, 3, 1, 1)
REAL_QUERIES = 100
MATCHER_ROWS = 64  # rows the matcher asks per segment at the default top_k (match.MIN_CANDIDATE_ROWS)


@dataclass(frozen=True, slots=True)
class Sentences:
    bases: np.ndarray  # (b, dim) embeddings the stores are made of
    real_queries: np.ndarray  # (r, dim) real sentences, never stored
    base_texts: list[str]


@dataclass(frozen=True, slots=True)
class SyntheticStore:
    matrix: np.ndarray  # (rows, dim) float32, L2-normalised; one row per variant
    quotes: int
    quote_of_row: np.ndarray  # (rows,) the quote (0..quotes-1) each row is a variant of


@dataclass(frozen=True, slots=True)
class Run:
    kind: str
    build_s: float
    train_s: float
    median_ms: float
    p95_ms: float
    median_ms_k64: float
    coarse_ms: float  # compact only: the coarse quantiser's share of a query
    index_bytes: int
    rss_bytes: int
    rows: np.ndarray  # (queries, 10)
    scores: np.ndarray  # (queries, 10)
    nlist: int = 0
    nprobe: int = 0


# -- inputs ----------------------------------------------------------------------------------------


def corpus_sentences() -> list[str]:
    texts = [a.text for a in load_corpus(REPO_ROOT / "corpus")]
    return [s.strip() for t in texts for s in re.split(r"(?<=[.!?\"”])\s+", t) if len(s.split()) >= 5]


def mrpc_rows(path: Path) -> list[list[str]]:
    if not path.is_file():
        return []
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return [r for r in csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE) if len(r) == 5][1:]


def load_sentences(mrpc: Path) -> Sentences:
    rows = mrpc_rows(mrpc)
    base_texts = [r[3] for r in rows] + corpus_sentences()
    query_texts = [r[4] for r in rows if r[0] == "1"][:REAL_QUERIES]
    if not rows:
        print(f"note: {mrpc} not found; bases are the corpus sentences only, no real queries")
    texts = base_texts + query_texts
    revision = model_revision()
    key = hashlib.sha256("\n".join([revision, *texts]).encode()).hexdigest()[:16]
    path = CACHE / f"store-scale-embeddings-{key}.npy"
    if path.is_file():
        vectors = np.load(path)
    else:
        from service.embed import load_embedder

        print(f"encoding {len(texts)} sentences once (cached in {path.relative_to(REPO_ROOT)}) ...", flush=True)
        started = time.perf_counter()
        vectors = load_embedder(Settings.from_env({}).model_dir).encode(texts, batch_size=64)
        print(f"  {time.perf_counter() - started:.0f} s", flush=True)
        CACHE.mkdir(parents=True, exist_ok=True)
        np.save(path, vectors)
    vectors = np.asarray(vectors, dtype=np.float32)
    return Sentences(vectors[: len(base_texts)], vectors[len(base_texts) :], base_texts)


def _normalise(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


class Generator:
    """Quotes, variants and paraphrase queries from real embeddings (see the module docstring)."""

    def __init__(self, bases: np.ndarray, seed: int) -> None:
        self.bases = bases
        self.rng = np.random.default_rng(seed)
        sims = bases @ bases.T
        np.fill_diagonal(sims, -np.inf)
        self.neighbours = np.argsort(-sims, axis=1)[:, :10]

    def noise(self, n: int) -> np.ndarray:
        # (b1 - b2 + b3 - b4) / 2 has the bases' covariance (trace 0.94): realistic directions.
        pick = self.rng.integers(0, len(self.bases), size=(4, n))
        b = self.bases
        return np.asarray((b[pick[0]] - b[pick[1]] + b[pick[2]] - b[pick[3]]) * 0.5, dtype=np.float32)

    def store(self, quotes: int, chunk: int = 100_000) -> SyntheticStore:
        parts, owners = [], []
        for start in range(0, quotes, chunk):
            n = min(chunk, quotes - start)
            i = self.rng.integers(0, len(self.bases), size=n)
            j = self.neighbours[i, self.rng.integers(0, 10, size=n)]
            t = self.rng.uniform(0.0, 0.5, size=(n, 1)).astype(np.float32)
            centre = (1 - t) * self.bases[i] + t * self.bases[j] + NOISE * self.noise(n)
            own = np.arange(start, start + n)
            real = own < len(self.bases)  # the first quotes are the real sentences themselves
            centre[real] = self.bases[own[real]]
            centre = _normalise(centre)
            counts = self.rng.choice(VARIANT_COUNTS, size=n, p=np.array(VARIANT_WEIGHTS) / sum(VARIANT_WEIGHTS))
            rep = np.repeat(np.arange(n), counts)
            parts.append(_normalise(centre[rep] + VARIANT_NOISE * self.noise(len(rep))))
            owners.append(rep + start)
        return SyntheticStore(np.vstack(parts), quotes, np.concatenate(owners))

    def paraphrases(self, matrix: np.ndarray, n: int) -> np.ndarray:
        source = self.rng.integers(0, len(matrix), size=n)
        return _normalise(matrix[source] + QUERY_NOISE * self.noise(n))


# -- measuring -------------------------------------------------------------------------------------


def rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def time_queries(index: VectorIndex, queries: np.ndarray, k: int) -> tuple[list[float], np.ndarray, np.ndarray]:
    times, rows, scores = [], [], []
    for q in queries:
        one = q[None, :]
        started = time.perf_counter()
        hits = index.search(one, k)
        times.append((time.perf_counter() - started) * 1000)
        rows.append(hits.rows[0])
        scores.append(hits.scores[0])
    return times, np.array(rows), np.array(scores)


def measure(index: VectorIndex, queries: np.ndarray, build_s: float, train_s: float, rss_bytes: int) -> Run:
    times, rows, scores = time_queries(index, queries, 10)
    coarse, k64 = 0.0, 0.0
    nlist = nprobe = 0
    index_bytes = index.nbytes()
    if isinstance(index, CompactIndex):
        k64 = statistics.median(time_queries(index, queries, MATCHER_ROWS)[0])
        quantiser = index.faiss_index.quantizer
        coarse_times = []
        for q in queries:
            started = time.perf_counter()
            quantiser.search(q[None, :], index.nprobe)
            coarse_times.append((time.perf_counter() - started) * 1000)
        coarse = statistics.median(coarse_times)
        index_bytes = len(faiss.serialize_index(index.faiss_index))
        nlist, nprobe = index.nlist, index.nprobe
    return Run(
        index.kind,
        build_s,
        train_s,
        statistics.median(times),
        float(np.percentile(times, 95)),
        k64,
        coarse,
        index_bytes,
        rss_bytes,
        rows,
        scores,
        nlist,
        nprobe,
    )


def compare(exact: Run, compact: Run, matrix: np.ndarray, queries: np.ndarray) -> tuple[float, float, float]:
    """recall@10, worst top-1 loss, worst |score error| of the compact run against exact float32."""
    recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact.rows, compact.rows, strict=True)]))
    valid = compact.rows >= 0
    true = np.einsum("qd,qkd->qk", queries, matrix[np.where(valid, compact.rows, 0)])
    error = float(np.abs(true - compact.scores)[valid].max())
    loss = float(np.max(exact.scores[:, 0] - true[:, 0]))
    return recall, max(0.0, loss), error


def run_size(gen: Generator, quotes: int, real_queries: np.ndarray, n_queries: int) -> list[str]:
    started = time.perf_counter()
    store = gen.store(quotes)
    matrix = store.matrix
    queries = np.vstack([gen.paraphrases(matrix, n_queries), real_queries]).astype(np.float32)
    n = len(matrix)
    print(f"\n{quotes:,} quotes: {n:,} rows, generated in {time.perf_counter() - started:.1f} s", flush=True)

    exact = ExactIndex(matrix)
    with threadpool_limits(1):
        faiss.omp_set_num_threads(1)
        exact_run = measure(exact, queries, 0.0, 0.0, 0)
    print(f"  exact: median {exact_run.median_ms:.2f} ms, p95 {exact_run.p95_ms:.2f} ms", flush=True)

    faiss.omp_set_num_threads(os.cpu_count() or 1)
    gc.collect()
    before = rss()
    started = time.perf_counter()
    compact = CompactIndex(matrix)
    build_s = time.perf_counter() - started
    grown = rss() - before
    with threadpool_limits(1):
        faiss.omp_set_num_threads(1)
        compact_run = measure(compact, queries, build_s, compact.train_seconds, grown)
    recall, loss, error = compare(exact_run, compact_run, matrix, queries)
    print(
        f"  compact: build {build_s:.1f} s (train {compact.train_seconds:.1f} s, add {compact.add_seconds:.1f} s), "
        f"median {compact_run.median_ms:.2f} ms (coarse quantiser {compact_run.coarse_ms:.2f} ms), "
        f"recall@10 {recall:.3f}",
        flush=True,
    )
    auto = "compact" if n >= AUTO_COMPACT_MIN_ROWS else "exact"
    lines = []
    for run in (exact_run, compact_run):
        is_compact = run.kind == "compact"
        params = f"IVF{run.nlist},SQ8 p={run.nprobe}" if is_compact else "float32"
        build = f"{run.build_s:.1f} ({run.train_s:.1f} + {run.build_s - run.train_s:.1f})" if is_compact else "-"
        quality = f"{recall:.3f} | {loss:.4f} | {error:.4f}" if is_compact else "1 | 0 | 0"
        k64 = f"{run.median_ms_k64:.2f}" if is_compact else "="
        grown_kb = f"{run.rss_bytes / quotes:,.0f}" if is_compact else "-"
        mark = " (auto)" if run.kind == auto else ""
        lines.append(
            f"| {quotes:,} | {n:,} | {run.kind}{mark} | {params} | {build} | {run.median_ms:.2f} | {run.p95_ms:.2f} "
            f"| {k64} | {run.index_bytes / quotes:,.0f} | {grown_kb} | {quality} |"
        )
    del exact, compact, store, matrix
    gc.collect()
    return lines


def machine() -> str:
    model = "?"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [ln.split(":", 1)[1].strip() for ln in cpuinfo.read_text().splitlines() if "model name" in ln]
        model = names[0] if names else model
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{model}, {os.cpu_count()} cores, {memory:.0f} GiB; {platform.python_version()}, numpy {np.__version__}, "
        f"faiss {faiss.__version__} ({faiss.get_compile_options().strip()}); load average {load}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,100000,1000000")
    parser.add_argument("--queries", type=int, default=200, help="held-out paraphrase queries (plus 100 real)")
    parser.add_argument("--mrpc", type=Path, default=REPO_ROOT.parent / "shared" / "data" / "mrpc_train.tsv")
    args = parser.parse_args()
    print("command: .venv/bin/python bench/bench_store_scale.py " + " ".join(sys.argv[1:]))
    print("machine:", machine(), flush=True)
    started = time.perf_counter()
    sentences = load_sentences(args.mrpc)
    print(f"{len(sentences.bases):,} base sentences, {len(sentences.real_queries)} real queries")
    gen = Generator(sentences.bases, SEED)
    lines = [
        "| quotes | rows | index | parameters | build s (train + add) | query ms median | p95 | median k=64 "
        "| index B/quote | RSS Δ B/quote | recall@10 | top-1 loss | max score error |",
        "|" + "---|" * 13,
    ]
    sizes = [int(s) for s in args.sizes.split(",")]
    for quotes in sizes:
        lines += run_size(gen, quotes, sentences.real_queries, args.queries)
    print()
    print("\n".join(lines))
    print()
    print(f"total {time.perf_counter() - started:.0f} s; load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
