"""Whether a persistence store exists at a backend, found out without creating anything.

Read-only tools (``persistence ls``, ``show``, ``validate``, a ``migrate``
source…) must not leave a file, a directory or a lock behind when pointed at
a typo.  Opening a sqlite file creates it and the dir backend makes its
directory on first lock, so the question is answered before any of that:
from the file system for files, from the schema's version table for SQL
servers, from the layout's root node for ZooKeeper.
"""

from __future__ import annotations

import os
from typing import Any

from ..backends.base import Backend
from ..exceptions import NotFound

__all__ = ["StoreMissing", "store_exists", "require_store", "missing"]


class StoreMissing(NotFound):
    """There is no persistence store where a read-only operation looked for one."""


def _sql_exists(backend: Any) -> bool:
    from .backends.sql import migrate

    url = backend.engine.url
    if backend.memory:
        return True
    if backend.dialect_name == "sqlite":
        return _sqlite_has_schema(url.database or "")
    conn = backend.get_connection()
    try:
        return conn._session.run("look for the persistence schema",
                                 migrate.current) is not None
    finally:
        conn.close()


def _sqlite_has_schema(path: str) -> bool:
    """Whether the sqlite file at ``path`` holds our schema, looked at read-only: our
    own connections would switch a foreign file to WAL, which rewrites its header."""
    import sqlite3
    import urllib.parse

    from ..backends.sql.tables import VERSION_TABLE

    if not os.path.isfile(path):
        return False
    db = sqlite3.connect(f"file:{urllib.parse.quote(path)}?mode=ro", uri=True)
    try:
        found = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                           (VERSION_TABLE,)).fetchone()
        return found is not None and db.execute(
            f"SELECT count(*) FROM {VERSION_TABLE}").fetchone()[0] > 0
    except sqlite3.DatabaseError:    # not a database at all, or locked: let the operation say
        return True
    finally:
        db.close()


def _path_exists(backend: Any) -> bool:
    from ..backends.dir import DirBackend
    from ..backends.memory import MemoryBackend

    if isinstance(backend, MemoryBackend):
        return True   # a fresh memory store is an empty one, never a missing one
    if isinstance(backend, DirBackend):
        return os.path.isdir(os.path.join(backend.path, "books"))
    conn = backend.get_connection()
    try:
        return bool(conn._exists(conn.book_path))
    finally:
        conn.close()


def store_exists(backend: Backend) -> bool | None:
    """True or False when this backend can tell without writing; None when it cannot.

    A backend of another distribution answers through its own
    ``store_exists()`` method if it has one.
    """
    own = getattr(backend, "store_exists", None)
    if callable(own):
        return bool(own())
    try:
        from ..backends.sql import SQLAlchemyBackend
    except ImportError:
        SQLAlchemyBackend = None  # noqa: N806 - the sql extra is not installed
    if SQLAlchemyBackend is not None and isinstance(backend, SQLAlchemyBackend):
        return _sql_exists(backend)
    from ..backends.pathbased.connection import PathBasedBackend

    if isinstance(backend, PathBasedBackend):
        return _path_exists(backend)
    return None


def missing(where: str) -> StoreMissing:
    """The error for no store at ``where`` (a masked URI), naming the command that
    creates one."""
    return StoreMissing(f"no persistence store at {where} (run `persistence upgrade "
                        f"{where}` to create one)")


def require_store(backend: Backend, where: str) -> None:
    """StoreMissing unless a store is at ``where``."""
    if store_exists(backend) is False:
        raise missing(where)
