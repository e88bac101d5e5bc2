"""Embedding backends (torch fp32, int8 ONNX), cross-request batching and the encode cache.

The real model throughout, except where a test needs a model that blocks or fails on demand.
Concurrency is made deterministic with gates (a model call that waits for an event) and by waiting
until the batcher reports the expected number of queued requests; nothing asserts a duration.
"""

from __future__ import annotations

import hashlib
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.batching import Batcher
from service.config import Settings
from service.embed import Embedder, load_embedder, normalise
from service.encoders import OnnxInt8
from service.match import Matcher
from service.model_files import ModelError, OnnxExport, linked_model_copy
from service.store import SqliteStore

TIMEOUT = 120.0  # only ever reached when something is broken (a hang), never part of a pass


def _wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, "gave up waiting (a hang, not a slow machine)"
        time.sleep(0.001)


def _run_threads(targets: list[Callable[[], None]]) -> list[threading.Thread]:
    threads = [threading.Thread(target=t, daemon=True) for t in targets]
    for t in threads:
        t.start()
    return threads


def _join(threads: list[threading.Thread]) -> None:
    for t in threads:
        t.join(TIMEOUT)
        assert not t.is_alive(), "a caller never returned"


class _Gated:
    """A model whose calls wait for `gate` (and report that they started), then run `inner`."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.calls: list[list[str]] = []

    def get_embedding_dimension(self) -> int:
        return int(self.inner.get_embedding_dimension())

    def encode(self, texts: list[str], **kwargs: Any) -> np.ndarray:
        self.calls.append(list(texts))
        self.entered.set()
        assert self.gate.wait(TIMEOUT)
        return np.asarray(self.inner.encode(texts, **kwargs))


class _Fake:
    """A tiny deterministic model: a unit vector per text from its hash; `fail` makes calls raise."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail

    def get_embedding_dimension(self) -> int:
        return 8

    def encode(self, texts: list[str], **kwargs: Any) -> np.ndarray:
        if self.fail:
            raise RuntimeError("the model fell over")
        rows = [np.frombuffer(hashlib.sha256(t.encode()).digest()[:32], dtype=np.uint8)[:8] + 1.0 for t in texts]
        out = np.asarray(rows, dtype=np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def _counting(embedder: Embedder) -> list[int]:
    calls: list[int] = []
    embedder.add_listener(lambda texts, seconds: calls.append(texts))
    return calls


# -- int8 ONNX against torch fp32 ------------------------------------------------------------------


def test_int8_agrees_with_torch_on_every_corpus_statement(
    settings: Settings, embedder: Embedder, onnx_embedder: Embedder, statements: list[str]
) -> None:
    reference = embedder.encode(statements, batch_size=64)
    int8 = onnx_embedder.encode(statements, batch_size=64)
    assert int8.dtype == np.float32 and int8.shape == reference.shape == (len(statements), 384)
    np.testing.assert_allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-4)
    cosines = np.einsum("ij,ij->i", reference, int8)
    worst = int(np.argmin(cosines))
    assert cosines.min() >= 0.98, (float(cosines.min()), statements[worst])
    # The export measured the same agreement on these statements and more (every mention, kept or not).
    record = OnnxExport.read(settings.model_dir)
    assert record is not None and onnx_embedder.export == record
    assert cosines.min() >= record.min_cosine - 1e-6
    # Same identity as the torch weights: a torch-built store serves int8 queries.
    assert (onnx_embedder.name, onnx_embedder.revision) == (embedder.name, embedder.revision)


def test_int8_runtime_equals_sentence_transformers_onnx_path(
    settings: Settings, onnx_embedder: Embedder, statements: list[str]
) -> None:
    """The service's int8 runtime (onnxruntime + tokenizers, no torch) computes what
    sentence-transformers' ONNX backend computes on the same file: tokens, mean pooling, norm."""
    from sentence_transformers import SentenceTransformer

    record = onnx_embedder.export
    assert record is not None and record.file is not None and isinstance(onnx_embedder._model, OnnxInt8)
    reference = SentenceTransformer(
        str(settings.model_dir),
        backend="onnx",
        device="cpu",
        local_files_only=True,
        model_kwargs={"file_name": record.file, "provider": "CPUExecutionProvider", "export": False},
    )
    # Besides the statements: a text past max_seq_length (cut at 256 tokens, where tokenizer.json alone
    # would pad and cut at 128), spaces around, accents and marks, one letter.
    long = " ".join(statements)
    assert len(onnx_embedder._model._tokenizer.encode(long).ids) == 256
    texts = [*statements, long, "  Peskov said so.  ", "Ünïcödé café — «quotes»", "a"]
    st = np.stack([reference.encode([t], normalize_embeddings=True, show_progress_bar=False)[0] for t in texts])
    ours = onnx_embedder._model.encode(texts)
    cosines = np.einsum("ij,ij->i", st, ours)
    worst = int(np.argmin(cosines))
    assert cosines.min() >= 0.9999, (float(cosines.min()), texts[worst])


