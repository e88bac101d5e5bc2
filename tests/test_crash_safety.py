"""Crash safety: an add that was acknowledged survives a SIGKILL, and the store stays whole.

The real gunicorn (one worker) serves a private copy of the store. A client adds new articles one
after another and records every add answered 200. At a chosen moment the whole server, master and
worker (it runs in a process group of its own), is killed with SIGKILL. Then the store is opened by the
service's own code and checked with SQLite, and a new server serves the same file for the next round.

Kill moments are drawn with a fixed seed from what an add was measured to take on this machine, in
turn: anywhere in an add (from its request to just past its answer); inside its write transaction
(after the rollback journal appears, before the commit); and in the commit, as soon as the journal
is made hot (its header is written with the magic number only once its content is synced).

A kill before the commit leaves a journal whose header is still zeros: SQLite does not count it as
hot, the database file was never written, and the next write transaction replaces it. A kill in the
commit leaves a hot journal, which the next open rolls back and deletes.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import os
import random
import signal
import sqlite3
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pgdb
import psutil
import psycopg
import pytest
from servers import Server, start_server

from service.config import REPO_ROOT
from service.store import SqliteStore, open_store
from service.store.postgres import WRITE_LOCK

pytestmark = pytest.mark.slow

KEY = "crash-key-0123456789abcdef"
SEED = 20250129
ROUNDS = 6  # two of each kind of kill moment
JOURNAL_MAGIC = bytes.fromhex("d9d505f920a163d7")  # SQLite's rollback journal header, once the journal is hot
SETTINGS = {
    "QUOTES_WORKERS": "1",
    "QUOTES_THREADS": "2",
    "QUOTES_API_KEYS": KEY,
    "QUOTES_RATE_LIMIT": "off",
    "QUOTES_RATE_LIMIT_WRITE": "off",
}
CORPUS_TEXTS = [p.read_text(encoding="utf-8") for p in sorted((REPO_ROOT / "corpus").glob("*.txt"))]


def articles() -> Iterator[dict[str, Any]]:
    """New articles: a corpus text with a quoted sentence of its own, under a URL of its own."""
    for i in itertools.count():
        yield {
            "text": CORPUS_TEXTS[i % len(CORPUS_TEXTS)]
            + f'\n\n"The review of the accord will take {i + 2} more weeks," Dmitry Peskov told reporters.',
            "outlet": "Crash Wire",
            "url": f"https://crash.example.org/articles/{i}",
            "title": f"Crash test article {i}",
            "published": "2025-02-01",
        }


def journal_of(store_path: Path) -> Path:
    return store_path.with_name(store_path.name + "-journal")


def journal_state(journal: Path) -> str | None:
    """None: no journal; "hot": a commit was under way; "stale": the transaction had not reached its commit."""
    try:
        with journal.open("rb") as f:
            return "hot" if f.read(len(JOURNAL_MAGIC)) == JOURNAL_MAGIC else "stale"
    except FileNotFoundError:
        return None


def wait_for(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.0001)
    return True


def add(server: Server, article: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    status, _, body = server.request("POST", "/v1/articles", article, {"X-API-Key": KEY}, timeout=60)
    return status, json.loads(body)


@dataclass
class Timing:
    add: float  # seconds from request to answer, median
    write_start: float  # seconds from request until the rollback journal appears, median
    write: float  # seconds the journal exists, median


def measure(
    server: Server, source: Iterator[dict[str, Any]], acked: dict[str, dict[str, Any]], in_write: Any = None
) -> Timing:
    """Three adds, one at a time, watching for the write transaction (the rollback journal exists, or
    `in_write()` says so): how long an add and its write transaction take."""
    in_write = in_write or journal_of(server.store_path).exists
    totals, starts, writes = [], [], []
    for _ in range(3):
        article = next(source)
        seen: list[float] = []
        done = threading.Event()

        def watch(seen: list[float] = seen, done: threading.Event = done) -> None:
            while not done.is_set():
                if in_write():
                    seen.append(time.monotonic())
                time.sleep(0.0005)

        watcher = threading.Thread(target=watch, daemon=True)
        sent = time.monotonic()
        watcher.start()
        status, answer = add(server, article)
        totals.append(time.monotonic() - sent)
        done.set()
        watcher.join()
        assert status == 200 and answer["status"] == "added", answer
        acked[article["url"]] = answer
        assert seen, "an add wrote without being seen in a write transaction: it cannot be found"
        starts.append(seen[0] - sent)
        writes.append(seen[-1] - seen[0])
    return Timing(statistics.median(totals), statistics.median(starts), statistics.median(writes))


def resend(server: Server, in_flight: dict[str, Any] | None, held: bool, acked: dict[str, dict[str, Any]]) -> None:
    """The add a kill interrupted, sent again: "unchanged" when it is there whole, else added now."""
    if in_flight is None:
        return
    status, answer = add(server, in_flight)
    assert status == 200 and answer["status"] == ("unchanged" if held else "added"), answer
    if answer["status"] == "added":
        acked[in_flight["url"]] = answer


@dataclass
class Writer:
    """Adds articles one after another until the server is gone; remembers what was sent and acknowledged."""

    server: Server
    source: Iterator[dict[str, Any]]
    sent: list[tuple[dict[str, Any], float]] = field(default_factory=list)  # article, when its request went
    acked: dict[str, dict[str, Any]] = field(default_factory=dict)  # url → the 200 answer
    refused: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self._run, name="crash-writer", daemon=True)

    def _run(self) -> None:
        for article in self.source:
            self.sent.append((article, time.monotonic()))
            try:
                status, answer = add(self.server, article)
            except (OSError, http.client.HTTPException):
                return  # killed
            if status != 200 or answer.get("status") != "added":
                self.refused.append(f"{status} {answer}")
                return
            self.acked[article["url"]] = answer

    def wait_sent(self, count: int, timeout: float = 60) -> float:
        deadline = time.monotonic() + timeout
        while len(self.sent) < count:
            assert time.monotonic() < deadline and self.thread.is_alive(), f"adds stopped: {self.refused}"
            time.sleep(0.0005)
        return self.sent[count - 1][1]


def workers_of(server: Server) -> list[int]:
    master = server.process.pid
    workers = [p.pid for p in psutil.Process(master).children()]
    assert workers and all(os.getpgid(pid) == master for pid in workers), "the workers are not in the group"
    return workers


def kill_group(server: Server, workers: list[int]) -> None:
    """SIGKILL to master and workers at once; returns once none of them runs."""
    os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait(timeout=30)
    deadline = time.monotonic() + 30
    for pid in workers:  # orphaned workers are reaped by init: gone or a zombie, never running
        while True:
            try:
                if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                    break
            except psutil.NoSuchProcess:
                break
            assert time.monotonic() < deadline, f"worker {pid} survived SIGKILL to its group"
            time.sleep(0.05)


def check_store(
    store_path: Path, reference: SqliteStore, base: dict[str, Any], acked: dict[str, dict[str, Any]]
) -> dict[str, str]:
    """Open the store as the service does, check it whole, and every acknowledged add in it.

    Returns url → article id of what the store holds."""
    journal = journal_of(store_path)
    info = SqliteStore(store_path, reference.model_name, reference.model_revision).info()
    assert journal_state(journal) != "hot", "the service opened the store but did not roll its hot journal back"
    with contextlib.closing(sqlite3.connect(store_path)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        return check_rows(conn, info, base, acked)


def check_rows(
    conn: Any, info: dict[str, Any], base: dict[str, Any], acked: dict[str, dict[str, Any]]
) -> dict[str, str]:
    """Every acknowledged add whole in the store, nothing half-written, the counts right (either
    backend's connection). Returns url → article id of what the store holds."""
    held = dict(conn.execute("SELECT url, id FROM articles").fetchall())
    variants = dict(conn.execute("SELECT article_id, COUNT(*) FROM variants GROUP BY article_id").fetchall())
    quotes = {row[0] for row in conn.execute("SELECT id FROM quotes").fetchall()}
    empty = conn.execute(
        "SELECT COUNT(*) FROM quotes q WHERE NOT EXISTS (SELECT 1 FROM variants WHERE quote_id = q.id)"
    )
    assert empty.fetchone()[0] == 0, "a quote without any variant"
    for table in ("articles", "quotes", "variants", "speakers"):
        assert conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == info[table], f"count_{table} is off"
    lost = sorted(url for url in acked if url not in held)
    assert not lost, f"acknowledged adds lost: {lost}"
    for url, answer in acked.items():
        # Every statement the answer reported is a variant row of that article, every new quote a row.
        assert variants.get(held[url], 0) == len(answer["mentions"]), f"{url} is half there"
        assert set(answer["new_quotes"]) <= quotes, f"{url}: its new quotes are missing"
    ours = [article_id for url, article_id in held.items() if url.startswith("https://crash.example.org/")]
    assert all(variants.get(article_id) for article_id in ours), "an added article without its statements"
    # Each add of a new URL bumps the version once, in the same transaction as its rows.
    assert info["store_version"] - base["store_version"] == len(held) - base["articles"]
    return held


def test_acknowledged_adds_survive_sigkill_and_the_store_stays_whole(built_store: SqliteStore, tmp_path: Path) -> None:
    store_path = tmp_path / "quotes.sqlite3"
    store_path.write_bytes(built_store.path.read_bytes())
    journal = journal_of(store_path)
    base = SqliteStore(store_path, built_store.model_name, built_store.model_revision).info()
    rng = random.Random(SEED)
    source = articles()
    acked: dict[str, dict[str, Any]] = {}
    in_flight: dict[str, Any] | None = None  # the add a kill interrupted without an answer
    in_flight_held = False
    left: str | None = None  # the journal the last kill left
    timing: Timing | None = None
    report: list[str] = []
    journals: list[str] = []
    for round_ in range(ROUNDS + 1):
        with start_server(tmp_path, store_path, **SETTINGS) as server:
            resend(server, in_flight, in_flight_held, acked)
            # Whatever journal the last kill left is gone now: a hot one since the open rolled it back, one
            # never made hot since the add sent again ran its own write transaction.
            assert journal_state(journal) is None, f"the journal the kill left ({left}) is still there"
            if round_ == ROUNDS:  # the last restart: the server serves what the checks see
                status, _, body = server.request("GET", "/v1/info")
                held = check_store(store_path, built_store, base, acked)
                assert status == 200 and json.loads(body)["store"]["articles"] == len(held)
                break
            if timing is None:
                timing = measure(server, source, acked)
                report.append(
                    f"an add takes {timing.add * 1000:.0f} ms; its write transaction leaves a journal from "
                    f"{timing.write_start * 1000:.0f} ms for {timing.write * 1000:.0f} ms (medians of 3)"
                )
            workers = workers_of(server)  # listed now: the kill must not wait for it
            writer = Writer(server, source)
            writer.thread.start()
            nth = rng.randint(1, 3)
            sent = writer.wait_sent(nth)
            kind = ("anywhere", "transaction", "commit")[round_ % 3]
            if kind == "anywhere":  # from the request to just past its answer
                delay = rng.uniform(0, 1.1) * timing.add
                time.sleep(max(0.0, sent + delay - time.monotonic()))
                aim = f"{delay * 1000:.0f} ms after add {nth} of the round was sent"
            elif kind == "transaction":  # after its first write, before its commit
                seen = wait_for(journal.exists, 10 * timing.add)
                delay = rng.uniform(0.05, 0.9) * timing.write
                time.sleep(delay)
                aim = f"{delay * 1000:.0f} ms after add {nth}'s journal appeared" + ("" if seen else " (never seen)")
            else:  # the commit: the journal has just been made hot, the database file is being written
                seen = wait_for(lambda: journal_state(journal) == "hot", 10 * timing.add)
                aim = f"as add {nth}'s journal turned hot" + ("" if seen else " (never seen)")
            killed_at = time.monotonic()
            kill_group(server, workers)
            writer.thread.join(timeout=60)
            assert not writer.thread.is_alive() and not writer.refused, writer.refused
        left = journal_state(journal)
        journal_bytes = journal.stat().st_size if left else 0
        acked.update(writer.acked)
        last, last_sent = writer.sent[-1]
        in_flight = None if last["url"] in writer.acked else last
        held = check_store(store_path, built_store, base, acked)  # opens it as the service does
        if left == "hot":
            assert journal_state(journal) is None, "the hot journal was rolled back but not deleted"
        in_flight_held = in_flight is not None and in_flight["url"] in held
        if left:
            journals.append(left)
        if in_flight is None:
            landed = "between adds (the last one sent was answered)"
        elif in_flight_held:
            landed = "after the add committed, before its answer was read"
        elif left == "hot":
            landed = f"in the commit: a hot journal of {journal_bytes} bytes, rolled back by the next open"
        elif left == "stale":
            landed = f"in the write transaction: a journal of {journal_bytes} bytes, never made hot"
        else:
            landed = "in the add, before its first write"
        report.append(
            f"round {round_ + 1} ({kind}): killed {aim}, {(killed_at - last_sent) * 1000:.0f} ms into add "
            f"{len(writer.sent)} of the round: {landed}; {len(writer.acked)} acknowledged in the round, "
            f"{len(acked)} in all"
        )
        print(report[-1] if round_ else "\n".join(report))
    assert journals, "no kill landed inside a write transaction:\n" + "\n".join(report)
    # The commit window is a few fsyncs long here; where fsync costs nothing it may be missed.
    assert "hot" in journals, "no kill landed in a commit: the rollback was not tested\n" + "\n".join(report)


# -- PostgreSQL -------------------------------------------------------------------------------------

PG_ROUNDS = 4  # two kills anywhere in an add, two inside its write transaction


class Postgres:
    """The store's database seen from outside: its rows, and whether a write transaction is open."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn = psycopg.connect(url, autocommit=True)
        # pg_locks shows a bigint advisory key as two 32-bit halves.
        self.key = (WRITE_LOCK >> 32, WRITE_LOCK & 0xFFFFFFFF)

    def writing(self) -> bool:
        """An add's write transaction holds the write lock."""
        row = self.conn.execute(
            "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = %s AND objid = %s AND granted",
            self.key,
        ).fetchone()
        return bool(row and row[0])

    def settled(self) -> bool:
        """No session of the killed server is left in a transaction (the server rolled them back)."""
        row = self.conn.execute(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND state IS NOT NULL AND state <> 'idle'"
        ).fetchone()
        return not self.writing() and row is not None and row[0] == 0

    def check(self, base: dict[str, Any], acked: dict[str, dict[str, Any]], reference: SqliteStore) -> dict[str, str]:
        """Every acknowledged add whole in the store, nothing half-written, the counts right."""
        store = open_store(self.url, reference.model_name, reference.model_revision)
        try:
            info = store.info()
        finally:
            store.close()
        return check_rows(self.conn, info, base, acked)


def test_acknowledged_adds_survive_sigkill_on_postgres(
    built_store: SqliteStore, pg_server: str, pg_corpus: str, tmp_path: Path
) -> None:
    url = pgdb.copy_database(pg_server, pg_corpus)
    db = Postgres(url)
    try:
        _kill_rounds_on_postgres(db, built_store, tmp_path)
    finally:
        db.conn.close()


def _kill_rounds_on_postgres(db: Postgres, built_store: SqliteStore, tmp_path: Path) -> None:
    url = db.url
    settings = {**SETTINGS, "QUOTES_STORE_URL": url}
    store = open_store(url, built_store.model_name, built_store.model_revision)
    base_info = store.info()
    store.close()
    rng = random.Random(SEED)
    source = articles()
    acked: dict[str, dict[str, Any]] = {}
    in_flight: dict[str, Any] | None = None
    in_flight_held = False
    timing: Timing | None = None
    report: list[str] = []
    inside = 0
    unused = tmp_path / "unused.sqlite3"  # QUOTES_STORE_URL wins over the path
    for round_ in range(PG_ROUNDS + 1):
        with start_server(tmp_path, unused, **settings) as server:
            resend(server, in_flight, in_flight_held, acked)
            if round_ == PG_ROUNDS:
                status, _, body = server.request("GET", "/v1/info")
                held = db.check(base_info, acked, built_store)
                assert status == 200 and json.loads(body)["store"]["articles"] == len(held)
                break
            if timing is None:
                timing = measure(server, source, acked, db.writing)
                report.append(
                    f"an add takes {timing.add * 1000:.0f} ms; it holds the write lock from "
                    f"{timing.write_start * 1000:.0f} ms for {timing.write * 1000:.0f} ms (medians of 3)"
                )
            workers = workers_of(server)
            writer = Writer(server, source)
            writer.thread.start()
            nth = rng.randint(1, 3)
            sent = writer.wait_sent(nth)
            if round_ % 2 == 0:  # anywhere, from the request to just past its answer
                delay = rng.uniform(0, 1.1) * timing.add
                time.sleep(max(0.0, sent + delay - time.monotonic()))
                aim = f"{delay * 1000:.0f} ms after add {nth} of the round was sent"
            else:  # inside the write transaction
                seen = wait_for(db.writing, 10 * timing.add)
                delay = rng.uniform(0.05, 0.9) * timing.write
                time.sleep(delay)
                aim = f"{delay * 1000:.0f} ms after add {nth} took the write lock" + ("" if seen else " (never seen)")
            was_writing = db.writing()
            kill_group(server, workers)
            writer.thread.join(timeout=60)
            assert not writer.thread.is_alive() and not writer.refused, writer.refused
        assert wait_for(db.settled, 30), "the killed server's transaction is still open"
        acked.update(writer.acked)
        last, _ = writer.sent[-1]
        in_flight = None if last["url"] in writer.acked else last
        held = db.check(base_info, acked, built_store)
        in_flight_held = in_flight is not None and in_flight["url"] in held
        if was_writing and in_flight is not None and not in_flight_held:
            inside += 1
            landed = "inside its write transaction: rolled back by the server"
        elif in_flight is None:
            landed = "between adds"
        elif in_flight_held:
            landed = "after the commit, before the answer was read"
        else:
            landed = "in the add, before its write transaction"
        report.append(f"round {round_ + 1}: killed {aim}: {landed}; {len(acked)} acknowledged in all")
    print("\n".join(report))
    assert inside, "no kill landed inside a write transaction:\n" + "\n".join(report)
