"""What the sentences-only parse skips, measured in one run.

    .venv/bin/python -m bench.bench_segments [--polnear ../shared/polnear/dev] [--rounds 5]

A text with no quotation, colon, "according to" or word a cue could be read from is parsed for its
sentences only (service/extract/segments.py). For the corpus's sentences (and PolNeAR's, when
given): how many take that way, and for those, `segment_text` with it against the full parse, the
two timed in alternation (medians over rounds). The segments are compared as well.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

from service.config import REPO_ROOT
from service.corpus import load_corpus
from service.encoders import keep_torch_out
from service.speakers import SpeakerRegistry


def _sentences(texts: list[str], nlp: Any) -> list[str]:
    return [s.text.strip() for t in texts for s in nlp(t).sents if len(s.text.split()) >= 3]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--polnear", type=Path, help="a PolNeAR split (its text/ folder is read)")
    parser.add_argument("--articles", type=int, default=20, help="PolNeAR articles read")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    keep_torch_out()  # as an int8 worker runs: no torch behind spaCy
    from service.extract import segments
    from service.nlp import load_nlp

    nlp = load_nlp()
    registry = SpeakerRegistry()
    registry.load_file(REPO_ROOT / "corpus" / "speakers.json")
    sets = {"corpus": _sentences([a.text for a in load_corpus(REPO_ROOT / "corpus")], nlp)}
    if args.polnear:
        files = sorted((args.polnear / "text").glob("*"))[: args.articles]
        sets["polnear"] = _sentences([f.read_text(encoding="utf-8") for f in files], nlp)
    sentences_only = segments._parse_sentences_only

    def run(texts: list[str], short_way: bool) -> tuple[float, list[list[Any]]]:
        segments._parse_sentences_only = sentences_only if short_way else (lambda body_text, nlp: None)
        try:
            start = time.perf_counter()
            found = [segments.segment_text(t, registry, nlp) for t in texts]
            return time.perf_counter() - start, found
        finally:
            segments._parse_sentences_only = sentences_only

    print(f"pipeline: {', '.join(nlp.pipe_names)}; sentences-only parse keeps {', '.join(segments._SENTENCE_PIPES)}")
    for name, texts in sets.items():
        lean = [t for t in texts if sentences_only(segments._body_text(t), nlp) is not None]
        short, full = [], []
        same = True
        for _ in range(args.rounds):  # alternating, so that both meet the same load
            seconds, got = run(lean, True)
            short.append(seconds)
            seconds, want = run(lean, False)
            full.append(seconds)
            same = same and got == want
        a, b = statistics.median(short) / len(lean) * 1000, statistics.median(full) / len(lean) * 1000
        print(
            f"{name}: {len(lean)} of {len(texts)} sentences ({len(lean) / len(texts):.0%}) take the sentences-only "
            f"parse; segment_text {a:.2f} ms vs {b:.2f} ms with the full parse (x{a / b:.2f}); "
            f"segments {'identical' if same else 'DIFFERENT'}"
        )


if __name__ == "__main__":
    main()
