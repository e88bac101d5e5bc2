"""The real gunicorn for end-to-end tests: started by the shipped start script with production settings.

    from servers import Server, start_server

    with start_server(tmp_dir, store_path, QUOTES_WORKERS="2", QUOTES_API_KEYS=KEY) as server:
        status, headers, body = server.request("GET", "/v1/info")

The server listens on a free loopback port, runs in a process group of its own (its master's pid is
the group id), logs JSON lines to a file in `tmp_dir`, and is ready when every worker has logged
"ready". On exit it gets SIGTERM and is killed if it does not stop. The process handling itself is
bench/server.py's, shared with the benchmarks; this module adds what tests need on top.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# bench/ is not an installed package: pyproject's pytest `pythonpath = ["."]` makes it importable.
from bench.server import START, free_port, launch, read_log, server_env

__all__ = ["START", "Server", "free_port", "server_env", "start_server"]


@dataclass
class Server:
    process: subprocess.Popen[bytes]  # gunicorn's master
    port: int
    log_path: Path
    store_path: Path

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None, timeout: float = 120
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
            hdrs = {"Content-Type": "application/json"} if data is not None else {}
            conn.request(method, path, body=data, headers={**hdrs, **(headers or {})})
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            conn.close()

    def logs(self) -> list[dict[str, Any]]:
        try:
            return read_log(self.log_path)
        except ValueError as exc:
            pytest.fail(str(exc))

    def wait_for_log(self, predicate: Any, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.logs():
                if predicate(line):
                    return line
            time.sleep(0.05)
        pytest.fail("the expected log line never came")


@contextmanager
def start_server(tmp_dir: Path, store_path: Path, **env_overrides: str) -> Iterator[Server]:
    """gunicorn serving `store_path` with the QUOTES_* settings given, once every worker is ready."""
    with launch(tmp_dir, store_path, **env_overrides) as launched:
        yield Server(launched.process, launched.port, launched.log_path, store_path)