def test_int8_vector_of_a_text_does_not_depend_on_its_batch(onnx_embedder: Embedder, statements: list[str]) -> None:
    fresh = Embedder(onnx_embedder._model, onnx_embedder.revision, backend="onnx-int8", cache_size=0)
    together = fresh.encode(statements[:40], batch_size=64)
    alone = np.stack([fresh.encode([s])[0] for s in statements[:40]])
    np.testing.assert_allclose(together, alone, atol=1e-6)


def test_int8_queries_against_the_torch_store_find_the_same_quotes(
    built_store: SqliteStore, embedder: Embedder, onnx_embedder: Embedder, nlp: Any, statements: list[str]
) -> None:
    """The store stays built with torch fp32; only queries switch backend."""
    by_torch = Matcher(built_store, embedder, nlp)
    by_int8 = Matcher(built_store, onnx_embedder, nlp)
    text = "\n\n".join(statements)
    a = [(m.quote.id if m.quote else None, m.label) for m in by_torch.match_text(text)]
    b = [(m.quote.id if m.quote else None, m.label) for m in by_int8.match_text(text)]
    assert a == b


def test_missing_export_names_the_fix(tmp_path: Path, settings: Settings) -> None:
    model = linked_model_copy(settings.model_dir, tmp_path / "m")
    with pytest.raises(ModelError, match=r"no int8 ONNX export.*python -m service model export-onnx"):
        load_embedder(model, backend="onnx-int8")


def test_the_embedder_cache_is_per_backend(settings: Settings, embedder: Embedder, onnx_embedder: Embedder) -> None:
    assert load_embedder(settings.model_dir) is embedder
    assert load_embedder(settings.model_dir, backend="onnx-int8") is onnx_embedder
    assert embedder.backend == "torch" and onnx_embedder.backend == "onnx-int8"
    with pytest.raises(ModelError, match="unknown embedding backend"):
        load_embedder(settings.model_dir, backend="tensorflow")


# -- batching across requests ----------------------------------------------------------------------


def test_concurrent_callers_share_a_model_call_and_get_their_own_rows(embedder: Embedder) -> None:
    texts = [
        "Peskov said the talks were useful.",
        "The weather is mild in Damascus.",
        "Moscow will keep up a constant dialogue with the new Syrian authorities.",
        "We do not want Russia to leave.",
        "The delegation discussed compensation and reconstruction.",
    ]
    solo = [embedder.encode([t]) for t in texts]
    gated = _Gated(embedder._model)
    batched = Embedder(gated, embedder.revision, cache_size=0)  # default 5 ms window, 64 texts
    calls = _counting(batched)
    results: dict[int, np.ndarray] = {}

    def caller(i: int) -> Callable[[], None]:
        return lambda: results.__setitem__(i, batched.encode([texts[i]]))

    # The first caller finds the model idle and runs alone; it holds the model until the gate opens.
    first = _run_threads([caller(0)])
    assert gated.entered.wait(TIMEOUT)
    rest = _run_threads([caller(i) for i in range(1, len(texts))])
    _wait_until(lambda: batched.batcher.queued() == len(texts) - 1)
    gated.gate.set()
    _join(first + rest)

    assert calls == [1, len(texts) - 1]  # five callers, two model calls
    assert [sorted(c) for c in gated.calls] == [[texts[0]], sorted(texts[1:])]
    for i, row in enumerate(solo):
        np.testing.assert_allclose(results[i], row, atol=1e-6)


def test_a_model_error_reaches_every_caller_of_the_batch() -> None:
    gated = _Gated(_Fake(fail=True))
    batched = Embedder(gated, "rev", cache_size=0)
    errors: dict[int, BaseException] = {}

    def caller(i: int) -> Callable[[], None]:
        def run() -> None:
            try:
                batched.encode([f"text {i}"])
            except RuntimeError as exc:
                errors[i] = exc

        return run

    first = _run_threads([caller(0)])
    assert gated.entered.wait(TIMEOUT)
    rest = _run_threads([caller(i) for i in range(1, 4)])
    _wait_until(lambda: batched.batcher.queued() == 3)
    gated.gate.set()
    _join(first + rest)
    assert sorted(errors) == [0, 1, 2, 3]
    assert all("fell over" in str(e) for e in errors.values())
    assert len(gated.calls) == 2  # one failing call for the first caller, one for the other three
    # The batcher is not left busy: the next call runs.
    gated.inner.fail = False
    assert batched.encode(["after"]).shape == (1, 8)


