"""Bulk ingest: `python -m service ingest PATH` adds many articles, with progress and a summary.

PATH is a JSONL file (one article per line) or a directory: its `*.jsonl` files, its `*.json`
files (one article each), or a corpus with a `manifest.json` (service/corpus.py). An article is
`{"text", "outlet", "url", "published"?, "title"?, "language"?, "wire"?}`; a record that is not one
is reported with its file and line and skipped, and the rest go on.

Extraction and encoding run in `workers` processes (each with its own spaCy and model); this
process persists their results in input order, one transaction per article (service/ingest.py).
The order makes the result the same as adding the articles one by one: a result whose
extraction did not see a speaker stored meanwhile by an earlier article of the run, and could
depend on it, is extracted again here (`ingest.RegistryMoved`). Articles already in the store with
the same content are skipped before any extraction, so a run that was interrupted continues where
it stopped when started again.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import ingest
from .corpus import (
    MANIFEST,
    ArticleMeta,
    CorpusError,
    load_manifest,
    make_article,
    parse_date,
    parse_url,
    read_text_file,
    validate_text,
)
from .records import Article
from .store import Store, open_store

FIELDS = {"text", "outlet", "url", "published", "title", "language", "wire"}
MAX_LINE_BYTES = 4 * 200_000 + 10_000  # an article's longest text in UTF-8, plus its fields


@dataclass(frozen=True, slots=True)
class Record:
    where: str  # "file:line", or the file
    article: Article | None
    error: str | None = None


@dataclass(slots=True)
class Summary:
    records: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    bad: list[str] = field(default_factory=list)  # "where: why"
    statements: int = 0
    new_quotes: int = 0
    joined_quotes: int = 0
    new_speakers: int = 0
    extracted_again: int = 0
    parse_s: float = 0.0  # extraction, summed over the processes that did it
    encode_s: float = 0.0  # embedding, summed likewise
    write_s: float = 0.0  # canonicalisation and the write transactions, in this process
    wall_s: float = 0.0
    workers: int = 0

    def lines(self) -> list[str]:
        rate = (self.added + self.updated + self.unchanged) / self.wall_s if self.wall_s else 0.0
        done = self.added + self.updated
        return [
            f"{self.records:,} records in {self.wall_s:.1f} s ({rate:.2f} articles/s): {self.added:,} added, "
            f"{self.updated:,} updated, {self.unchanged:,} already there, {len(self.bad):,} skipped as bad",
            f"{self.statements:,} statements; {self.new_quotes:,} new quotes, {self.joined_quotes:,} joined existing "
            f"ones; {self.new_speakers:,} new speakers",
            f"time: parse {self.parse_s:.1f} s, encode {self.encode_s:.1f} s (both summed over "
            f"{max(1, self.workers)} process(es)), write {self.write_s:.1f} s"
            + (f"; {done / self.wall_s:.2f} new or changed articles/s" if self.wall_s and done else ""),
            *(
                [f"{self.extracted_again:,} extracted again after earlier articles stored speakers they name"]
                if self.extracted_again
                else []
            ),
        ]


# -- reading ---------------------------------------------------------------------------------------


def _article(raw: Any, where: str) -> Article:
    if not isinstance(raw, dict):
        raise CorpusError(f"{where}: expected a JSON object with text, outlet and url")
    unknown = sorted(set(raw) - FIELDS)
    if unknown:
        raise CorpusError(f"{where}: unknown field(s) {', '.join(unknown)} (allowed: {', '.join(sorted(FIELDS))})")
    text = raw.get("text")
    if not isinstance(text, str):
        raise CorpusError(f"{where}: 'text' is required and must be a string")
    outlet = raw.get("outlet")
    if not isinstance(outlet, str) or not outlet.strip():
        raise CorpusError(f"{where}: 'outlet' is required and must be a non-empty string")
    for name in ("title", "language", "wire"):
        if raw.get(name) is not None and not isinstance(raw[name], str):
            raise CorpusError(f"{where}: '{name}' must be a string")
    meta = ArticleMeta(
        outlet=outlet.strip(),
        url=parse_url(raw.get("url"), where),
        published=parse_date(raw.get("published"), where),
        language=(raw.get("language") or "en").strip() or "en",
        title=raw.get("title") or "",
        wire=(raw.get("wire") or "").strip() or None,
    )
    return make_article(validate_text(text, f"{where}: text"), meta)


def _jsonl(path: Path) -> Iterator[Record]:
    with path.open("rb") as fh:
        for number, line in enumerate(fh, 1):
            where = f"{path}:{number}"
            if not line.strip():
                continue
            if len(line) > MAX_LINE_BYTES:
                yield Record(where, None, f"{where}: {len(line):,} bytes is too long for one article")
                continue
            try:
                raw = json.loads(line.decode("utf-8"))
            except UnicodeDecodeError as exc:
                yield Record(where, None, f"{where}: not valid UTF-8 (byte {exc.start})")
                continue
            except json.JSONDecodeError as exc:
                yield Record(where, None, f"{where}: invalid JSON at column {exc.colno}: {exc.msg}")
                continue
            try:
                yield Record(where, _article(raw, where))
            except CorpusError as exc:
                yield Record(where, None, str(exc))


def _json_file(path: Path) -> Iterator[Record]:
    where = str(path)
    try:
        raw = json.loads(read_text_file(path))
        yield Record(where, _article(raw, where))
    except json.JSONDecodeError as exc:
        yield Record(where, None, f"{where}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}")
    except CorpusError as exc:
        yield Record(where, None, str(exc))


def _corpus(directory: Path) -> Iterator[Record]:
    for file, meta in load_manifest(directory):  # a broken manifest stops the run: it is one record
        where = str(directory / file)
        try:
            yield Record(where, make_article(read_text_file(directory / file), meta, file=file))
        except CorpusError as exc:
            yield Record(where, None, str(exc))


def read_records(path: Path) -> Iterator[Record]:
    """The records of a JSONL file or a directory, in order; a bad one is a Record with its error."""
    if path.is_dir():
        if (path / MANIFEST).is_file():
            yield from _corpus(path)
            return
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in (".jsonl", ".json"))
        if not files:
            raise CorpusError(f"{path}: no *.jsonl or *.json files and no {MANIFEST}")
        for file in files:
            yield from (_jsonl(file) if file.suffix == ".jsonl" else _json_file(file))
    elif path.is_file():
        yield from _jsonl(path)
    else:
        raise CorpusError(f"{path}: no such file or directory")


def count_records(path: Path) -> int | None:
    """How many records (for the progress bar): lines of JSONL, files, manifest entries."""
    try:
        if path.is_file():
            with path.open("rb") as fh:
                return sum(1 for line in fh if line.strip())
        if (path / MANIFEST).is_file():
            return len(load_manifest(path))
        total = 0
        for file in path.iterdir():
            if file.suffix == ".jsonl":
                total += count_records(file) or 0
            elif file.suffix == ".json":
                total += 1
        return total
    except (OSError, CorpusError):
        return None


# -- the worker processes --------------------------------------------------------------------------

_worker: dict[str, Any] = {}


def _start_worker(location: str, model_dir: str, backend: str, threads: int) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    import torch

    from .embed import load_embedder
    from .nlp import load_nlp

    torch.set_num_threads(threads)
    embedder = load_embedder(Path(model_dir), backend=backend)
    _worker.update(
        store=open_store(location, embedder.name, embedder.revision, pool_size=1),
        embedder=embedder,
        nlp=load_nlp(),
    )


def _prepare_in_worker(article: Article) -> ingest.Prepared | str:
    store: Store = _worker["store"]
    try:
        with store.read() as r:
            version = r.state().registry_version
            registry = store.shared_registry(r, version)
        return ingest.prepare(article, registry, version, _worker["embedder"], _worker["nlp"])
    except Exception as exc:  # this article's problem, reported with its position; the run goes on
        return f"{type(exc).__name__}: {exc}"


# -- the run ---------------------------------------------------------------------------------------


class BulkIngest:
    """Adds the records of PATH to `store`; `workers` extraction processes (0: this process)."""

    def __init__(self, store: Store, model_dir: Path, backend: str = "torch", workers: int = 1) -> None:
        self.store = store
        self.model_dir = model_dir
        self.backend = backend
        self.workers = workers
        self._local: tuple[Any, Any] | None = None  # embedder and nlp of this process, loaded when needed

    def _here(self) -> tuple[Any, Any]:
        if self._local is None:
            from .embed import load_embedder
            from .nlp import load_nlp

            self._local = (load_embedder(self.model_dir, backend=self.backend), load_nlp())
        return self._local

    def _prepare_here(self, article: Article) -> ingest.Prepared:
        embedder, nlp = self._here()
        with self.store.read() as r:
            version = r.state().registry_version
            registry = self.store.shared_registry(r, version)
        return ingest.prepare(article, registry, version, embedder, nlp)

    def run(self, path: Path, progress: Any = None) -> Summary:
        summary = Summary(workers=self.workers)
        started = time.perf_counter()
        pool: ProcessPoolExecutor | None = None
        if self.workers > 0:
            threads = max(1, (os.cpu_count() or 1) // self.workers)
            pool = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("spawn"),  # no torch or pool state inherited by fork
                initializer=_start_worker,
                initargs=(self._location(), str(self.model_dir), self.backend, threads),
            )
        try:
            pending: list[tuple[Record, Future[ingest.Prepared | str] | None]] = []
            window = max(2, 4 * self.workers)
            for record in read_records(path):
                summary.records += 1
                if record.article is None or self._present(record.article):
                    pending.append((record, None))
                else:
                    future = pool.submit(_prepare_in_worker, record.article) if pool else None
                    pending.append((record, future))
                while len(pending) > window or (pending and pending[0][1] is None):
                    self._finish(*pending.pop(0), summary, progress)
            while pending:
                self._finish(*pending.pop(0), summary, progress)
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
            summary.wall_s = time.perf_counter() - started
        return summary

    def _location(self) -> str:
        url = getattr(self.store, "url", None)
        return str(url) if url else self.store.location

    def _present(self, article: Article) -> bool:
        with self.store.read() as r:
            state = r.article_state(article.url)
        return state is not None and state.content_hash == article.content_hash

    def _finish(
        self, record: Record, future: Future[ingest.Prepared | str] | None, summary: Summary, progress: Any
    ) -> None:
        try:
            if record.article is None:
                summary.bad.append(record.error or record.where)
                _note(progress, f"skipped {record.error}")
                return
            article = record.article
            prepared: ingest.Prepared | str
            if future is None and not self.workers:
                if self._present(article):
                    summary.unchanged += 1
                    return
                try:
                    prepared = self._prepare_here(article)
                except Exception as exc:
                    prepared = f"{type(exc).__name__}: {exc}"
            elif future is None:  # found in the store before extraction
                summary.unchanged += 1
                return
            else:
                prepared = future.result()
            if isinstance(prepared, str):
                summary.bad.append(f"{record.where}: extraction failed ({prepared})")
                _note(progress, f"skipped {record.where}: extraction failed ({prepared})")
                return
            self._persist(prepared, summary)
        finally:
            if progress is not None:
                progress.update(1)

    def _persist(self, prepared: ingest.Prepared, summary: Summary) -> None:
        while True:
            started = time.perf_counter()
            try:
                report = ingest.persist(self.store, prepared)
                summary.write_s += time.perf_counter() - started
                break
            except ingest.RegistryMoved:
                summary.write_s += time.perf_counter() - started
                summary.extracted_again += 1
                prepared = self._prepare_here(prepared.article)
        summary.parse_s += prepared.extract_s
        summary.encode_s += prepared.encode_s
        setattr(summary, report.status, getattr(summary, report.status) + 1)
        summary.statements += report.mentions
        summary.new_quotes += len(report.new_quotes)
        summary.joined_quotes += len(report.joined_quotes)
        summary.new_speakers += len(report.new_speakers)


def _note(progress: Any, line: str) -> None:
    if progress is not None:
        progress.write(line, file=sys.stderr)
    else:
        print(line, file=sys.stderr)


def run_cli(path: Path, location: str, model_dir: Path, backend: str, workers: int, quiet: bool) -> int:
    """`python -m service ingest`: 0 when every record was ingested, 2 when some were skipped as bad."""
    from tqdm import tqdm

    from .embed import load_embedder

    if not path.exists():
        raise CorpusError(f"{path}: no such file or directory")
    embedder = load_embedder(model_dir, backend=backend)
    store = open_store(location, embedder.name, embedder.revision)
    try:
        bulk = BulkIngest(store, model_dir, backend, workers)
        total = count_records(path)
        with tqdm(total=total, unit=" articles", disable=quiet, file=sys.stderr, smoothing=0.1) as progress:
            summary = bulk.run(path, progress)
    except KeyboardInterrupt:
        print("interrupted: the articles stored so far stay; run the same command again to go on", file=sys.stderr)
        return 130
    finally:
        store.close()
    for line in summary.lines():
        print(line, file=sys.stderr)
    return 2 if summary.bad else 0
