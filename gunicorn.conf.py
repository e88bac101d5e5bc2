"""gunicorn settings. Every value comes from service/config.py (environment variables, README table).

The app is created in each worker after fork: PyTorch must not be imported before forking (a
preloaded torch can hang workers), and the model's threads per worker (torch's or ONNX Runtime's)
are sized so that workers x threads stays within the cores. A worker serving with onnx-int8 never
imports torch at all (service/wsgi.py); with that backend the master imports the code and loads
spaCy before forking, the model and the store are still opened per worker. Metrics are shared by the workers through
PROMETHEUS_MULTIPROC_DIR, which is set here, before any worker imports prometheus_client.
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

from service.config import ConfigError, Settings
from service.logs import logging_config

try:
    _settings = Settings.from_env()
    _settings.check_start()
except ConfigError as exc:  # one clear line, no traceback, and gunicorn does not start
    sys.exit(f"configuration error: {exc}")

bind = _settings.bind
workers = _settings.workers
worker_class = "gthread"
threads = _settings.threads
timeout = _settings.timeout
graceful_timeout = _settings.graceful_timeout
max_requests = _settings.max_requests
max_requests_jitter = _settings.max_requests_jitter
# The app logs one JSON line per request (with request id, route, duration, segments): gunicorn's
# own access log would repeat it.
accesslog = None
logconfig_dict = logging_config(_settings)
preload_app = False
wsgi_app = "service.wsgi:app"
# Worker heartbeats in memory: a container's overlay filesystem can stall them into false timeouts.
worker_tmp_dir = "/dev/shm" if Path("/dev/shm").is_dir() else None  # noqa: S108 (gunicorn's advice)
# gunicorn's runtime control socket is a management surface nobody here uses.
control_socket_disable = True
# Workers are told the real client by ProxyFix (QUOTES_TRUSTED_PROXIES), not by gunicorn.
forwarded_allow_ips = "127.0.0.1"

# This file runs again on every HUP (reload): the directory is prepared once per master, then kept.
if os.environ.get("PROMETHEUS_MULTIPROC_DIR", "") != os.environ.get("QUOTES_METRICS_DIR_PREPARED"):
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="quotes-metrics-")
        os.environ["QUOTES_METRICS_DIR_OURS"] = "1"  # removed at exit
    else:  # an operator's directory: samples of a previous run would be added to this one's
        for stale in Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).glob("*.db"):
            stale.unlink()
    os.environ["QUOTES_METRICS_DIR_PREPARED"] = os.environ["PROMETHEUS_MULTIPROC_DIR"]


def _size_thread_pools():
    # Before numpy or torch is imported: their thread pools read these once.
    threads = str(_settings.model_threads())
    os.environ.setdefault("OMP_NUM_THREADS", threads)
    os.environ.setdefault("MKL_NUM_THREADS", threads)


def _map_large_allocations(threshold):
    # glibc raises its mmap threshold to each mapped block freed (up to 32 MiB), and its trim threshold
    # to twice that, so after a few long articles what they freed stays with the worker for good. A
    # fixed threshold (QUOTES_MMAP_THRESHOLD, 8 MiB) stops that: an int8 worker holds ~20 MiB less
    # after traffic, at no cost measured in latency (docs/performance.md; at 512 KiB the same memory
    # cost 6-10 %). Not measured with torch: left to glibc there. glibc's own settings, when an
    # operator gives them, win.
    glibc_set = "MALLOC_MMAP_THRESHOLD_" in os.environ or "mmap_threshold" in os.environ.get("GLIBC_TUNABLES", "")
    if threshold == 0 or glibc_set:
        return
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: its own allocator, left alone
        return
    m_mmap_threshold = -3  # from glibc's malloc.h
    if libc.mallopt(m_mmap_threshold, threshold) != 1:  # glibc's failure is harmless: its defaults stay
        print("gunicorn.conf.py: mallopt(M_MMAP_THRESHOLD) refused; glibc's dynamic threshold stays", file=sys.stderr)


if _settings.embedding_backend == "onnx-int8":
    # No torch in this backend, so nothing that must not cross a fork: the master imports the code and
    # loads spaCy once, and every worker it starts (or restarts) begins from them, copy-on-write,
    # instead of spending a second and a half on its own. The model (ONNX Runtime keeps threads) and
    # the store (connections) are still opened in each worker, by its runtime. The code is then the
    # master's: deploy new code with a restart, not a HUP (which still re-reads the configuration).
    # numpy is imported here, so its pool is sized here, for the workers (same size for each).
    _size_thread_pools()
    _map_large_allocations(_settings.mmap_threshold)
    from service.encoders import keep_torch_out
    from service.lean import keep_spacy_cli_out

    keep_torch_out()
    keep_spacy_cli_out()
    import service.api  # noqa: F401
    from service.nlp import load_nlp

    load_nlp()
    import gc

    # What the master loaded is shared with every worker copy-on-write. A worker's garbage collector
    # would walk those objects and write to their headers, unsharing their pages one by one; frozen,
    # they are never walked.
    gc.collect()
    gc.freeze()


def post_fork(server, worker):
    _size_thread_pools()  # torch: the worker imports it after this


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if os.environ.get("QUOTES_METRICS_DIR_OURS"):
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
