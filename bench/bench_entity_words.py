"""The flags' entity words: spaCy's recogniser alone against the whole pipeline, on the same texts.

    .venv/bin/python bench/bench_entity_words.py [--polnear ../shared/polnear/dev]

Each segment a request matches is compared with the stored wording, and the comparison asks spaCy
for the named entities of both (`service/flags.py`). The recogniser has its own token vectors, so
the flags run it alone. This prints the time per sentence both ways, measured in this run, and how
many sentences get other entities (the parser's sentence ends are the only thing the recogniser
loses). And how many sentences need the recogniser at all: the flags ask it only about a capital
that opens the text or a word in capitals, and not when that word is a stop word or a known place.
Corpus sentences by default; PolNeAR's are read where they lie, never copied.
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

from service import flags
from service.corpus import load_corpus
from service.nlp import load_nlp

CORPUS = Path(__file__).resolve().parent.parent / "corpus"


def sentences(polnear: Path | None) -> list[str]:
    texts = [a.text for a in load_corpus(CORPUS)]
    if polnear is not None:
        texts += [p.read_text(encoding="utf-8") for p in sorted((polnear / "text").glob("*.txt"))]
    return [s for t in texts for s in re.split(r"(?<=[.!?])\s+", t) if 3 < len(s.split()) < 60]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--polnear", type=Path, help="also the sentences of a PolNeAR split")
    args = parser.parse_args()
    nlp = load_nlp()
    texts = sentences(args.polnear)
    others = [name for name in nlp.pipe_names if name != "ner"]
    nlp("Warm-up, said Peskov in Moscow.")
    started = time.perf_counter()
    full = [[(e.start_char, e.end_char, e.label_) for e in nlp(t).ents] for t in texts]
    middle = time.perf_counter()
    alone = [[(e.start_char, e.end_char, e.label_) for e in nlp(t, disable=others).ents] for t in texts]
    ended = time.perf_counter()
    per_full = (middle - started) / len(texts) * 1000
    per_alone = (ended - middle) / len(texts) * 1000
    differ = sum(a != b for a, b in zip(full, alone, strict=True))
    print(f"{len(texts):,} sentences")
    print(f"whole pipeline        {per_full:6.2f} ms a sentence")
    print(f"recogniser alone      {per_alone:6.2f} ms a sentence")
    print(f"ratio alone / whole:  {per_alone / per_full:.2f}")
    print(f"sentences whose entities differ: {differ}")
    flags._spacy_entity_words.cache_clear()
    started = time.perf_counter()
    for t in texts:
        flags._entities(t, flags.tokens(t), nlp)
    per_flags = (time.perf_counter() - started) / len(texts) * 1000
    asked = flags._spacy_entity_words.cache_info()
    print(f"sentences whose flags ask the recogniser: {asked.hits + asked.misses:,} of {len(texts):,}")
    print(f"the flags' entities, recogniser included where asked: {per_flags:6.2f} ms a sentence")


if __name__ == "__main__":
    main()