def test_a_lone_caller_never_waits_for_company() -> None:
    """With a ten-minute window, a caller that found the model idle would hang if it waited."""
    batcher = Batcher(lambda texts, bs: _Fake().encode(texts), wait_ms=600_000, max_texts=64)
    done: list[np.ndarray] = []
    _join(_run_threads([lambda: done.append(batcher.encode(["alone"]))]))
    assert len(done) == 1 and batcher.model_calls == 1


def test_a_full_batch_does_not_wait_for_its_window() -> None:
    gated = _Gated(_Fake())
    batcher = Batcher(lambda texts, bs: gated.encode(texts), wait_ms=600_000, max_texts=2)
    first = _run_threads([lambda: batcher.encode(["one"])])
    assert gated.entered.wait(TIMEOUT)
    rest = _run_threads([lambda: batcher.encode(["two"]), lambda: batcher.encode(["three"])])
    _wait_until(lambda: batcher.queued() == 2)
    gated.gate.set()
    _join(first + rest)  # the second batch is full (2 texts): it runs without waiting ten minutes
    assert batcher.model_calls == 2 and batcher.merged_requests == 2


def test_the_int8_backend_merges_what_queues_but_never_waits_for_company() -> None:
    """One ONNX run per text: a bigger batch is not cheaper, so a window would only add latency."""
    assert Embedder(_Fake(), "rev", backend="onnx-int8", batch_wait_ms=50).batcher.wait_s == 0
    assert Embedder(_Fake(), "rev", backend="torch", batch_wait_ms=50).batcher.wait_s == 0.05


def test_max_texts_1_turns_merging_off() -> None:
    gated = _Gated(_Fake())
    off = Embedder(gated, "rev", batch_max_texts=1, cache_size=0)
    first = _run_threads([lambda: off.encode(["a"])])
    assert gated.entered.wait(TIMEOUT)
    rest = _run_threads([lambda: off.encode(["b"]), lambda: off.encode(["c"])])
    _wait_until(lambda: off.batcher.queued() == 2)
    gated.gate.set()
    _join(first + rest)
    assert len(gated.calls) == 3


# -- the encode cache ------------------------------------------------------------------------------


@pytest.fixture
def cached(embedder: Embedder) -> Iterator[Embedder]:
    yield Embedder(embedder._model, embedder.revision, cache_size=16)


def test_cache_hits_return_identical_vectors_without_the_model(cached: Embedder) -> None:
    calls = _counting(cached)
    first = cached.encode(["Peskov said the talks were useful.", "The weather is mild."])
    again = cached.encode(["The weather is mild.", "Peskov said the talks were useful."])
    assert calls == [2]
    assert np.array_equal(again, first[::-1])
    assert (cached.cache_hits, cached.cache_misses) == (2, 2)


def test_whitespace_and_unicode_variants_hit_the_cache(cached: Embedder) -> None:
    calls = _counting(cached)
    base = cached.encode(["Peskov said the café talks were useful."])
    decomposed = unicodedata.normalize("NFD", "café")
    variants = [
        "  Peskov   said the café\ttalks\nwere useful. ",
        f"Peskov said the {decomposed} talks were useful.",
        "Peskov\u00a0said the café talks were useful.",
    ]
    for text in variants:
        assert normalise(text) == "Peskov said the café talks were useful."
        assert np.array_equal(cached.encode([text]), base)
    assert calls == [1] and cached.cache_hits == 3


def test_a_miss_computes_what_a_hit_returns(embedder: Embedder) -> None:
    """The model is given the normalised text, so the vector cannot depend on the cache state."""
    uncached = Embedder(embedder._model, embedder.revision, cache_size=0)
    messy = "  Peskov   said the talks\twere useful. "
    assert np.array_equal(uncached.encode([messy]), uncached.encode(["Peskov said the talks were useful."]))


def test_the_cache_evicts_the_least_recently_used() -> None:
    small = Embedder(_Fake(), "rev", cache_size=2)
    calls = _counting(small)
    small.encode(["a", "b"])
    small.encode(["a"])  # a is now the most recent
    small.encode(["c"])  # evicts b
    small.encode(["a", "c"])
    assert calls == [2, 1]
    small.encode(["b"])
    assert calls == [2, 1, 1] and small.cache_entries == 2


def test_a_zero_size_cache_is_off_but_repeats_in_one_call_are_encoded_once() -> None:
    off = Embedder(_Fake(), "rev", cache_size=0)
    calls = _counting(off)
    rows = off.encode(["x", "y", "x"])
    off.encode(["x"])
    assert calls == [2, 1] and np.array_equal(rows[0], rows[2]) and off.cache_entries == 0
