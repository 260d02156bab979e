"""TaskFlow's SQL store (sqlite, PostgreSQL, MySQL/MariaDB), read through reflection.

TaskFlow's schema is three tables, ``logbooks`` ⊃ ``flowdetails`` ⊃
``atomdetails`` (``taskdetails`` before its 2014 rename), each child row
pointing at its parent with ``parent_uuid``.  JSON values are text, or native
``json`` columns on PostgreSQL; times are naive UTC.  The tables are
reflected, not declared, so stores left at an older TaskFlow schema revision
read too: a missing ``atom_type`` means a task detail, a missing
``intention`` means EXECUTE, missing revert columns mean nothing was
reverted.

Nothing is ever created or written: sqlite files are opened with
``mode=ro`` (a missing file is an error, not a new empty database),
PostgreSQL sessions with ``default_transaction_read_only``, MySQL sessions
with ``SET SESSION TRANSACTION READ ONLY``.  A logbook is read with its flows
and atoms in one transaction (repeatable read), so a TaskFlow process still
writing is seen before or after one of its saves, never in the middle.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from ...exceptions import ConfigurationError, MissingDependency
from ...models import records as models
from ..base import translate_errors
from ..drivers.sqlitefile import read_only_engine
from ..drivers.sqlurl import EXTRAS, parse_url, with_default_driver
from ..url import mask_password
from . import convert
from .errors import NoTaskFlowStore
from .reader import TaskFlowConnection

__all__ = ["SqlTaskFlowConnection", "make_engine"]

#: This library's own schema has these (TaskFlow's never does).
_OUR_VERSION_TABLE = "persistence_alembic_version"
_REQUIRED = {
    "logbooks": ("uuid", "name", "meta", "created_at", "updated_at"),
    "flowdetails": ("uuid", "name", "meta", "state", "parent_uuid"),
    "atomdetails": ("uuid", "name", "meta", "state", "version", "results", "failure",
                    "parent_uuid"),
}
_OPTIONAL_ATOM = ("atom_type", "intention", "revert_results", "revert_failure")
_JSON = ("meta", "results", "failure", "revert_results", "revert_failure")


def _sqlite_engine(url: sa.URL, location: str) -> sa.Engine:
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        raise ConfigurationError(f"{location}: name the TaskFlow sqlite file, e.g. "
                                 f"taskflow+sqlite:///path/to/taskflow.db")
    path = os.path.abspath(database)
    return read_only_engine(path, lambda: NoTaskFlowStore(
        f"no TaskFlow store at {location}: no such file {path}"))


def make_engine(uri: str, location: str) -> sa.Engine:
    """A read-only engine on the TaskFlow database at SQLAlchemy URL ``uri``."""
    url = parse_url(uri)
    backend = url.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(url, location)
    url = with_default_driver(url)
    if backend in ("postgresql", "postgres"):
        connect_args = {"options": "-c default_transaction_read_only=on"}
        options = {"isolation_level": "REPEATABLE READ"}
    elif backend in ("mysql", "mariadb"):
        connect_args = {"init_command": "SET SESSION TRANSACTION READ ONLY"}
        options = {"isolation_level": "REPEATABLE READ"}
    else:
        raise ConfigurationError(f"{location}: TaskFlow's SQL stores are sqlite, postgresql "
                                 f"or mysql databases, not {backend!r}")
    try:
        return sa.create_engine(url, connect_args=connect_args, pool_pre_ping=True, **options)
    except ImportError as err:
        extra = EXTRAS.get(url.get_backend_name(), "sql")
        raise MissingDependency(f"cannot read {location}: {err}; pip install "
                                f"'persistence[{extra}]'") from err


def _describe(err: BaseException) -> str:
    orig = getattr(err, "orig", None) or err
    text = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    return mask_password(f"{type(orig).__name__}: {text}")


class _Schema:
    """TaskFlow's three tables as reflected, and the columns to select from each."""

    def __init__(self, conn: sa.Connection, location: str) -> None:
        inspector = sa.inspect(conn)
        names = set(inspector.get_table_names())
        atoms = "taskdetails" if "taskdetails" in names and "atomdetails" not in names \
            else "atomdetails"
        logbook_columns = ({c["name"] for c in inspector.get_columns("logbooks")}
                           if "logbooks" in names else set())
        if _OUR_VERSION_TABLE in names or "revision" in logbook_columns:
            raise NoTaskFlowStore(
                f"no TaskFlow store at {location}: the database holds persistence's own "
                f"schema; read it without the taskflow+ prefix")
        missing = [n for n in ("logbooks", "flowdetails", atoms) if n not in names]
        if missing:
            tables = f"{', '.join(missing)} table{'s' if len(missing) > 1 else ''}"
            raise NoTaskFlowStore(f"no TaskFlow store at {location}: the database has no "
                                  f"{tables} (TaskFlow's schema is logbooks, flowdetails and "
                                  f"atomdetails)")
        metadata = sa.MetaData()
        self.books, self.flows, self.atoms = (
            sa.Table(name, metadata, autoload_with=conn)
            for name in ("logbooks", "flowdetails", atoms))
        for table, required in zip((self.books, self.flows, self.atoms), _REQUIRED.values()):
            absent = [c for c in required if c not in table.c]
            if absent:
                raise NoTaskFlowStore(
                    f"no TaskFlow store this reader knows at {location}: table {table.name} "
                    f"lacks column(s) {', '.join(absent)} (a schema older than TaskFlow 0.2; "
                    f"upgrade a copy with TaskFlow's own upgrade() and read that)")
        self.book_cols = self._columns(self.books, _REQUIRED["logbooks"])
        self.flow_cols = self._columns(self.flows, _REQUIRED["flowdetails"])
        self.atom_cols = self._columns(self.atoms, _REQUIRED["atomdetails"] + tuple(
            c for c in _OPTIONAL_ATOM if c in self.atoms.c))

    @staticmethod
    def _columns(table: sa.Table, names: tuple[str, ...]) -> list[Any]:
        """Columns read raw: JSON as text (parsed by us), times as the driver gives them."""
        selected = []
        for name in names:
            column = table.c[name]
            if name in _JSON and isinstance(column.type, sa.JSON):
                selected.append(sa.cast(column, sa.Text).label(name))
            else:
                selected.append(sa.type_coerce(column, sa.String).label(name)
                                if name in ("created_at", "updated_at") else column)
        return selected


