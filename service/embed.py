"""The embedder: the one place the model is loaded (by path, after its checks), once per process.

Store vectors and query vectors always come from the same weights. Two backends
(service/encoders.py): `torch` (fp32, the reference; the store is built with it) and `onnx-int8`,
the int8 export made offline for this CPU and checked there against torch (service/onnx_export.py),
run by onnxruntime without torch. The Embedder in front of either merges concurrent requests into
shared model calls (service/batching.py) and keeps recently encoded texts in an LRU cache.
"""

from __future__ import annotations

import logging
import threading
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .batching import Batcher
from .model_files import (
    BACKENDS,
    CHECKSUMS,
    EXPORT_FIX,
    MODEL_NAME,
    ModelError,
    OnnxExport,
    cpu_name,
    model_revision,
    onnx_export_problem,
    quantization_for_cpu,
    verify_model,
)

log = logging.getLogger(__name__)

# -- the embedder ----------------------------------------------------------------------------------


def normalise(text: str) -> str:
    """The text the model sees and the cache key: Unicode NFC, whitespace runs as one space, trimmed.

    The tokenizer splits on whitespace and lower-cases/strips accents itself, so this changes no
    token; it makes "a  b" and "a b\n" one cache entry and guarantees a hit returns what a miss
    would have computed.
    """
    return " ".join(unicodedata.normalize("NFC", text).split())


