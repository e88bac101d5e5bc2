"""What a worker needs to answer: model, spaCy pipeline, store and matcher, loaded once per process.

Loading takes seconds, so it runs in a background thread: the process answers /healthz at once and
/readyz with 503 until everything is in place (or with the reason it failed).
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..config import Settings
from ..embed import Embedder, load_embedder
from ..match import Matcher, Thresholds
from ..nlp import load_nlp
from ..store import Store, open_store

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Components:
    embedder: Embedder
    nlp: Any
    store: Store
    matcher: Matcher


class NotReady(RuntimeError):
    pass


class Runtime:
    def __init__(self, settings: Settings, components: Components | None = None) -> None:
        self.settings = settings
        self._components = components
        self._error: str | None = None
        self._done = threading.Event()
        self._ready_callbacks: list[Callable[[Components], None]] = []
        self._callbacks_lock = threading.Lock()
        if components is not None:
            self._done.set()

    def on_ready(self, callback: Callable[[Components], None]) -> None:
        """Call `callback` with the components once loaded (at once when they already are)."""
        with self._callbacks_lock:
            if self._components is None:
                self._ready_callbacks.append(callback)
                return
        callback(self._components)

    @classmethod
    def preloaded(cls, settings: Settings, embedder: Embedder, nlp: Any, store: Store) -> Runtime:
        matcher = Matcher(store, embedder, nlp)
        return cls(settings, Components(embedder, nlp, store, matcher))

    def start(self) -> None:
        if not self._done.is_set():
            threading.Thread(target=self._load, name="load-model-and-store", daemon=True).start()

    def _load(self) -> None:
        started = time.perf_counter()
        phases: dict[str, float] = {}

        def lap(name: str) -> None:  # the start-up budget, phase by phase, in the "ready" log line
            phases[name] = round(time.perf_counter() - started - sum(phases.values()), 3)

        try:
            embedder = load_embedder(
                self.settings.model_dir,
                backend=self.settings.embedding_backend,
                batch_wait_ms=self.settings.batch_wait_ms,
                batch_max_texts=self.settings.batch_max_texts,
                cache_size=self.settings.encode_cache_size,
                threads=self.settings.model_threads(),
            )
            lap("model_s")
            nlp = load_nlp()
            lap("spacy_s")
            store = open_store(
                self.settings.store_location,
                embedder.name,
                embedder.revision,
                vector_index=self.settings.vector_index,
                pool_size=self.settings.threads + 1,  # one per request thread, one for the metrics
            )
            store.refresh()  # SQLite: its vector index, built before the first request needs it
            calibrated = Thresholds.load()
            paraphrase, related = self.settings.thresholds((calibrated.paraphrase, calibrated.related))
            thresholds = dataclasses.replace(calibrated, paraphrase=paraphrase, related=related)
            matcher = Matcher(store, embedder, nlp, thresholds)
            lap("store_s")
            embedder.encode(["warm-up"])  # the first encode allocates; pay it before traffic
            _release_freed_memory()
            lap("warmup_s")
            components = Components(embedder, nlp, store, matcher)
            with self._callbacks_lock:
                self._components = components
                callbacks, self._ready_callbacks = self._ready_callbacks, []
            for callback in callbacks:
                callback(components)
            log.info(
                "ready",
                extra={
                    "store_version": matcher.store_version,
                    "embedding": embedder.info,
                    "load_s": sum(phases.values()),
                    **phases,
                },
            )
        except Exception as exc:  # reported by /readyz and every request until fixed
            self._error = str(exc)
            log.error("not ready: %s", exc)
        finally:
            self._done.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    @property
    def error(self) -> str | None:
        return self._error

    def get(self) -> Components:
        if self._components is None:
            raise NotReady(self._error or "the model and the store are still loading")
        return self._components


def _release_freed_memory() -> None:
    """Hand back to the system the heap pages loading freed (the model file read to build the ONNX
    Runtime session, spaCy's temporaries): glibc keeps them otherwise, about 10 MiB per worker."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL("libc.so.6").malloc_trim(0)
