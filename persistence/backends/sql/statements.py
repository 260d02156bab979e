"""Every SQL statement the backend runs, built once with SQLAlchemy Core.

All values travel as bound parameters.  Writes bind ``v_<column>`` for the
values they set and ``w_seen`` for the revision the writer last saw; a
conditional UPDATE (``WHERE uuid = :v_uuid AND revision = :w_seen``) is how
stale writes are refused without a read first.  SQLAlchemy caches the
compiled form of each statement; :class:`RawStatement` also keeps the
compiled SQL text for the one statement run through the driver directly.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa

from .tables import atomdetails, chunks, flowdetails, logbooks
from .types import utc_now

__all__ = ["TableStatements", "BOOKS", "FLOWS", "ATOMS", "CHUNKS", "RawStatement",
           "ATOM_COLUMNS", "FLOW_COLUMNS", "BOOK_COLUMNS"]

BOOK_COLUMNS = ("uuid", "name", "meta", "created_at", "updated_at", "revision")
FLOW_COLUMNS = ("uuid", "name", "meta", "state", "parent_uuid", "revision")
ATOM_COLUMNS = ("uuid", "name", "meta", "atom_type", "state", "intention", "results",
                "failure", "revert_results", "revert_failure", "version", "chunked",
                "parent_uuid", "revision")

# Columns a write sets from the record (besides revision, txn and timestamps).
_BOOK_DATA = ("name", "meta", "created_at", "updated_at")
_FLOW_DATA = ("name", "meta", "state", "parent_uuid")
_ATOM_DATA = ("name", "meta", "atom_type", "state", "intention", "results", "failure",
              "revert_results", "revert_failure", "version", "chunked", "parent_uuid")


def _binds(names: tuple[str, ...]) -> dict[str, Any]:
    return {name: sa.bindparam(f"v_{name}") for name in names}


class TableStatements:
    """Insert, conditional update, probe and select statements of one record table."""

    def __init__(self, table: sa.Table, data: tuple[str, ...], columns: tuple[str, ...],
                 server_times: bool) -> None:
        self.table = table
        c = table.c
        values = _binds(data)
        values.update(revision=sa.bindparam("v_revision"), txn=sa.bindparam("v_txn"))
        insert_values = dict(values, uuid=sa.bindparam("v_uuid"))
        update_values = dict(values)
        if server_times:
            insert_values.update(created_at=utc_now(), updated_at=utc_now())
            update_values.update(updated_at=utc_now())
        self.insert = sa.insert(table).values(insert_values)
        self._insert_values = insert_values
        self._if_absent: dict[str, sa.Insert | None] = {}
        where = (c.uuid == sa.bindparam("v_uuid"), c.revision == sa.bindparam("w_seen"))
        self.update = sa.update(table).values(update_values).where(*where)
        #: The same, leaving parent_uuid as it is (the caller does not know it).
        update_values.pop("parent_uuid", None)
        self.update_keep_parent = sa.update(table).values(update_values).where(*where)
        uuids = sa.bindparam("uuids", expanding=True)
        probe_cols = [c.uuid, c.revision, c.txn]
        if "chunked" in c:
            probe_cols.append(c.chunked)
        #: Current revision (and chunk state) of existing rows, locked for this transaction.
        self.probe = sa.select(*probe_cols).where(c.uuid.in_(uuids)).with_for_update()
        #: The same without locks: why a conditional update matched no row.
        self.diagnose = sa.select(*probe_cols).where(c.uuid.in_(uuids))
        self.check_txn = sa.select(c.txn).where(c.uuid == sa.bindparam("uuid"))
        cols = [c[name] for name in columns]
        self.select = sa.select(*cols)
        self.by_uuid = self.select.where(c.uuid == sa.bindparam("uuid"))
        self.exists = sa.select(c.uuid).where(c.uuid == sa.bindparam("uuid"))
        self.delete_all = sa.delete(table)

    def insert_if_absent(self, dialect_name: str) -> sa.Insert | None:
        """INSERT … ON CONFLICT (uuid) DO NOTHING where the database has it (sqlite,
        PostgreSQL): its rowcount says how many rows were new.  None elsewhere
        (MySQL's equivalents also swallow other errors or count differently)."""
        try:
            return self._if_absent[dialect_name]
        except KeyError:
            pass
        if dialect_name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        elif dialect_name == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:
            insert = None
        statement = (insert(self.table).values(self._insert_values)
                     .on_conflict_do_nothing(index_elements=["uuid"])
                     .execution_options(preserve_rowcount=True) if insert else None)
        self._if_absent[dialect_name] = statement
        return statement


BOOKS = TableStatements(logbooks, _BOOK_DATA, BOOK_COLUMNS, server_times=False)
BOOKS.delete = sa.delete(logbooks).where(logbooks.c.uuid == sa.bindparam("uuid"))
BOOKS.all = BOOKS.select.order_by(logbooks.c.created_at, logbooks.c.uuid)

FLOWS = TableStatements(flowdetails, _FLOW_DATA, FLOW_COLUMNS, server_times=True)
FLOWS.by_book = FLOWS.select.where(flowdetails.c.parent_uuid == sa.bindparam("uuid"))

ATOMS = TableStatements(atomdetails, _ATOM_DATA, ATOM_COLUMNS, server_times=True)
ATOMS.by_flow = ATOMS.select.where(atomdetails.c.parent_uuid == sa.bindparam("uuid"))
ATOMS.by_book = (ATOMS.select
                 .join(flowdetails, atomdetails.c.parent_uuid == flowdetails.c.uuid)
                 .where(flowdetails.c.parent_uuid == sa.bindparam("uuid")))

class _Chunks:
    table = chunks
    insert = sa.insert(chunks).values(atom_uuid=sa.bindparam("atom_uuid"),
                                      field=sa.bindparam("field"), seq=sa.bindparam("seq"),
                                      data=sa.bindparam("data"))
    delete = sa.delete(chunks).where(chunks.c.atom_uuid.in_(sa.bindparam("uuids",
                                                                        expanding=True)))
    _cols = sa.select(chunks.c.atom_uuid, chunks.c.field, chunks.c.seq, chunks.c.data)
    _order = (chunks.c.atom_uuid, chunks.c.field, chunks.c.seq)
    by_atom = _cols.where(chunks.c.atom_uuid == sa.bindparam("uuid")).order_by(*_order)
    by_flow = (_cols.join(atomdetails, chunks.c.atom_uuid == atomdetails.c.uuid)
               .where(atomdetails.c.parent_uuid == sa.bindparam("uuid")).order_by(*_order))
    by_book = (_cols.join(atomdetails, chunks.c.atom_uuid == atomdetails.c.uuid)
               .join(flowdetails, atomdetails.c.parent_uuid == flowdetails.c.uuid)
               .where(flowdetails.c.parent_uuid == sa.bindparam("uuid")).order_by(*_order))
    all = _cols.order_by(*_order)
    delete_all = sa.delete(chunks)


CHUNKS = _Chunks


class RawStatement:
    """A statement compiled once for a dialect, to run on the DBAPI cursor directly.

    Used where SQLAlchemy's per-execution work would dominate (a single-row
    UPDATE on sqlite takes ~25 µs; going through ``Connection.execute`` adds
    ~60 µs).  Only statements whose parameters need no type conversion qualify.
    """

    __slots__ = ("sql", "params")

    def __init__(self, statement: sa.ClauseElement, dialect: sa.Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        for name, bind in compiled.binds.items():
            if bind.type.bind_processor(dialect) is not None:
                raise TypeError(f"parameter {name!r} needs conversion; not a raw statement")
        self.sql = compiled.string
        #: values (a dict) → the parameters in the form the driver expects.
        names = tuple(compiled.positiontup or ())
        if not dialect.positional:
            self.params: Callable[[Mapping[str, Any]], Any] = _same
        elif len(names) > 1:
            self.params = operator.itemgetter(*names)
        else:  # itemgetter of one name returns the value, not a 1-tuple
            self.params = lambda values: tuple(values[n] for n in names)


def _same(values: Mapping[str, Any]) -> Mapping[str, Any]:
    return values
