"""Top-k inner-product search over the store's variant vectors, exact or compact.

Two implementations of one small interface (`VectorIndex.search` → `Hits`):

- `ExactIndex`: the float32 matrix, one matrix product and a partial sort. Exact; 1,536 bytes per
  vector (384 dimensions), and a query reads all of them.
- `CompactIndex`: faiss ``IVF{nlist},SQ8`` with inner-product metric. Vectors are k-means
  partitioned into `nlist` inverted lists and stored as 8-bit scalar-quantised residuals (384 bytes
  plus an 8-byte id and an 8-byte direct-map entry each); a query scans the `nprobe` lists whose
  centroids are closest. Scores are computed on the quantised codes, so they differ from the exact
  cosine by at most `COMPACT_SCORE_ERROR` (measured, see docs/store-scale.md) and ranking is
  approximate (recall@10 against exact float32 is measured there too).

`build_index(matrix, "auto")` picks exact below `AUTO_COMPACT_MIN_ROWS` rows and compact from there.
Below 50k rows (about 31k quotes) exact search costs under 5 ms per query at one thread and under
80 MB, and it is exact; the compact index would have to scan all of those rows anyway to miss
nothing (see `CompactParams.resolve`). Above, exact grows linearly: 18 ms at 162k rows, about 200 ms
and 2.5 GB at 1.6M (1M quotes), where the compact index takes 9 ms and 0.65 GB (docs/store-scale.md).

faiss is imported only when a compact index is built, so a service on a small store never loads it.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "AUTO_COMPACT_MIN_ROWS",
    "COMPACT_SCORE_ERROR",
    "INDEX_KINDS",
    "CompactIndex",
    "CompactParams",
    "ExactIndex",
    "Hits",
    "IdIndex",
    "VectorIndex",
    "build_index",
]

INDEX_KINDS = ("auto", "exact", "compact")
# From this many rows on, "auto" builds a compact index (chosen by measurement: docs/store-scale.md).
AUTO_COMPACT_MIN_ROWS = 50_000
# Bound on |compact score - exact cosine| for unit vectors: at most 0.0026 measured from 1k to 1M
# quotes (99th percentile 0.0016), stated with headroom for rows outside the trained ranges.
COMPACT_SCORE_ERROR = 0.005


class Hits(NamedTuple):
    """Per query, the best rows first. Where an index finds fewer than k rows, the missing entries
    have row -1 and score -inf (only a compact index does that, when its probed lists hold fewer)."""

    scores: np.ndarray  # (queries, k) float32
    rows: np.ndarray  # (queries, k) int64, rows of the matrix the index was built from


class VectorIndex(ABC):
    """Search over the rows of an (n, dim) matrix of L2-normalised float32 vectors."""

    kind: str

    @property
    @abstractmethod
    def size(self) -> int:
        """Number of rows."""

    @property
    @abstractmethod
    def dim(self) -> int: ...

    @abstractmethod
    def search(self, queries: np.ndarray, k: int) -> Hits:
        """The k rows of highest inner product with each query (n, dim) float32; k is capped at `size`."""

    @abstractmethod
    def vectors(self, rows: np.ndarray) -> np.ndarray:
        """The stored vectors of `rows`, (len(rows), dim) float32: exact, or decoded from the codes."""

    @abstractmethod
    def nbytes(self) -> int:
        """Memory the search structure holds, in bytes."""


def _empty(queries: int) -> Hits:
    return Hits(np.zeros((queries, 0), dtype=np.float32), np.zeros((queries, 0), dtype=np.int64))


class ExactIndex(VectorIndex):
    """Exact float32 search: what the matcher always did (same product, so the same scores)."""

    kind = "exact"

    def __init__(self, matrix: np.ndarray) -> None:
        if matrix.ndim != 2:
            raise ValueError(f"expected an (n, dim) matrix, got shape {matrix.shape}")
        self._matrix = np.ascontiguousarray(matrix, dtype=np.float32)

    @property
    def size(self) -> int:
        return int(self._matrix.shape[0])

    @property
    def dim(self) -> int:
        return int(self._matrix.shape[1])

    def search(self, queries: np.ndarray, k: int) -> Hits:
        n = self.size
        k = min(max(k, 0), n)
        if k == 0:
            return _empty(len(queries))
        sims = queries @ self._matrix.T
        if k < n:
            part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        else:
            part = np.broadcast_to(np.arange(n, dtype=np.int64), sims.shape)
        # Candidates in row order first, then a stable sort on score: equal scores stay in row
        # order, as in the matcher's former stable sort over all rows.
        part = np.sort(part, axis=1)
        top = np.take_along_axis(sims, part, axis=1)
        order = np.argsort(-top, axis=1, kind="stable")
        rows = np.take_along_axis(part, order, axis=1).astype(np.int64, copy=False)
        return Hits(np.take_along_axis(top, order, axis=1), rows)

    def vectors(self, rows: np.ndarray) -> np.ndarray:
        return self._matrix[np.asarray(rows, dtype=np.int64)]

    def nbytes(self) -> int:
        return int(self._matrix.nbytes)


@dataclass(frozen=True, slots=True)
class CompactParams:
    """How a compact index is built. None picks the value from the store's size (see `resolve`)."""

    nlist: int | None = None  # inverted lists (k-means centroids)
    nprobe: int | None = None  # lists scanned per query
    min_scan_rows: int = 65_536  # rows a query scans at least (as nprobe / nlist x n)
    train_per_list: int = 64  # k-means sample per centroid (faiss wants 39 to 256)
    encoder_rows: int = 262_144  # rows the 8-bit value ranges are estimated on
    range_margin: float = 0.1  # each dimension's 8-bit range is widened by this share of it, per side
    seed: int = 1234

    def resolve(self, n: int) -> tuple[int, int]:
        """(nlist, nprobe) for n rows; measurements behind them in docs/store-scale.md.

        nlist: the power of two nearest sqrt(n) (1,024 at 1.6M rows), and never fewer than 39
        training rows per list. It trades build time (k-means, and assigning every row, cost
        n x nlist) against query time (a query scans about n x nprobe / nlist codes): at 1M
        quotes, 2,048 lists answered in 2.3 instead of 8.5 ms at about the same recall (0.98) but
        took twice as long to fill and five times as long to train; both are far under 20 ms.
        nprobe: 1/16 of the lists, but at least `min_scan_rows` rows' worth. Recall depends on
        how many rows a query sees more than on the fraction: 1/16 scans 100k rows at 1M quotes
        (recall@10 0.97, no query's best row missed), but only 10k rows at 100k quotes, where
        scanning 33k rows still missed one query's best row in 300 (0.86 found as 0.76) and
        66k rows missed none.
        """
        nlist = self.nlist or 2 ** round(math.log2(max(1.0, math.sqrt(n))))
        nlist = max(1, min(nlist, n // 39))
        share = max(1 / 16, self.min_scan_rows / max(n, 1))
        nprobe = self.nprobe or math.ceil(nlist * share)
        return nlist, max(1, min(nprobe, nlist))


def _faiss() -> Any:
    import faiss  # untyped; mypy runs with ignore_missing_imports

    return faiss


class CompactIndex(VectorIndex):
    """faiss IVF + 8-bit scalar quantisation (inner product). Thread-safe for concurrent searches."""

    kind = "compact"

    def __init__(self, matrix: np.ndarray, params: CompactParams | None = None) -> None:
        params = params or CompactParams()
        n, dim = matrix.shape
        if n == 0:
            raise ValueError("a compact index needs at least one vector to train on")
        faiss = _faiss()
        self.nlist, self.nprobe = params.resolve(n)
        index = faiss.index_factory(dim, f"IVF{self.nlist},SQ8", faiss.METRIC_INNER_PRODUCT)
        # Deterministic training: a seeded sample of rows, seeded k-means (faiss draws its own
        # k-means subsample of train_per_list x nlist from what it is given, with cp.seed).
        index.cp.seed = params.seed
        index.cp.max_points_per_centroid = params.train_per_list
        index.cp.min_points_per_centroid = min(39, max(1, n // self.nlist))  # no stderr warning on tiny stores
        # The quantiser's per-dimension ranges come from the training rows; a row outside them is
        # clipped, and its score is off by as much as it sticks out. Estimating the ranges on more
        # rows than k-means needs (262k) and widening them by 10% per side keeps the largest score
        # error at 1M quotes at 0.0022 instead of 0.0091 (0.0046 with 5%; docs/store-scale.md).
        # Ranges from all rows would clip nothing (0.0019), but faiss then holds every row's
        # float32 residual at once: 2.5 GB more at 1M quotes, on top of the matrix.
        index.sq.rangestat_arg = params.range_margin
        sample_size = min(n, max(params.encoder_rows, params.train_per_list * self.nlist))
        data = np.ascontiguousarray(matrix, dtype=np.float32)
        if sample_size < n:
            rng = np.random.default_rng(params.seed)
            sample = data[np.sort(rng.choice(n, size=sample_size, replace=False))]
        else:
            sample = data
        started = time.perf_counter()
        index.train(sample)
        del sample
        trained = time.perf_counter()
        index.add(data)
        # reconstruct() for `vectors`: one int64 per row, rows being 0..n-1 in add order.
        index.make_direct_map()
        # Build time, for logs and the benchmark: 35 to 45 s at 1M quotes on two cores (see docs).
        self.train_seconds = trained - started
        self.add_seconds = time.perf_counter() - trained
        index.nprobe = self.nprobe
        self._index = index
        self._n = int(n)
        self._dim = int(dim)

    @property
    def size(self) -> int:
        return self._n

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def faiss_index(self) -> Any:
        return self._index

    def search(self, queries: np.ndarray, k: int) -> Hits:
        k = min(max(k, 0), self._n)
        if k == 0:
            return _empty(len(queries))
        scores, rows = self._index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        scores[rows < 0] = -np.inf  # faiss fills missing results with -FLT_MAX
        return Hits(scores, rows)

    def vectors(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        if not len(rows):
            return np.zeros((0, self._dim), dtype=np.float32)
        return np.asarray(self._index.reconstruct_batch(rows), dtype=np.float32)

    def nbytes(self) -> int:
        """Codes, ids and direct map of every row, plus centroids and quantiser ranges (what
        faiss.serialize_index writes, give or take a few header bytes)."""
        per_row = self._index.code_size + 8 + 8
        return self._n * per_row + self.nlist * self._dim * 4 + 2 * self._dim * 4


def build_index(matrix: np.ndarray, kind: str = "auto", params: CompactParams | None = None) -> VectorIndex:
    """The index for `matrix` (n, dim) float32, rows L2-normalised.

    "auto" is exact below AUTO_COMPACT_MIN_ROWS rows, compact from there. An empty matrix is always
    exact (there is nothing to train a compact index on).
    """
    if kind not in INDEX_KINDS:
        raise ValueError(f"unknown vector index kind {kind!r}: expected one of {', '.join(INDEX_KINDS)}")
    n = int(matrix.shape[0])
    if kind == "auto":
        kind = "compact" if n >= AUTO_COMPACT_MIN_ROWS else "exact"
    if kind == "compact" and n > 0:
        return CompactIndex(matrix, params)
    return ExactIndex(matrix)


class IdIndex:
    """Vectors identified by ids (variant ids), searchable, and changed without a rebuild.

    An immutable base index (exact or compact, over the rows it was built from) plus an exact
    delta of the rows added since, minus the ids removed since. `with_changes` returns a new
    IdIndex that shares the base: a search running on the old one is not disturbed, and applying
    an add's few rows costs the size of the delta, not of the store. When the delta has grown
    (`merge_due`), the owner builds a new base from all rows, away from the requests.
    """

    MERGE_MIN_ROWS = 4096  # the delta is merged into a new base once it holds this many rows ...
    MERGE_SHARE = 8  # ... and at least 1/8 of the base (searching the delta costs its size)

    def __init__(
        self,
        base: VectorIndex,
        base_ids: np.ndarray,
        *,
        delta_ids: np.ndarray | None = None,
        delta: np.ndarray | None = None,
        removed: np.ndarray | None = None,
        seq: int = 0,
    ) -> None:
        self.base = base
        self.base_ids = np.asarray(base_ids, dtype=np.int64)  # ascending: row r of the base is base_ids[r]
        dim = base.dim
        self.delta_ids = np.zeros(0, dtype=np.int64) if delta_ids is None else delta_ids
        self.delta = np.zeros((0, dim), dtype=np.float32) if delta is None else delta
        self.removed = np.zeros(0, dtype=np.int64) if removed is None else removed  # base ids gone, sorted
        self.seq = seq  # the change-log position this index reflects (owner's bookkeeping)

    @classmethod
    def build(cls, ids: np.ndarray, matrix: np.ndarray, kind: str = "auto", seq: int = 0) -> IdIndex:
        order = np.argsort(ids, kind="stable")
        return cls(build_index(np.ascontiguousarray(matrix[order]), kind), np.asarray(ids)[order], seq=seq)

    @property
    def size(self) -> int:
        return self.base.size - len(self.removed) + len(self.delta_ids)

    @property
    def kind(self) -> str:
        return self.base.kind

    def merge_due(self) -> bool:
        changed = len(self.delta_ids) + len(self.removed)
        return changed >= max(self.MERGE_MIN_ROWS, self.base.size // self.MERGE_SHARE)

    def nbytes(self) -> int:
        return self.base.nbytes() + self.base_ids.nbytes + self.delta.nbytes + self.delta_ids.nbytes

    def search(self, queries: np.ndarray, k: int) -> list[np.ndarray]:
        """Per query, the ids of the k nearest live rows by this index's scores, best first
        (equal scores: smaller id first)."""
        k = min(max(k, 0), self.size)
        out = []
        base_hits: Hits | None = None
        if self.base.size and k:
            # Removed rows may be among the base's best: ask for as many more.
            base_hits = self.base.search(queries, min(self.base.size, k + len(self.removed)))
        delta_scores = queries @ self.delta.T if len(self.delta_ids) and k else None
        for i in range(len(queries)):
            ids_parts, score_parts = [], []
            if base_hits is not None:
                rows = base_hits.rows[i]
                valid = rows >= 0
                ids = self.base_ids[rows[valid]]
                scores = base_hits.scores[i][valid]
                if len(self.removed):
                    live = ~np.isin(ids, self.removed)
                    ids, scores = ids[live], scores[live]
                ids_parts.append(ids)
                score_parts.append(scores)
            if delta_scores is not None:
                ids_parts.append(self.delta_ids)
                score_parts.append(delta_scores[i])
            if not ids_parts:
                out.append(np.zeros(0, dtype=np.int64))
                continue
            ids = np.concatenate(ids_parts)
            scores = np.concatenate(score_parts)
            order = np.lexsort((ids, -scores))[:k]
            out.append(ids[order])
        return out

    def vectors(self, ids: np.ndarray) -> np.ndarray | None:
        """The exact stored vectors of live `ids`, or None when some are only held as codes (a
        compact base) or unknown: the caller reads them from the store then."""
        ids = np.asarray(ids, dtype=np.int64)
        out = np.zeros((len(ids), self.base.dim), dtype=np.float32)
        in_delta = np.isin(ids, self.delta_ids)
        if in_delta.any():
            pos = {int(x): i for i, x in enumerate(self.delta_ids.tolist())}
            out[in_delta] = self.delta[[pos[int(x)] for x in ids[in_delta]]]
        rest = ids[~in_delta]
        if len(rest):
            if self.base.kind != "exact":
                return None
            rows = np.searchsorted(self.base_ids, rest)
            rows = np.minimum(rows, len(self.base_ids) - 1) if len(self.base_ids) else rows
            if not len(self.base_ids) or (self.base_ids[rows] != rest).any() or np.isin(rest, self.removed).any():
                return None
            out[~in_delta] = self.base.vectors(rows)
        return out

    def with_changes(self, added_ids: np.ndarray, added: np.ndarray, removed_ids: np.ndarray, seq: int) -> IdIndex:
        """A new index: `removed_ids` gone, then `added_ids` (with vectors `added`) present. An id
        both removed and added (a reused id) ends up with the added vector."""
        removed_ids = np.asarray(removed_ids, dtype=np.int64)
        added_ids = np.asarray(added_ids, dtype=np.int64)
        gone = np.union1d(removed_ids, added_ids)  # a re-added id replaces whatever it was
        keep = ~np.isin(self.delta_ids, gone)
        in_base = gone[np.isin(gone, self.base_ids)]
        removed = np.union1d(self.removed, in_base).astype(np.int64)
        delta_ids = np.concatenate([self.delta_ids[keep], added_ids]).astype(np.int64)
        delta = np.vstack([self.delta[keep], np.asarray(added, dtype=np.float32).reshape(-1, self.base.dim)])
        return IdIndex(self.base, self.base_ids, delta_ids=delta_ids, delta=delta, removed=removed, seq=seq)
