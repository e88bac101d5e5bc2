"""The quote store: one interface (service/store/base.py), two backends chosen by configuration.

- SQLite (service/store/sqlite.py): one file, the embedded default (`QUOTES_STORE_PATH`).
- PostgreSQL with pgvector (service/store/postgres.py): `QUOTES_STORE_URL=postgresql://…`, shared
  by several replicas.

`open_store` opens an existing store (upgrading its schema in place when it is older, see
service/store/migrations.py) and refuses one made by another embedding model; `create_store` makes
an empty one. Filling it is ingest's job (service/ingest.py), building one from a corpus the
build's (service/build.py).
"""

from __future__ import annotations

from pathlib import Path

from .base import (
    AddReport,
    ArticleState,
    EmbedderLike,
    Hits,
    Reader,
    RegistryDelta,
    Store,
    StoreError,
    StoreState,
    WordingRow,
    Writer,
    backend_of,
    copy_registry,
    registry_delta,
)
from .sqlite import SqliteStore

__all__ = [
    "AddReport",
    "ArticleState",
    "EmbedderLike",
    "Hits",
    "Reader",
    "RegistryDelta",
    "SqliteStore",
    "Store",
    "StoreError",
    "StoreState",
    "WordingRow",
    "Writer",
    "backend_of",
    "copy_registry",
    "create_store",
    "open_store",
    "registry_delta",
]


def open_store(
    location: str | Path, model_name: str, model_revision: str, *, vector_index: str = "auto", pool_size: int = 4
) -> Store:
    """The store at a file path or a postgresql:// URL. `vector_index` is SQLite's in-process index
    (exact, compact or auto); `pool_size` the PostgreSQL connections this process may hold."""
    where = str(location)
    if backend_of(where) == "postgresql":
        from .postgres import PostgresStore

        return PostgresStore(where, model_name, model_revision, pool_size=pool_size)
    return SqliteStore(Path(where), model_name, model_revision, vector_index=vector_index)


def create_store(location: str | Path, model_name: str, model_revision: str, dim: int, **meta: str) -> Store:
    """A new, empty store at a file path that does not exist yet, or in a database that holds none."""
    where = str(location)
    if backend_of(where) == "postgresql":
        from .postgres import PostgresStore

        return PostgresStore.create(where, model_name, model_revision, dim, **meta)
    return SqliteStore.create(Path(where), model_name, model_revision, dim, **meta)
