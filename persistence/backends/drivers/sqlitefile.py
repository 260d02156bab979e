"""A sqlite file opened so that nothing can write it.

Read-only probes and readers (is there a schema here? is this a TaskFlow
store?) must leave a file exactly as they found it.  An ordinary connection
of the SQL backend sets the journal mode when it opens, which writes the
file's header, and connecting to a missing file creates it; ``mode=ro``
does neither.  The path goes into a ``file:`` URI quoted, so a ``?`` or
``#`` in it stays part of the name.
"""

from __future__ import annotations

import os
import sqlite3
import urllib.request
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["read_only_uri", "connect_read_only", "read_only_engine"]


def read_only_uri(path: str) -> str:
    """The sqlite URI that opens the file at ``path`` read-only."""
    return f"file:{urllib.request.pathname2url(os.path.abspath(path))}?mode=ro"


def connect_read_only(path: str, **kwargs: Any) -> sqlite3.Connection:
    """A sqlite3 connection that reads ``path`` and cannot write it (``kwargs`` go to
    :func:`sqlite3.connect`); sqlite3.Error if it cannot be opened."""
    return sqlite3.connect(read_only_uri(path), uri=True, **kwargs)


def read_only_engine(path: str, missing: Callable[[], Exception] | None = None) -> sa.Engine:
    """A SQLAlchemy engine on the sqlite file at ``path``, read-only.

    Every connection is a fresh one (no pool); if the file is gone when one
    opens, ``missing()`` is raised (sqlite's own "unable to open database
    file" otherwise).  Transactions begin when SQLAlchemy begins them, so a
    multi-statement read sees one state of the file.
    """
    import sqlalchemy as sa

    path = os.path.abspath(path)

    def connect() -> sqlite3.Connection:
        if missing is not None and not os.path.isfile(path):
            raise missing()
        conn = connect_read_only(path, check_same_thread=False)
        conn.isolation_level = None  # BEGIN is sent by the "begin" listener below
        return conn

    engine = sa.create_engine("sqlite://", creator=connect, poolclass=sa.pool.NullPool)
    sa.event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
    return engine