class SqlTaskFlowConnection(TaskFlowConnection):
    """Reads TaskFlow's tables through ``engine`` (see :func:`make_engine`)."""

    def __init__(self, backend: Any, engine: sa.Engine, location: str) -> None:
        super().__init__(backend, location)
        self._engine = engine
        self._schema: _Schema | None = None
        self._current: sa.Connection | None = None

    @contextlib.contextmanager
    def _reading(self, what: str) -> Iterator[tuple[sa.Connection, _Schema]]:
        """One read transaction (joined when already inside one)."""
        if self._current is not None:
            yield self._current, self._schema
            return
        with translate_errors(f"{what} in the TaskFlow store at {self.location}",
                              sa.exc.SQLAlchemyError, _describe):
            with self._engine.connect() as conn, conn.begin():
                if self._schema is None:
                    self._schema = _Schema(conn, self.location)
                self._current = conn
                try:
                    yield conn, self._schema
                finally:
                    self._current = None

    def validate(self) -> None:
        with self._reading("check the schema"):
            pass

    def _where(self, table: str, uuid: Any, what: str) -> convert.Where:
        return convert.Where(f"{what} {uuid}", f"{self.location} table {table}")

    def _row(self, row: Any, table: str, what: str, names: tuple[str, ...] = _JSON
             ) -> tuple[dict[str, Any], convert.Where]:
        data = dict(row._mapping)
        where = self._where(table, data.get("uuid"), what)
        for name in names:
            if name in data:
                data[name] = convert.decode_json(data[name], where, name)
        return data, where

    def _book(self, row: Any) -> models.LogBook:
        data, where = self._row(row, "logbooks", "logbook")
        return convert.logbook(data, where)

    def _flow(self, row: Any) -> models.FlowDetail:
        data, where = self._row(row, "flowdetails", "flow detail")
        return convert.flow(data, where)

    def _atom(self, row: Any) -> models.AtomDetail:
        data, where = self._row(row, self._schema.atoms.name, "atom detail")
        data.pop("parent_uuid", None)
        return convert.atom(data.pop("atom_type", None) or convert.TASK_DETAIL, data, where)

    def _book_uuids(self) -> list[str]:
        with self._reading("list logbooks") as (conn, s):
            return list(conn.scalars(sa.select(s.books.c.uuid)
                                     .order_by(s.books.c.created_at, s.books.c.uuid)))

    def _read_books(self) -> Iterator[models.LogBook]:
        with self._reading("list logbooks") as (conn, s):
            rows = conn.execute(sa.select(*s.book_cols)
                                .order_by(s.books.c.created_at, s.books.c.uuid)).all()
        for row in rows:
            yield self._book(row)

    def _read_book(self, uuid: str) -> models.LogBook:
        with self._reading(f"read logbook {uuid}") as (conn, s):
            row = conn.execute(sa.select(*s.book_cols).where(s.books.c.uuid == uuid)).first()
        if row is None:
            self._not_found("logbook", uuid)
        return self._book(row)

    def get_logbook(self, book_uuid: str, lazy: bool = False) -> models.LogBook:
        with self._reading(f"read logbook {book_uuid}"):
            return super().get_logbook(book_uuid, lazy)

    def get_flow_details(self, fd_uuid: str, lazy: bool = False) -> models.FlowDetail:
        with self._reading(f"read flow detail {fd_uuid}"):
            return super().get_flow_details(fd_uuid, lazy)

    def _fill_book(self, book: models.LogBook) -> None:
        """The flows and atoms of a logbook in two queries (atoms joined to their flows)."""
        with self._reading(f"read logbook {book.uuid}") as (conn, s):
            flows = {}
            for row in conn.execute(sa.select(*s.flow_cols)
                                    .where(s.flows.c.parent_uuid == book.uuid)):
                fd = self._flow(row)
                flows[fd.uuid] = fd
                book.add(fd)
            query = (sa.select(*s.atom_cols)
                     .join(s.flows, s.atoms.c.parent_uuid == s.flows.c.uuid)
                     .where(s.flows.c.parent_uuid == book.uuid))
            for row in conn.execute(query):
                flows[row.parent_uuid].add(self._atom(row))

    def _read_flows(self, book_uuid: str) -> list[models.FlowDetail]:
        with self._reading(f"read the flow details of logbook {book_uuid}") as (conn, s):
            if conn.scalar(sa.select(s.books.c.uuid).where(s.books.c.uuid == book_uuid)) is None:
                self._not_found("logbook", book_uuid)
            rows = conn.execute(sa.select(*s.flow_cols)
                                .where(s.flows.c.parent_uuid == book_uuid)).all()
        return [self._flow(row) for row in rows]

    def _read_flow(self, uuid: str) -> models.FlowDetail:
        with self._reading(f"read flow detail {uuid}") as (conn, s):
            row = conn.execute(sa.select(*s.flow_cols).where(s.flows.c.uuid == uuid)).first()
        if row is None:
            self._not_found("flow detail", uuid)
        return self._flow(row)

    def _read_atoms(self, flow_uuid: str) -> list[models.AtomDetail]:
        with self._reading(f"read the atom details of flow detail {flow_uuid}") as (conn, s):
            if conn.scalar(sa.select(s.flows.c.uuid).where(s.flows.c.uuid == flow_uuid)) is None:
                self._not_found("flow detail", flow_uuid)
            rows = conn.execute(sa.select(*s.atom_cols)
                                .where(s.atoms.c.parent_uuid == flow_uuid)).all()
        return [self._atom(row) for row in rows]

    def _read_atom(self, uuid: str) -> models.AtomDetail:
        with self._reading(f"read atom detail {uuid}") as (conn, s):
            row = conn.execute(sa.select(*s.atom_cols).where(s.atoms.c.uuid == uuid)).first()
        if row is None:
            self._not_found("atom detail", uuid)
        return self._atom(row)
