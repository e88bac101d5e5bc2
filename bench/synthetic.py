"""Synthetic quote stores of any size, in either backend, for the store benchmarks.

    from bench.synthetic import fill
    made = fill(location, quotes=100_000, gen=gen, vocabulary=words, revision=revision)

- **Vectors**: bench/bench_store_scale.py's generator (real sentence embeddings mixed and noised so
  that neighbourhoods look like real sentences'), 1.62 variants per quote as in the corpus store.
- **Wordings**: 8 to 30 words drawn from the base sentences' vocabulary with Zipf-like weights, so
  that a run of seven words names one wording (as in real text) and common words are common.
- **Speakers**: quotes / 100 people (at least 50), one alias each; **articles**: one per 10 quotes.

Rows go in the way each backend loads in bulk: SQLite in one transaction of `executemany` (its
triggers fill the full-text index and the change log), PostgreSQL by binary COPY with the search
indexes dropped first and built after the rows (pgvector's advice for HNSW).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.bench_store_scale import Generator
from service import canon
from service.model_files import MODEL_NAME
from service.records import Speaker, SpeakerKind
from service.speakers import AliasRecord, slug
from service.store import RegistryDelta, backend_of, create_store
from service.store.base import norm_key
from service.store.migrations import PG_VARIANT_INDEXES

CHUNK = 50_000


@dataclass(frozen=True, slots=True)
class Filled:
    location: str
    quotes: int
    matrix: np.ndarray  # (rows, dim): row r is variant id r + 1
    norms: list[str]  # normalised wording of each row
    fill_s: float
    index_s: float  # PostgreSQL: building the search indexes after the rows


def vocabulary(texts: list[str]) -> list[str]:
    words: dict[str, int] = {}
    for t in texts:
        for w in canon.normalise_text(t).split():
            words[w] = words.get(w, 0) + 1
    return sorted(words, key=lambda w: (-words[w], w))


def wordings(n: int, words: list[str], rng: np.random.Generator) -> list[str]:
    weights = 1.0 / np.arange(1, len(words) + 1) ** 0.9  # Zipf-like
    weights /= weights.sum()
    lengths = rng.integers(8, 31, size=n)
    picks = rng.choice(len(words), size=int(lengths.sum()), p=weights)
    out, at = [], 0
    for length in lengths.tolist():
        out.append(" ".join(words[i] for i in picks[at : at + length]))
        at += length
    return out


def _speakers(n: int, rng: np.random.Generator) -> list[Speaker]:
    syllables = ["ka", "lo", "mi", "ra", "ven", "dor", "sa", "tel", "bri", "no", "ash", "quin", "zu", "pe", "har"]
    out: list[Speaker] = []
    seen: set[str] = set()
    while len(out) < n:
        parts = rng.choice(syllables, size=5)
        name = f"{''.join(parts[:2]).title()} {''.join(parts[2:]).title()}"
        sid = slug(name)
        if sid not in seen:
            seen.add(sid)
            out.append(Speaker(sid, name, SpeakerKind.PERSON, None, {name}))
    return out


def _quote_id(i: int) -> str:
    return "q_" + hashlib.sha256(f"synthetic:{i}".encode()).hexdigest()[:12]


def _rows(
    quotes: int, quote_of_row: np.ndarray, norms: list[str], speakers: list[Speaker], rng: Any
) -> Iterator[tuple[Any, ...]]:
    """Variant rows (without the embedding) in id order."""
    who = rng.integers(0, len(speakers), size=quotes)
    for r, q in enumerate(quote_of_row.tolist()):
        text = norms[r]
        sp = speakers[int(who[q])]
        yield (
            _quote_id(q),
            f"a_synth{q // 10:08d}",
            "direct",
            text,
            json.dumps([[0, len(text), text]]),
            "said",
            sp.name,
            sp.id,
            0.9,
            "speech",
            None,
            None,
            text,
            norm_key(text),
        )


_VARIANT_COLUMNS = (
    "quote_id, article_id, kind, text, spans, cue, speaker_mention, speaker_id, confidence, cue_class, content, "
    "speaker_span, norm, norm_key, embedding"
)


def fill(
    location: str,
    quotes: int,
    gen: Generator,
    words: list[str],
    revision: str,
    seed: int = 7,
    vector_index: bool = True,
) -> Filled:
    """A new store at `location` (a file that does not exist, or an empty database) with `quotes` quotes.

    `vector_index=False`: PostgreSQL's HNSW index is not built (19 min at 1M quotes), for a benchmark
    that does not search by vector; the store must not be used for search then."""
    rng = np.random.default_rng(seed)
    synthetic = gen.store(quotes)
    matrix, quote_of_row = synthetic.matrix, synthetic.quote_of_row
    norms = wordings(len(matrix), words, rng)
    speakers = _speakers(max(50, quotes // 100), rng)
    articles = (quotes + 9) // 10
    started = time.perf_counter()
    store = create_store(location, MODEL_NAME, revision, int(matrix.shape[1]), corpus="synthetic")
    with store.write() as w:
        w.save_registry(RegistryDelta(tuple(speakers), tuple(AliasRecord(s.id, s.name, "name") for s in speakers)))
    store.close()
    rows = _rows(quotes, quote_of_row, norms, speakers, rng)
    article_rows = [
        (
            f"a_synth{i:08d}",
            f"https://synthetic.example/{i}",
            "Synthetic Wire",
            "",
            "2025-01-01",
            "en",
            None,
            None,
            f"h{i}",
            "synthetic article",
            "2025-01-01T00:00:00+00:00",
        )
        for i in range(articles)
    ]
    quote_rows = [(_quote_id(q), "2025-01-01T00:00:00+00:00") for q in range(quotes)]
    index_s = 0.0
    if backend_of(location) == "postgresql":
        index_s = _fill_postgres(location, article_rows, quote_rows, rows, matrix, vector_index)
    else:
        _fill_sqlite(location, article_rows, quote_rows, rows, matrix)
    counts = {"articles": articles, "quotes": quotes, "variants": len(matrix)}
    _set_meta(location, counts, revision)
    return Filled(location, quotes, matrix, norms, time.perf_counter() - started, index_s)


def _fill_sqlite(
    path: str, articles: list[Any], quotes: list[Any], rows: Iterator[tuple[Any, ...]], matrix: np.ndarray
) -> None:
    from service.store.sqlite import connect

    with contextlib.closing(connect(path)) as conn:  # type: ignore[arg-type]
        conn.execute("PRAGMA synchronous = OFF")  # a benchmark's fill: durability is not the subject
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(f"INSERT INTO articles VALUES ({','.join('?' * 11)})", articles)
        conn.executemany("INSERT INTO quotes VALUES (?, ?)", quotes)
        batch: list[tuple[Any, ...]] = []
        for r, row in enumerate(rows):
            batch.append((*row, matrix[r].tobytes()))
            if len(batch) == CHUNK:
                conn.executemany(f"INSERT INTO variants ({_VARIANT_COLUMNS}) VALUES ({','.join('?' * 15)})", batch)
                batch = []
        if batch:
            conn.executemany(f"INSERT INTO variants ({_VARIANT_COLUMNS}) VALUES ({','.join('?' * 15)})", batch)
        conn.execute("COMMIT")


def _fill_postgres(
    url: str,
    articles: list[Any],
    quotes: list[Any],
    rows: Iterator[tuple[Any, ...]],
    matrix: np.ndarray,
    vector_index: bool = True,
) -> float:
    import psycopg
    from pgvector.psycopg import register_vector

    with psycopg.connect(url, autocommit=True) as conn:
        register_vector(conn)
        for name in PG_VARIANT_INDEXES:
            conn.execute(f"DROP INDEX {name}")
        with conn.cursor() as cur:
            with cur.copy("COPY articles FROM STDIN") as copy:
                for a in articles:
                    copy.write_row(a)
            with cur.copy("COPY quotes FROM STDIN") as copy:
                for q in quotes:
                    copy.write_row(q)
            with cur.copy(f"COPY variants ({_VARIANT_COLUMNS}) FROM STDIN WITH (FORMAT BINARY)") as copy:
                copy.set_types(["text"] * 8 + ["float8", "text", "text", "text", "text", "int8", "vector"])
                for r, row in enumerate(rows):
                    copy.write_row((*row, matrix[r]))
        started = time.perf_counter()
        conn.execute("SET maintenance_work_mem = '6GB'")  # HNSW builds fast only while the graph fits
        conn.execute("SET max_parallel_maintenance_workers = 2")
        for name, statement in PG_VARIANT_INDEXES.items():
            if vector_index or name != "variants_embedding":
                conn.execute(statement)
        conn.execute("ANALYZE")
        return time.perf_counter() - started


def _set_meta(location: str, counts: dict[str, int], revision: str) -> None:
    from service.store import open_store

    store = open_store(location, MODEL_NAME, revision)
    try:
        with store.write() as w:
            conn: Any = w.conn  # type: ignore[attr-defined]
            mark = "%s" if backend_of(location) == "postgresql" else "?"
            for table, n in counts.items():
                conn.execute(f"UPDATE meta SET value = {mark} WHERE key = {mark}", (str(n), f"count_{table}"))
            w.bump()
    finally:
        store.close()
