"""What operators see: request ids, one JSON log line per request, and Prometheus metrics.

Metrics are per process unless PROMETHEUS_MULTIPROC_DIR is set (gunicorn.conf.py sets it), in which
case every worker writes its samples there and /metrics, served by any worker, adds up all of them.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Iterable

from flask import Flask, Response, g, request
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_flask_exporter import PrometheusMetrics

from ..embed import Embedder
from ..match import Match
from .runtime import NotReady, Runtime

log = logging.getLogger("service.request")

REQUEST_ID_HEADER = "X-Request-ID"
# An incoming id is kept only if it is short and plain: it lands in logs and headers verbatim.
_VALID_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
# Probes and scrapes are logged at DEBUG: a health check every few seconds would drown the log.
_QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def request_id() -> str | None:
    rid: str | None = g.get("request_id")
    return rid


def note_matches(matches: Iterable[Match]) -> None:
    """Called by the views with what they matched: the segment count of the log line and the metrics."""
    matches = list(matches)
    g.segments = g.get("segments", 0) + len(matches)
    metrics: Metrics | None = g.get("quotes_metrics")
    if metrics is not None:
        for m in matches:
            metrics.segments.labels(label=m.label).inc()


class Metrics:
    """The application's own metrics, next to prometheus-flask-exporter's request counts and latencies."""

    def __init__(self, app: Flask, runtime: Runtime) -> None:
        options = {"group_by": "url_rule", "defaults_prefix": "quotes"}
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_flask_exporter.multiprocess import GunicornInternalPrometheusMetrics

            self.exporter: PrometheusMetrics = GunicornInternalPrometheusMetrics(app, **options)
        else:  # one registry per app, so several apps in one process (tests) do not collide
            self.exporter = PrometheusMetrics(app, registry=CollectorRegistry(), **options)
        registry = self.exporter.registry
        self.segments = Counter(
            "quotes_segments_matched_total", "Segments matched, by label", ["label"], registry=registry
        )
        self.encode_seconds = Histogram(
            "quotes_model_encode_seconds",
            "Time spent in one call of the embedding model",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=registry,
        )
        self.encoded_texts = Counter("quotes_model_encoded_texts_total", "Texts embedded", registry=registry)
        self.cache_hits = Counter(
            "quotes_encode_cache_hits_total", "Segments whose vector came from the cache", registry=registry
        )
        self.cache_misses = Counter(
            "quotes_encode_cache_misses_total", "Segments the model had to encode", registry=registry
        )
        self.merged = Counter(
            "quotes_encode_merged_requests_total",
            "Encode calls that shared a model call with another request",
            registry=registry,
        )
        self._seen = (0, 0, 0)  # the embedder's own counts at the last sync: counters take the increase
        self._sync_lock = threading.Lock()
        # livemax: every worker reads the same SQLite file; the largest live reading is the current size.
        self.store_quotes = Gauge(
            "quotes_store_quotes", "Canonical quotes in the store", registry=registry, multiprocess_mode="livemax"
        )
        self.store_variants = Gauge(
            "quotes_store_variants", "Reported wordings in the store", registry=registry, multiprocess_mode="livemax"
        )
        self.store_articles = Gauge(
            "quotes_store_articles", "Articles in the store", registry=registry, multiprocess_mode="livemax"
        )
        self._runtime = runtime

    def observe_encode(self, texts: int, seconds: float) -> None:
        self.encode_seconds.observe(seconds)
        self.encoded_texts.inc(texts)

    def baseline(self, embedder: Embedder) -> None:
        """Counts from before this app existed (a shared embedder in tests) are not this app's."""
        with self._sync_lock:
            self._seen = (embedder.cache_hits, embedder.cache_misses, embedder.batcher.merged_requests)

    def sync_embedder(self) -> None:
        """Bring the counters up to the embedder's per-process counts (it knows nothing of Prometheus)."""
        try:
            e = self._runtime.get().embedder
        except NotReady:
            return
        with self._sync_lock:
            now = (e.cache_hits, e.cache_misses, e.batcher.merged_requests)
            counters = (self.cache_hits, self.cache_misses, self.merged)
            for counter, before, after in zip(counters, self._seen, now, strict=True):
                if after > before:
                    counter.inc(after - before)
            self._seen = now

    def refresh_store(self) -> None:
        try:
            info = self._runtime.get().store.info()
        except NotReady:
            return
        self.store_quotes.set(int(info.get("quotes", 0)))
        self.store_variants.set(int(info.get("variants", 0)))
        self.store_articles.set(int(info.get("articles", 0)))


def install(app: Flask, runtime: Runtime) -> Metrics:
    metrics = Metrics(app, runtime)
    runtime.on_ready(lambda components: components.embedder.add_listener(metrics.observe_encode))
    runtime.on_ready(lambda _components: metrics.refresh_store())
    runtime.on_ready(lambda components: metrics.baseline(components.embedder))

    @app.before_request
    def begin() -> None:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = incoming if _VALID_ID.fullmatch(incoming) else uuid.uuid4().hex
        g.started = time.perf_counter()
        g.quotes_metrics = metrics
        if request.path == "/metrics":
            metrics.refresh_store()
        log.debug("request started", extra={"method": request.method, "path": request.path})

    @app.after_request
    def finish(response: Response) -> Response:
        rid = g.get("request_id")
        if rid:
            response.headers[REQUEST_ID_HEADER] = rid
        started = g.get("started")
        if request.method == "POST" and request.endpoint == "v1.articles" and response.status_code < 300:
            metrics.refresh_store()
        metrics.sync_embedder()  # in every worker: each one's counters are its own
        fields = {
            "method": request.method,
            "route": request.url_rule.rule if request.url_rule else None,
            "path": request.path,
            "status": response.status_code,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1) if started else None,
            "segments": g.get("segments"),
            "remote_addr": request.remote_addr,
        }
        status = response.status_code
        if request.path in _QUIET_PATHS:
            level = logging.DEBUG
        else:  # a 503 is the service loading or overloaded, not a fault in it
            level = logging.ERROR if status >= 500 and status != 503 else logging.INFO
        log.log(level, "request", extra=fields)
        return response

    return metrics
