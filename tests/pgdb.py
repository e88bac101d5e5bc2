"""PostgreSQL for tests: a real server (pgserver's PostgreSQL 16 + pgvector), one per test session.

QUOTES_TEST_PG_URL names a server to use instead (its user needs CREATEDB, and the vector extension
must be installable). Every store gets a database of its own, made by `new_database`.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

_names = itertools.count(1)


@contextmanager
def server() -> Iterator[str]:
    """The URL of a PostgreSQL server's maintenance database, stopped (and its data removed) on exit
    when started here."""
    given = os.environ.get("QUOTES_TEST_PG_URL", "").strip()
    if given:
        yield given
        return
    import pgserver

    # Not under pytest's private temporary directory: as root, pgserver runs PostgreSQL as its own
    # user, which must be able to reach the data directory.
    data_dir = Path(tempfile.mkdtemp(prefix="quotes-test-pg-"))
    try:
        srv = pgserver.get_server(data_dir, cleanup_mode="stop")
        try:
            yield srv.get_uri()
        finally:
            srv.cleanup()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def new_database(server_url: str, prefix: str = "quotes") -> str:
    """A new empty database on the server; returns its URL."""
    name = f"{prefix}_{os.getpid()}_{next(_names)}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return with_database(server_url, name)


def drop_database(server_url: str, url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def copy_database(server_url: str, template_url: str, prefix: str = "copy") -> str:
    """A new database with the content of `template_url` (no one may be connected to it)."""
    name = f"{prefix}_{os.getpid()}_{next(_names)}"
    template = urlsplit(template_url).path.lstrip("/")
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return with_database(server_url, name)
