"""The service's matcher against what a user would write in ten lines: encode the store with
sentence-transformers, then `util.semantic_search` per query. Same answers expected, speed compared.

    .venv/bin/python bench/bench_naive.py [--runs 5]

Queries: every statement wording of the corpus as a sentence, plus light rewrites of each (word
dropped, clause reordered), so both verbatim and near-paraphrase lookups are covered. Both sides
get the same segment texts and the same model; the naive side's answer is the quote of its best
variant. Prints agreement of the top quote, and the time per query of each, measured in this run.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from sentence_transformers import util

from service.config import Settings
from service.embed import load_embedder
from service.match import Matcher, Segment
from service.nlp import load_nlp
from service.records import SegmentKind
from service.store import SqliteStore


def rewrites(text: str) -> list[str]:
    words = text.split()
    out = [text]
    if len(words) > 6:
        out.append(" ".join(words[:2] + words[3:]))  # one word dropped
        half = len(words) // 2
        out.append(" ".join(words[half:] + words[:half]))  # halves swapped
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    settings = Settings.from_env()
    embedder = load_embedder(settings.model_dir, cache_size=0)  # no encode cache: both sides encode every query
    store = SqliteStore(settings.store_path, embedder.name, embedder.revision)
    matcher = Matcher(store, embedder, load_nlp())
    model = embedder._model  # the same SentenceTransformer instance: only the search differs

    # The naive user's index: every reported wording, encoded once.
    variants = [(v.text, q.id) for q in store.quotes(limit=1_000_000)[1] for v in q.variants]
    corpus_emb = model.encode([t for t, _ in variants], convert_to_tensor=True, normalize_embeddings=True)

    queries = [r for text, _ in variants for r in rewrites(text)]
    segments = [Segment(q, 0, len(q), SegmentKind.SENTENCE, None, None) for q in queries]

    def naive() -> list[str]:
        answers = []
        for q in queries:  # one request per query, as a user's loop would do
            emb = model.encode([q], convert_to_tensor=True, normalize_embeddings=True)
            hit = util.semantic_search(emb, corpus_emb, top_k=1)[0][0]
            answers.append(variants[int(hit["corpus_id"])][1])
        return answers

    def service() -> list[str]:
        answers = []
        for seg in segments:
            (m,) = matcher.match_segments([seg], top_k=1, min_similarity=0.0)
            answers.append(m.quote.id if m.quote else "")
        return answers

    with torch.inference_mode():
        naive_answers, service_answers = naive(), service()  # warm-up, and the answers compared
        t_naive: list[float] = []
        t_service: list[float] = []
        for _ in range(args.runs):
            for fn, sink in ((naive, t_naive), (service, t_service)):
                start = time.perf_counter()
                fn()
                sink.append((time.perf_counter() - start) / len(queries) * 1000)

    agree = np.mean([a == b for a, b in zip(naive_answers, service_answers, strict=True)])
    n_naive, n_service = statistics.median(t_naive), statistics.median(t_service)
    print(f"queries: {len(queries)} ({len(variants)} stored wordings x rewrites), {args.runs} runs, medians")
    print(f"top quote agreement      {agree:.3f}")
    print(f"naive semantic_search    {n_naive:7.2f} ms/query  (encode + util.semantic_search)")
    print(f"service matcher          {n_service:7.2f} ms/query  (encode + top-k + flags + verdict)")
    print(f"ratio service / naive    {n_service / n_naive:.2f}")


if __name__ == "__main__":
    main()
