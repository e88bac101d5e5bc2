"""The lookup of a segment that is part of a stored wording, at scale, both backends, in one run.

    .venv/bin/python -m bench.bench_wording_lookup [--quotes 1000000] [--backends sqlite,postgresql]
        [--lookups 200] [--mrpc ../shared/data/mrpc_train.tsv]

The matcher asks it for every segment of three words or more that repeats no whole wording
(`Reader.verbatim` → `containing`): which stored wordings hold the segment's words in a row. On a
synthetic store (bench/synthetic.py; PostgreSQL without its HNSW index, which this lookup does not
use), for runs of seven words of stored wordings, it times, alternately on the same runs:

- **phrase**: the full-text phrase query of the whole run (FTS5 phrase; PostgreSQL
  `phraseto_tsquery` on the GIN index), then the run check: how the store looked it up before;
- **rarest words**: `containing` as it is, the run's three longest words asked of the same index,
  then the run check on the wordings found.

Both must return the same wordings for every run (checked). Prints medians, p95 and the ratio.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.bench_store_backends import load_sentences, model_revision, new_database, postgres, vocabulary
from bench.bench_store_scale import Generator
from bench.synthetic import MODEL_NAME, fill
from service.config import REPO_ROOT
from service.store import open_store
from service.store.base import WordingRow, contains_words

SEED = 11


def by_phrase(reader: Any, norm: str) -> list[WordingRow]:
    """The lookup as it was: a phrase query of the whole run."""
    if reader.__class__.__module__.endswith("sqlite"):
        where, param = "id IN (SELECT rowid FROM variants_fts WHERE variants_fts MATCH ?)", f'"{norm}"'
    else:
        where, param = "to_tsvector('simple'::regconfig, norm) @@ phraseto_tsquery('simple'::regconfig, ?)", norm
    rows = reader._wordings(where, (param,))
    return sorted((r for r in rows if contains_words(r.norm, norm)), key=lambda r: r.id)


def measure(location: str, norms: list[str], lookups: int) -> dict[str, list[float]]:
    store = open_store(location, MODEL_NAME, model_revision())
    rng = np.random.default_rng(SEED)
    runs = [" ".join(norms[int(i)].split()[1:8]) for i in rng.integers(0, len(norms), size=lookups)]
    times: dict[str, list[float]] = {"phrase": [], "rarest words": []}
    try:
        with store.read() as r:  # warm: connections, caches
            by_phrase(r, runs[0])
            r.containing(runs[0])
        for run in runs:
            with store.read() as r:
                started = time.perf_counter()
                before = by_phrase(r, run)
                times["phrase"].append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                now = r.containing(run)
                times["rarest words"].append((time.perf_counter() - started) * 1000)
            assert now and [w.id for w in now] == [w.id for w in before], run
    finally:
        store.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quotes", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--lookups", type=int, default=200)
    parser.add_argument("--mrpc", type=Path, default=REPO_ROOT.parent / "shared" / "data" / "mrpc_train.tsv")
    args = parser.parse_args()
    sentences = load_sentences(args.mrpc)
    gen = Generator(sentences.bases, SEED)
    words = vocabulary(sentences.base_texts)
    print(f"{args.quotes:,} quotes, {args.lookups} runs of seven words of stored wordings, medians (p95) in ms")
    with postgres() as server:
        for backend in args.backends.split(","):
            scratch = None
            if backend == "postgresql":
                location = new_database(server, "wording")
            else:
                scratch = Path(tempfile.mkdtemp(prefix="quotes-bench-"))
                location = str(scratch / "quotes.sqlite3")
            try:
                filled = fill(location, args.quotes, gen, words, model_revision(), vector_index=False)
                t = measure(location, filled.norms, args.lookups)
            finally:
                if scratch is not None:
                    shutil.rmtree(scratch, ignore_errors=True)
            phrase, rarest = statistics.median(t["phrase"]), statistics.median(t["rarest words"])
            print(
                f"  {backend:<10} phrase {phrase:6.2f} ({np.percentile(t['phrase'], 95):6.2f})   "
                f"rarest words {rarest:6.2f} ({np.percentile(t['rarest words'], 95):6.2f})   "
                f"phrase / rarest words {phrase / rarest:5.1f}x   (target: <= 2 ms)"
            )


if __name__ == "__main__":
    main()
