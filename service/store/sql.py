"""The SQL both backends share: one `Reader`/`Writer` over a DB-API connection, with the few
differences of dialect left to `SqliteWriter` and `PgWriter` (placeholders, lists of values,
vectors, search and full-text queries).

Statements are written with `?` placeholders; PostgreSQL's subclass turns them into `%s`. A list
of values is one parameter in both (`_in`): SQLite reads it as a JSON array (`json_each`, so that
no statement outgrows SQLite's limit on parameters), PostgreSQL as an array (`= ANY`).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..records import Article, QuoteMention, SpeakerKind
from ..speakers import SpeakerRegistry
from .base import (
    ORDER_SQL,
    VARIANT_COLUMNS,
    ArticleState,
    RegistryDelta,
    Row,
    StoreState,
    WordingRow,
    Writer,
    article_values,
    contains_words,
    like_pattern,
    norm_key,
    now,
    registry_from_rows,
    variant_values,
)

_UPSERT_META = "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
_ADD_TO_META = "UPDATE meta SET value = CAST(CAST(value AS BIGINT) + ? AS TEXT) WHERE key = ?"
_ASKED_WORDS = 3  # of a segment, for the full-text condition of `containing`
_WORDING = "SELECT id, quote_id, norm, speaker_id, embedding FROM variants"


class SqlWriter(Writer):
    """Reader and writer on one connection inside one transaction (a read block only reads)."""

    # How speakers are listed in the order they were stored, and how text compares bytewise.
    SPEAKER_ORDER: str
    BYTEWISE: str

    def __init__(self, conn: Any) -> None:
        super().__init__()
        self.conn = conn

    # -- the dialect -----------------------------------------------------------------------------

    @abstractmethod
    def _all(self, sql: str, params: Sequence[Any] = (), binary: bool = False) -> list[tuple[Any, ...]]:
        """Rows as tuples (`binary`: vectors come as the driver's binary form)."""

    @abstractmethod
    def _dicts(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    @abstractmethod
    def _run(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Executes a statement; returns the rows it changed."""

    @abstractmethod
    def _run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """One statement for many rows (in one round trip where the driver can)."""

    @abstractmethod
    def _in(self, column: str, values: Sequence[Any]) -> tuple[str, Any]:
        """`column` is one of `values`: the SQL and its one parameter."""

    @abstractmethod
    def _vector(self, value: Any) -> np.ndarray:
        """A stored embedding as float32."""

    @abstractmethod
    def _embedding(self, vector: np.ndarray) -> Any:
        """A float32 vector as the embedding column takes it."""

    # -- reading ---------------------------------------------------------------------------------

    def meta(self) -> dict[str, str]:
        return {r[0]: r[1] for r in self._all("SELECT key, value FROM meta")}

    def state(self) -> StoreState:
        where, param = self._in("key", ["store_version", "registry_version", "count_quotes", "count_variants"])
        values = dict(self._all(f"SELECT key, value FROM meta WHERE {where}", (param,)))
        return StoreState(
            int(values["store_version"]),
            int(values["registry_version"]),
            int(values["count_quotes"]),
            int(values["count_variants"]),
        )

    def registry(self) -> SpeakerRegistry:
        return registry_from_rows(
            self._dicts(f"SELECT id, name, kind, role FROM speakers ORDER BY {self.SPEAKER_ORDER}"),
            self._dicts("SELECT speaker_id, alias, origin FROM aliases"),
        )

    def article_state(self, url: str) -> ArticleState | None:
        rows = self._all("SELECT id, content_hash FROM articles WHERE url = ?", (url,))
        return ArticleState(rows[0][0], rows[0][1]) if rows else None

    def variant_rows(self, quote_ids: Sequence[str]) -> list[Row]:
        if not quote_ids:
            return []
        where, param = self._in("v.quote_id", list(quote_ids))
        return self._dicts(
            f"SELECT {VARIANT_COLUMNS} FROM variants v JOIN articles a ON a.id = v.article_id "
            f"LEFT JOIN speakers s ON s.id = v.speaker_id WHERE {where} ORDER BY v.id",
            (param,),
        )

    def quote_page(
        self, speaker_id: str | None, words: Sequence[str], disputed: bool | None, limit: int, offset: int
    ) -> tuple[int, list[str]]:
        where, params = ["1 = 1"], []
        if speaker_id:
            where.append("v.quote_id IN (SELECT quote_id FROM variants WHERE speaker_id = ?)")
            params.append(speaker_id)
        for w in words:
            where.append("v.quote_id IN (SELECT quote_id FROM variants WHERE norm LIKE ? ESCAPE '\\')")
            params.append(like_pattern(w))
        having = ""
        if disputed is not None:
            having = "HAVING COUNT(DISTINCT v.speaker_id) " + ("> 1" if disputed else "<= 1")
        grouped = (
            f"SELECT v.quote_id AS id, {ORDER_SQL} AS first FROM variants v JOIN articles a ON a.id = v.article_id "
            f"WHERE {' AND '.join(where)} GROUP BY v.quote_id {having}"
        )
        total = int(self._all(f"SELECT COUNT(*) FROM ({grouped}) g", params)[0][0])
        page = self._all(
            f"SELECT id FROM ({grouped}) g ORDER BY first{self.BYTEWISE}, id{self.BYTEWISE} LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        return total, [r[0] for r in page]

    def speaker_quote_counts(self) -> dict[str, int]:
        rows = self._all(
            "SELECT speaker_id, COUNT(DISTINCT quote_id) FROM variants WHERE speaker_id IS NOT NULL GROUP BY speaker_id"
        )
        return {r[0]: int(r[1]) for r in rows}

    def _wordings(self, where: str, params: Sequence[Any]) -> list[WordingRow]:
        rows = self._all(f"{_WORDING} WHERE {where}", params, binary=True)
        return [WordingRow(int(r[0]), r[1], r[2], r[3], self._vector(r[4])) for r in rows]

    def same_wording(self, norms: Sequence[str]) -> list[list[WordingRow]]:
        by_norm: dict[str, list[WordingRow]] = {}
        if norms:
            where, param = self._in("norm_key", sorted({norm_key(n) for n in norms}))
            for row in self._wordings(where, (param,)):
                by_norm.setdefault(row.norm, []).append(row)  # a wording sharing the key (a collision) is not asked for
        return [sorted(by_norm.get(n, []), key=lambda r: r.id) for n in norms]

    @abstractmethod
    def _has_words(self, words: list[str]) -> tuple[str, Any]:
        """A full-text condition for the wordings that hold every one of these words."""

    def containing(self, norm: str) -> list[WordingRow]:
        # Only the segment's longest words are asked of the full-text index: a phrase query reads the
        # posting list of every word, and the lists of common words grow with the store (a 7-word run
        # took 12-18 ms at 1M quotes that way); long words are rare ones, with short lists. The whole
        # run is then checked on the few wordings found, before their vectors are read.
        where, param = self._has_words(sorted(set(norm.split()), key=lambda w: (-len(w), w))[:_ASKED_WORDS])
        rows = self._all(f"SELECT id, norm FROM variants WHERE {where}", (param,))
        return sorted(self.wordings([int(r[0]) for r in rows if contains_words(r[1], norm)]), key=lambda r: r.id)

    def wordings(self, ids: Sequence[int]) -> list[WordingRow]:
        if not ids:
            return []
        where, param = self._in("id", list(ids))
        return self._wordings(where, (param,))

    def vectors(self, ids: Sequence[int]) -> dict[int, np.ndarray]:
        if not ids:
            return {}
        where, param = self._in("id", list(ids))
        rows = self._all(f"SELECT id, embedding FROM variants WHERE {where}", (param,), binary=True)
        return {int(r[0]): self._vector(r[1]) for r in rows}

    def first_variants(self, quote_ids: Sequence[str]) -> dict[str, int]:
        if not quote_ids:
            return {}
        where, param = self._in("quote_id", list(quote_ids))
        rows = self._all(f"SELECT quote_id, MIN(id) FROM variants WHERE {where} GROUP BY quote_id", (param,))
        return {r[0]: int(r[1]) for r in rows}

    # -- writing ---------------------------------------------------------------------------------

    def delete_article(self, article_id: str) -> None:
        quote_ids = [
            r[0] for r in self._all("SELECT DISTINCT quote_id FROM variants WHERE article_id = ?", (article_id,))
        ]
        self.counts["variants"] -= self._run("DELETE FROM variants WHERE article_id = ?", (article_id,))
        if quote_ids:
            where, param = self._in("id", quote_ids)
            self.counts["quotes"] -= self._run(
                f"DELETE FROM quotes WHERE {where} "
                "AND NOT EXISTS (SELECT 1 FROM variants v WHERE v.quote_id = quotes.id)",
                (param,),
            )
        self.counts["articles"] -= self._run("DELETE FROM articles WHERE id = ?", (article_id,))

    def registry_changes(self, since: int) -> list[tuple[SpeakerKind, str]]:
        rows = self._all(
            "SELECT kind, name FROM speakers WHERE registry_version > ? "
            "UNION ALL SELECT s.kind, a.alias FROM aliases a JOIN speakers s ON s.id = a.speaker_id "
            "WHERE a.registry_version > ?",
            (since, since),
        )
        return [(SpeakerKind(r[0]), r[1]) for r in rows]

    def save_registry(self, delta: RegistryDelta) -> tuple[list[str], list[tuple[str, str]]]:
        if not delta:
            return [], []
        version = int(self._all("SELECT value FROM meta WHERE key = 'registry_version'")[0][0]) + 1
        new_speakers = []
        changed = False
        for sp in delta.speakers:
            rows = self._all("SELECT role FROM speakers WHERE id = ?", (sp.id,))
            if not rows:
                self._run(
                    "INSERT INTO speakers (id, name, kind, role, registry_version) VALUES (?, ?, ?, ?, ?)",
                    (sp.id, sp.name, sp.kind.value, sp.role, version),
                )
                new_speakers.append(sp.id)
                self.counts["speakers"] += 1
                changed = True
            elif rows[0][0] is None and sp.role is not None:
                self._run("UPDATE speakers SET role = ?, registry_version = ? WHERE id = ?", (sp.role, version, sp.id))
                changed = True
        new_aliases = []
        for rec in delta.aliases:
            if self._run(
                "INSERT INTO aliases (speaker_id, alias, origin, registry_version) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (speaker_id, alias) DO NOTHING",
                (rec.speaker_id, rec.alias, rec.origin, version),
            ):
                new_aliases.append((rec.speaker_id, rec.alias))
                changed = True
        if changed:
            self._run("UPDATE meta SET value = ? WHERE key = 'registry_version'", (str(version),))
        return new_speakers, new_aliases

    def _insert(self, table: str, values: dict[str, Any]) -> None:
        marks = ", ".join("?" * len(values))
        self._run(f"INSERT INTO {table} ({', '.join(values)}) VALUES ({marks})", tuple(values.values()))

    def insert_article(self, article: Article) -> None:
        self._insert("articles", article_values(article))
        self.counts["articles"] += 1

    def insert_quote(self, quote_id: str) -> None:
        self._insert("quotes", {"id": quote_id, "created_at": now()})
        self.counts["quotes"] += 1

    def insert_variants(self, rows: Sequence[tuple[str, QuoteMention, np.ndarray]]) -> None:
        values = [variant_values(quote_id, mention, vector) for quote_id, mention, vector in rows]
        if not values:
            return
        for v in values:
            v["embedding"] = self._embedding(v["embedding"])
        columns = list(values[0])
        marks = ", ".join("?" * len(columns))
        self._run_many(
            f"INSERT INTO variants ({', '.join(columns)}) VALUES ({marks})",
            [tuple(v[c] for c in columns) for v in values],
        )
        self.counts["variants"] += len(values)

    def flush(self) -> None:
        for table, change in self.counts.items():
            if change:
                self._run(_ADD_TO_META, (change, f"count_{table}"))
        self.counts.clear()

    def bump(self) -> int:
        self._run(_UPSERT_META, ("updated_at", now()))
        self._run(_ADD_TO_META, (1, "store_version"))
        return int(self._all("SELECT value FROM meta WHERE key = 'store_version'")[0][0])
