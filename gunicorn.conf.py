"""gunicorn settings, all from the environment (documented in the README).

The app is created in each worker after fork: PyTorch must not be imported before forking (a
preloaded torch can hang workers), and torch threads per worker are sized so that
workers x threads stays within the cores.
"""

import os

_cores = os.cpu_count() or 1
bind = os.environ.get("QUOTES_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("QUOTES_WORKERS", max(1, min(_cores, 4))))
worker_class = "gthread"
threads = int(os.environ.get("QUOTES_THREADS", 4))
timeout = int(os.environ.get("QUOTES_TIMEOUT", 60))
graceful_timeout = int(os.environ.get("QUOTES_GRACEFUL_TIMEOUT", 30))
max_requests = int(os.environ.get("QUOTES_MAX_REQUESTS", 2000))
max_requests_jitter = int(os.environ.get("QUOTES_MAX_REQUESTS_JITTER", 200))
accesslog = "-"
errorlog = "-"
preload_app = False
wsgi_app = "service.api.wsgi:app"


def post_fork(server, worker):
    torch_threads = max(1, _cores // workers)
    os.environ.setdefault("OMP_NUM_THREADS", str(torch_threads))
    os.environ.setdefault("MKL_NUM_THREADS", str(torch_threads))
    import torch

    torch.set_num_threads(torch_threads)
