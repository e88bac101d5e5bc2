# Quote attribution service. The image installs and starts exactly as `./run serve` does:
# scripts/install.sh at build time (venv, embedding model, SQLite store), scripts/start.sh at run
# time (exec gunicorn -c gunicorn.conf.py). Nothing is fetched when the container runs.
#
#   docker build -t quote-attribution .
#   docker run -p 8000:8000 -e QUOTES_API_KEYS=... -v quotes-var:/app/var quote-attribution
#
# linux/amd64 only: requirements/lock.txt pins torch==2.13.0+cpu by the sha256 of its x86_64 wheel.
# /app/var holds the quote store (var/quotes.sqlite3), written by POST /v1/articles; mount a named
# volume there to keep added articles across containers (a new, empty volume is seeded from the image).

FROM python:3.11.17-slim-bookworm AS builder

# pip finds the CPU-only torch wheel (the lock's single torch hash) on PyTorch's CPU index; every
# other wheel comes from PyPI. Behind a mirror: --build-arg PIP_EXTRA_INDEX_URL=https://mirror/... .
# --require-hashes (scripts/install.sh) accepts only the locked files, whichever index serves them.
ARG PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    QUOTES_VENV=/app/.venv

WORKDIR /app
# The context is filtered by .dockerignore: no host venv, store or materialised model gets in.
COPY . .
# Runtime dependencies only (no --dev). The chmod lets the non-root runtime user read everything
# under /app whatever the build's umask (in the same layer, so nothing is duplicated).
RUN PIP_EXTRA_INDEX_URL="${PIP_EXTRA_INDEX_URL}" scripts/install.sh \
    && chmod -R a+rX /app


# Same base image as the builder, so the venv's interpreter symlinks resolve to the same python.
FROM python:3.11.17-slim-bookworm AS runtime

ENV QUOTES_VENV=/app/.venv \
    QUOTES_BIND=0.0.0.0:8000 \
    PATH=/app/.venv/bin:$PATH \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

RUN groupadd --system --gid 10001 quotes \
    && useradd --system --no-log-init --uid 10001 --gid 10001 --create-home --home-dir /home/quotes \
        --shell /usr/sbin/nologin quotes

WORKDIR /app
COPY --from=builder /app /app
# Everything is read-only for the service except the store directory (SQLite also writes its
# journal next to the database file).
RUN chown -R 10001:10001 /app/var

USER 10001:10001
EXPOSE 8000
STOPSIGNAL SIGTERM
# /healthz answers as soon as a worker runs (model loading is reported by /readyz). The port is
# taken from QUOTES_BIND, so overriding the bind keeps the check pointed at the server.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["/app/.venv/bin/python", "-c", "import os, urllib.request; port = os.environ.get('QUOTES_BIND', ':8000').rpartition(':')[2]; urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=3)"]

# start.sh execs gunicorn, so gunicorn is PID 1 and receives SIGTERM (graceful shutdown).
# Extra arguments go to gunicorn: docker run ... quote-attribution /app/scripts/start.sh --workers 2
CMD ["/app/scripts/start.sh"]