class _LRU:
    """Vectors by normalised text, least recently used evicted first; thread-safe."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> np.ndarray | None:
        if not self.size:
            return None
        with self._lock:
            row = self._data.get(key)
            if row is not None:
                self._data.move_to_end(key)
            return row

    def put(self, key: str, row: np.ndarray) -> None:
        if not self.size:
            return
        row = row.copy()
        row.flags.writeable = False  # shared by every caller that hits it
        with self._lock:
            self._data[key] = row
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


class Embedder:
    """Sentence embeddings, L2-normalised float32, so a dot product is the cosine similarity.

    `model` is either backend of service/encoders.py (or anything with their `encode` and
    `get_embedding_dimension`); int8 encodes one text per ONNX run (encoders.OnnxInt8 says why).
    """

    def __init__(
        self,
        model: Any,
        revision: str,
        *,
        backend: str = "torch",
        batch_wait_ms: float = 5.0,
        batch_max_texts: int = 64,
        cache_size: int = 4096,
        model_lock: threading.Lock | None = None,
        export: OnnxExport | None = None,
    ) -> None:
        if backend not in BACKENDS:
            raise ModelError(f"unknown embedding backend {backend!r} (one of {', '.join(BACKENDS)})")
        self._model = model
        self.name = MODEL_NAME
        self.revision = revision  # of the torch weights, whichever backend: the store stays valid
        self.backend = backend
        self.export = export  # onnx-int8: how its file was made and how well it agrees with torch
        self.dim = int(model.get_embedding_dimension() or 0)
        # SentenceTransformer.encode is not documented as thread-safe; gunicorn threads share one
        # model. The batcher already runs one call at a time; the lock also covers other embedders
        # built on the same loaded model.
        self._model_lock = model_lock or threading.Lock()
        self._listeners: list[Callable[[int, float], None]] = []
        # The window only pays where a merged batch is cheaper than its parts. int8 runs one text per
        # ONNX call, so waiting for company only adds latency (bench/bench_backends.py: p50 7.7 ->
        # 14.5 ms at 60% load); requests that queue anyway are still merged into one call.
        self._batcher = Batcher(self._run_model, batch_wait_ms if backend == "torch" else 0.0, batch_max_texts)
        self._cache = _LRU(cache_size)
        # Texts answered from the cache / sent to the model (hits + misses = texts asked for).
        self.cache_hits = 0
        self.cache_misses = 0
        self._counts_lock = threading.Lock()

    @property
    def info(self) -> dict[str, Any]:
        """The backend and, for int8, what its export chose and measured (/v1/info, the start log)."""
        return {"backend": self.backend, **(self.export.summary() if self.export else {})}

    @property
    def batcher(self) -> Batcher:
        return self._batcher

    @property
    def cache_entries(self) -> int:
        return len(self._cache)

    def add_listener(self, listener: Callable[[int, float], None]) -> None:
        """`listener(texts, seconds)` after every model call (metrics; the pipeline itself needs none)."""
        self._listeners.append(listener)

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        keys = [normalise(t) for t in texts]
        rows: dict[str, np.ndarray] = {}
        for key in dict.fromkeys(keys):
            row = self._cache.get(key)
            if row is not None:
                rows[key] = row
        missing = [k for k in dict.fromkeys(keys) if k not in rows]
        with self._counts_lock:
            self.cache_misses += len(missing)
            self.cache_hits += len(keys) - len(missing)
        if missing:
            vectors = self._batcher.encode(missing, batch_size)
            for key, row in zip(missing, vectors, strict=True):
                rows[key] = row
                self._cache.put(key, row)
        return np.stack([rows[k] for k in keys]).astype(np.float32, copy=False)

    def _run_model(self, texts: list[str], batch_size: int) -> np.ndarray:
        """One real model call (the batcher's leader calls it); listeners hear of it afterwards."""
        with self._model_lock:
            started = time.perf_counter()
            vectors = self._model.encode(
                texts,
                batch_size=1 if self.backend == "onnx-int8" else batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            seconds = time.perf_counter() - started
        for listener in self._listeners:
            try:
                listener(len(texts), seconds)
            except Exception:  # a metrics bug must not fail the callers of this batch
                log.exception("encode listener failed")
        return np.asarray(vectors, dtype=np.float32)


@dataclass(frozen=True, slots=True)
class _Loaded:
    model: Any
    lock: threading.Lock
    export: OnnxExport | None


_models: dict[tuple[Path, str], _Loaded] = {}
_embedders: dict[tuple[Path, str, float, int, int], Embedder] = {}
_cache_lock = threading.Lock()


def _load_model(model_dir: Path, backend: str, checksums: Path, threads: int | None) -> _Loaded:
    from .encoders import OnnxInt8, load_torch

    verify_model(model_dir, checksums)
    if backend == "torch":
        return _Loaded(load_torch(model_dir, threads), threading.Lock(), None)
    problem = onnx_export_problem(model_dir, checksums)
    if problem is not None:
        raise ModelError(f"QUOTES_EMBEDDING_BACKEND=onnx-int8: {problem}")
    record = OnnxExport.read(model_dir)
    assert record is not None and record.file is not None
    wanted, here = quantization_for_cpu(), cpu_name()
    if record.measured_on != here:  # e.g. an image built on another machine: its kernels may differ from ours
        log.warning(
            "the int8 ONNX model's agreement with torch was measured on %s, not on this CPU (%s): %s to check it here",
            record.measured_on,
            here,
            EXPORT_FIX,
        )
    elif record.quantization != wanted:  # forced: checked here, works, maybe slower
        log.warning("the int8 ONNX model was exported for %s, this CPU suits %s", record.quantization, wanted)
    try:
        return _Loaded(OnnxInt8(model_dir, record.file, threads), threading.Lock(), record)
    except Exception as exc:
        raise ModelError(f"int8 ONNX model {model_dir / record.file} failed to load ({exc}): {EXPORT_FIX}") from exc


def load_embedder(
    model_dir: Path,
    checksums: Path = CHECKSUMS,
    backend: str = "torch",
    *,
    batch_wait_ms: float = 5.0,
    batch_max_texts: int = 64,
    cache_size: int = 4096,
    threads: int | None = None,
) -> Embedder:
    """Load (once per process and backend) the model at `model_dir`, after checking it.

    The same arguments return the same Embedder (one cache, one batcher); other batching or cache
    arguments get their own Embedder around the same loaded model. `threads`: the model's threads
    (torch's or ONNX Runtime's), taken when the model is first loaded; default all cores.
    """
    if backend not in BACKENDS:
        raise ModelError(f"unknown embedding backend {backend!r} (one of {', '.join(BACKENDS)})")
    path = model_dir.resolve()
    key = (path, backend, float(batch_wait_ms), int(batch_max_texts), int(cache_size))
    with _cache_lock:
        if key not in _embedders:
            if (path, backend) not in _models:
                _models[(path, backend)] = _load_model(model_dir, backend, checksums, threads)
            loaded = _models[(path, backend)]
            _embedders[key] = Embedder(
                loaded.model,
                model_revision(checksums),
                backend=backend,
                batch_wait_ms=batch_wait_ms,
                batch_max_texts=batch_max_texts,
                cache_size=cache_size,
                model_lock=loaded.lock,
                export=loaded.export,
            )
        return _embedders[key]
