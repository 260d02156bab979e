"""Tell a TaskFlow store apart from a persistence store at the same kind of location.

TaskFlow's stores and this library's use the same table names (SQL) and the
same top-level folders (dir, ZooKeeper), so a TaskFlow store opened with a
plain ``sqlite://``, ``file://`` or ``zookeeper://`` URI would read as an
empty store, or fail with a database error, or be written into.
:func:`taskflow_store_in` looks, read-only and in a few requests, and says
what it found so callers can refuse with a message naming the
``taskflow+`` URI to use instead.
"""

from __future__ import annotations

import json
import os
from typing import Any

from ..backends.drivers.sqlitefile import read_only_engine

__all__ = ["taskflow_store_in"]

_SAMPLE = 8  # records looked at per folder: enough to tell, cheap on a big store


def _is_taskflow_book(doc: Any) -> bool:
    # TaskFlow marshals a logbook's times as {"year": ..., "microsecond": ...};
    # persistence writes ISO strings and a revision.
    return (isinstance(doc, dict) and "revision" not in doc
            and isinstance(doc.get("created_at"), (dict, type(None)))
            and {"uuid", "name"} <= doc.keys())


def _in_database(engine: Any) -> str | None:
    if engine.url.get_backend_name() == "sqlite":
        database = engine.url.database or ""
        if database in ("", ":memory:") or not os.path.isfile(database):
            return None  # nothing there yet (and connecting would create the file)
        # Read-only: an engine's connection would set the journal mode (a write).
        read_only = read_only_engine(database)
        try:
            return _schema_in(read_only)
        finally:
            read_only.dispose()
    return _schema_in(engine)


def _schema_in(engine: Any) -> str | None:
    import sqlalchemy as sa

    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        names = set(inspector.get_table_names())
        if "persistence_alembic_version" in names or "logbooks" not in names:
            return None
        if "atomdetails" not in names and "taskdetails" not in names:
            return None
        columns = {c["name"] for c in inspector.get_columns("logbooks")}
    return None if "revision" in columns else "TaskFlow's SQL schema"


def _in_directory(root: str) -> str | None:
    books = os.path.join(root, "books")
    try:
        with os.scandir(books) as entries:
            sample = [e.name for _, e in zip(range(_SAMPLE), entries)]
    except OSError:
        return None
    for name in sample:
        record = os.path.join(books, name)
        if os.path.isfile(os.path.join(record, "metadata")) and \
                not os.path.exists(os.path.join(record, ".record")):
            return "TaskFlow's dir layout (books/<uuid>/metadata)"
    return None


def _in_znodes(client: Any, root: str) -> str | None:
    from kazoo.exceptions import NoNodeError

    books = root.rstrip("/") + "/books"
    try:
        sample = client.get_children(books)[:_SAMPLE]
        for name in sample:
            data, _ = client.get(f"{books}/{name}")
            try:
                doc = json.loads(data)
            except (ValueError, UnicodeDecodeError):
                continue
            if _is_taskflow_book(doc):
                return "TaskFlow's ZooKeeper layout"
    except NoNodeError:
        return None
    return None


def taskflow_store_in(backend: Any) -> str | None:
    """What TaskFlow store sits where ``backend`` (a persistence backend) keeps its
    records — e.g. ``"TaskFlow's SQL schema"`` — or None if there is none.

    Only reads; a location that does not exist yet is left uncreated.  A probe
    that fails (server down, no permission) answers None: the caller's own
    operation then reports that failure in its own words.
    """
    if getattr(backend, "read_only", False):
        return None
    try:
        engine = getattr(backend, "engine", None)
        if engine is not None and hasattr(engine, "url"):
            return _in_database(engine)
        path = getattr(backend, "path", None)
        if not isinstance(path, str):
            return None
        if isinstance(getattr(type(backend), "client", None), property):  # ZooKeeper
            return _in_znodes(backend.client, path)
        if os.path.isabs(path) and os.path.isdir(path):
            return _in_directory(path)
    except Exception:  # noqa: BLE001 - a heuristic probe must never mask the real error
        return None
    return None
