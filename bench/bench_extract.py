"""Extraction speed on an 800-word article, against spaCy's own parse of the same text.

    .venv/bin/python bench/bench_extract.py [--runs 15]

Prints medians and the ratio extraction / bare spaCy parse, both measured in this run (the
machine is shared: absolute times drift, the ratio holds).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from service.corpus import ArticleMeta, load_corpus, make_article
from service.extract import extract_article
from service.nlp import load_nlp
from service.speakers import SpeakerRegistry

CORPUS = Path(__file__).resolve().parent.parent / "corpus"


def article_of(words: int) -> str:
    """The corpus texts, paragraph by paragraph, until the article has `words` words."""
    paragraphs = [p for a in load_corpus(CORPUS) for p in a.text.split("\n\n") if p.strip()]
    out: list[str] = []
    while sum(len(p.split()) for p in out) < words:
        out.append(paragraphs[len(out) % len(paragraphs)])
    return "\n\n".join(out)


def median_ms(fn: object, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--words", type=int, default=800)
    args = parser.parse_args()
    nlp = load_nlp()
    text = article_of(args.words)
    article = make_article(text, ArticleMeta(outlet="Bench", url="https://bench.example/a", published=None))
    registry = SpeakerRegistry()
    registry.load_file(CORPUS / "speakers.json")
    extract_article(article, registry, nlp)  # warm-up
    parse = median_ms(lambda: nlp(text), args.runs)
    extract = median_ms(lambda: extract_article(article, registry, nlp), args.runs)
    words = len(text.split())
    print(f"article: {words} words, {len(text)} characters; {args.runs} runs, medians")
    print(f"spaCy parse alone      {parse:8.1f} ms")
    print(f"extraction (all rules) {extract:8.1f} ms   {words / extract * 1000:,.0f} words/s")
    print(f"ratio extraction / parse: {extract / parse:.2f}")


if __name__ == "__main__":
    main()
