"""What a worker needs to answer: model, spaCy pipeline, store and matcher, loaded once per process.

Loading takes seconds, so it runs in a background thread: the process answers /healthz at once and
/readyz with 503 until everything is in place (or with the reason it failed).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from ..config import Settings
from ..embed import Embedder, load_embedder
from ..match import Matcher
from ..nlp import load_nlp
from ..store import Store

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
        if components is not None:
            self._done.set()

    @classmethod
    def preloaded(cls, settings: Settings, embedder: Embedder, nlp: Any, store: Store) -> Runtime:
        return cls(settings, Components(embedder, nlp, store, Matcher(store, embedder, nlp)))

    def start(self) -> None:
        if not self._done.is_set():
            threading.Thread(target=self._load, name="load-model-and-store", daemon=True).start()

    def _load(self) -> None:
        try:
            embedder = load_embedder(self.settings.model_dir)
            nlp = load_nlp()
            store = Store(self.settings.store_path, embedder.name, embedder.revision)
            matcher = Matcher(store, embedder, nlp)
            embedder.encode(["warm-up"])  # the first encode allocates; pay it before traffic
            self._components = Components(embedder, nlp, store, matcher)
            log.info("ready", extra={"store_version": matcher.store_version})
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
