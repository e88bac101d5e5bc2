"""The real server for benchmarks and end-to-end tests: gunicorn by the shipped start script.

    from bench.server import launch
    with launch(tmp_dir, store_path, QUOTES_WORKERS="2") as server: ...

Production settings from the environment, a free loopback port, a private log and metrics directory,
its own process group; ready when every worker has logged "ready".
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from service.config import Settings

REPO_ROOT = Path(__file__).resolve().parent.parent
START = REPO_ROOT / "scripts" / "start.sh"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(**overrides: str) -> dict[str, str]:
    """This process's environment without any QUOTES_* or PROMETHEUS_* setting of its own, plus `overrides`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QUOTES_", "PROMETHEUS_"))}
    env["QUOTES_VENV"] = sys.prefix  # the venv running this is the one the script would use
    env.update(overrides)
    return env


def read_log(path: Path) -> list[dict[str, Any]]:
    """The JSON log lines written so far. A last line without its newline is still being written and is
    left for the next read; a complete line that is not JSON raises ValueError."""
    text = path.read_text(encoding="utf-8", errors="replace")
    complete = text[: text.rfind("\n") + 1]
    lines = []
    for raw in complete.splitlines():
        try:
            lines.append(json.loads(raw))
        except ValueError:
            raise ValueError(f"a log line that is not JSON: {raw!r}") from None
    return lines


@dataclass
class Launched:
    process: subprocess.Popen[bytes]  # gunicorn's master, leader of its own process group
    port: int
    log_path: Path


def _stop(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM (a graceful stop), and SIGKILL to the whole group when it does not end in time."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # the master is not reaped yet: the group is still ours
        process.wait(timeout=30)


@contextlib.contextmanager
def launch(
    tmp_dir: Path, store_path: Path, ready_timeout: float = 180, stop_timeout: float = 90, **env_overrides: str
) -> Iterator[Launched]:
    """gunicorn by scripts/start.sh on a free loopback port, serving `store_path`, until every worker is ready.

    `env_overrides` are QUOTES_* settings. The server runs in a session of its own (so that its master
    and workers can be signalled together), logs to a new file in `tmp_dir` and keeps its metrics there;
    on exit it is stopped with SIGTERM, and killed if it has not ended within `stop_timeout` seconds.
    """
    port = free_port()
    n = 1
    log_path = tmp_dir / "server.log"
    while log_path.exists():  # a restart in the same directory keeps the earlier logs
        n += 1
        log_path = tmp_dir / f"server-{n}.log"
    metrics_dir = tmp_dir / f"metrics-{n}"
    metrics_dir.mkdir()
    env = server_env(
        QUOTES_BIND=f"127.0.0.1:{port}",
        QUOTES_STORE_PATH=str(store_path),
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        **env_overrides,
    )
    workers = Settings.from_env(env).workers
    with log_path.open("wb") as out:
        process = subprocess.Popen(
            [str(START)], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_dir, start_new_session=True
        )
    try:
        # Every worker loaded: each logs "ready" once, from its own pid.
        deadline = time.monotonic() + ready_timeout
        while len({ln["pid"] for ln in read_log(log_path) if ln.get("message") == "ready"}) < workers:
            failed = [ln["message"] for ln in read_log(log_path) if str(ln.get("message")).startswith("not ready")]
            if failed:  # a worker that cannot load stays up and says why: waiting longer will not help
                raise RuntimeError(f"a worker cannot load: {failed[0]}")
            if process.poll() is not None:
                raise RuntimeError(
                    f"the server exited ({process.returncode}) before it was ready:\n{log_path.read_text()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"workers not ready within {ready_timeout:.0f} s:\n{log_path.read_text()}")
            time.sleep(0.2)
        yield Launched(process, port, log_path)
    finally:
        _stop(process, stop_timeout)


@contextlib.contextmanager
def launch_on_copy(
    store_path: Path, ready_timeout: float = 180, stop_timeout: float = 90, **env_overrides: str
) -> Iterator[Launched]:
    """`launch` on a private copy of `store_path` in a new temporary directory: the store is left as it was."""
    with tempfile.TemporaryDirectory(prefix="quotes-bench-") as tmp:
        copy = Path(tmp) / "quotes.sqlite3"
        shutil.copy(store_path, copy)
        with launch(Path(tmp), copy, ready_timeout, stop_timeout, **env_overrides) as server:
            yield server


def worker_rss(master_pid: int) -> dict[int, int]:
    """Resident memory in bytes of each gunicorn worker (the master's children), by pid."""
    rss = {}
    for child in psutil.Process(master_pid).children():
        with contextlib.suppress(psutil.NoSuchProcess):
            rss[child.pid] = int(child.memory_info().rss)
    return rss
