"""The model behind the Embedder, one loader per backend. Both give the same thing: an object with
sentence-transformers' `encode(texts, batch_size=…, normalize_embeddings=True, …)` that returns one
L2-normalised float32 row per text, and `get_embedding_dimension()`.

- `torch`: sentence-transformers on the fp32 weights, the reference (it builds the store).
- `onnx-int8`: onnxruntime and `tokenizers` directly on the exported int8 file, as fastembed does:
  tokenise as the model's tokenizer does (no padding, truncated at the model's max_seq_length), run,
  mean-pool the last hidden state over the attention mask, L2-normalise. That is exactly what
  sentence-transformers' ONNX backend computes (its Transformer → Pooling(mean) → Normalize), without
  importing torch, transformers or sentence-transformers: an int8 worker starts in about a second
  and is a few hundred MiB lighter. tests/test_embed_backends.py checks the vectors against
  sentence-transformers' ONNX path (cosine >= 0.9999 on the corpus sentences).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .model_files import FIX, ModelError

# Never reach for a hub: the weights are on disk or the service does not start.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# What a worker serving with onnx-int8 never imports.
TORCH_MODULES = ("torch", "transformers", "sentence_transformers", "sklearn")


def keep_torch_out() -> None:
    """Make `import torch` fail in this process, before anything imports it.

    thinc (spaCy's machine-learning library) imports torch whenever it is installed, for GPU
    support the service never uses: 2 to 3 s and about 300 MiB per worker. A None entry in
    sys.modules makes that import raise ModuleNotFoundError (Python's documented way to block one),
    and thinc takes its path without torch. For processes that serve with onnx-int8 only: the
    export, the torch backend and the store build need torch.
    """
    if "torch" not in sys.modules:
        sys.modules["torch"] = None  # type: ignore[assignment]


def _max_seq_length(model_dir: Path) -> int:
    try:
        return int(json.loads((model_dir / "sentence_bert_config.json").read_text(encoding="utf-8"))["max_seq_length"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(
            f"embedding model at {model_dir}: no max_seq_length in sentence_bert_config.json ({exc})"
        ) from None


def session_options(threads: int | None) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    # Workers x threads stays within the cores (gunicorn.conf.py sizes it per worker).
    options.intra_op_num_threads = max(1, threads or os.cpu_count() or 1)
    options.inter_op_num_threads = 1
    # Idle ONNX Runtime threads spin for a while by default: in a worker that also runs spaCy and
    # shares the cores with other workers, that is CPU taken from real work.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


class OnnxInt8:
    """The int8 export run by onnxruntime, one text per run.

    Dynamic quantisation scales a whole input tensor at once, so in a padded batch a text's vector
    would depend on its neighbours (cosine down to 0.96 against the same text alone); one text per
    run keeps each vector a function of its text only, and with no padding to compute it is also
    faster than padded batches (bench/bench_backends.py, models/README.md).
    """

    def __init__(self, model_dir: Path, file: str, threads: int | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        # tokenizer.json pads every text to 128 tokens and truncates there; sentence-transformers
        # overrides both on each call (no padding for one text, truncation at max_seq_length).
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=_max_seq_length(model_dir))
        self._session = ort.InferenceSession(
            str(model_dir / file), sess_options=session_options(threads), providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._dim = int(self._session.get_outputs()[0].shape[-1])

    def get_embedding_dimension(self) -> int:
        return self._dim

    def encode(self, texts: list[str], batch_size: int = 1, **_: Any) -> np.ndarray:
        """L2-normalised rows, whatever `batch_size` says (one text per run, see the class)."""
        out = np.empty((len(texts), self._dim), dtype=np.float32)
        for i, text in enumerate(texts):
            # sentence-transformers strips each text before tokenising it.
            enc = self._tokenizer.encode(text.strip())
            mask = np.asarray([enc.attention_mask], dtype=np.int64)
            feed = {
                "input_ids": np.asarray([enc.ids], dtype=np.int64),
                "attention_mask": mask,
                "token_type_ids": np.asarray([enc.type_ids], dtype=np.int64),
            }
            (hidden,) = self._session.run(None, {k: v for k, v in feed.items() if k in self._inputs})
            weights = mask[0, :, None].astype(np.float32)
            pooled = (hidden[0] * weights).sum(axis=0) / max(float(weights.sum()), 1e-9)
            out[i] = pooled / max(float(np.linalg.norm(pooled)), 1e-12)
        return out


def load_torch(model_dir: Path, threads: int | None = None) -> Any:
    """sentence-transformers on the fp32 weights (imports torch: seconds)."""
    from sentence_transformers import SentenceTransformer

    if threads:
        import torch

        torch.set_num_threads(threads)
    try:
        return SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
    except Exception as exc:  # a model that passed its checksum but still fails is a setup bug
        raise ModelError(f"embedding model at {model_dir} failed to load ({exc}): {FIX}") from exc
