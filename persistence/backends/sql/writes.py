"""Writing a set of rows of one table in one transaction, at the fewest statements.

A row whose record this backend last saved or loaded (it carries the
backend's token) is written with a conditional UPDATE on the revision seen
then: no read first.  Other rows are create-or-overwrite: one locking probe
(``SELECT … FOR UPDATE``) finds which exist, then one executemany UPDATE and
one executemany INSERT.  Chunk rows of large atom values follow their atom.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa

from ... import telemetry
from ...exceptions import Conflict, NotFound, StorageFailure
from ...models import records as models
from . import rawpath
from .errors import AlreadyApplied, Transient
from .session import Session
from .statements import CHUNKS, TableStatements

__all__ = ["RowWrite", "write_rows", "param_bytes", "write_chunks", "check_unique", "batches",
           "BATCH"]

#: Most values bound to one IN (...) list (sqlite allows 32766 parameters).
BATCH = 5000
#: Largest logbook or flow meta sent to MySQL: one statement must stay below
#: the server's packet limit (16 MiB on MariaDB) even if escaping doubles it.
MYSQL_MAX_INLINE = 7 * 1024 * 1024

_KINDS = {"logbooks": "logbook", "flowdetails": "flow detail", "atomdetails": "atom detail"}
_NEVER_SAVED = {
    "flowdetails": "save the logbook that contains it first",
    "atomdetails": "save the flow detail (or logbook) that contains it first",
}


class RowWrite:
    """One record to write: its params, the revision it must be at (None: unknown)."""

    __slots__ = ("detail", "params", "expected", "old_chunked", "chunks", "revision")

    def __init__(self, detail: models._Record, params: dict[str, Any],
                 expected: int | None, old_chunked: str | None = None,
                 chunks: list[dict[str, Any]] | None = None) -> None:
        self.detail = detail
        self.params = params
        self.expected = expected
        self.old_chunked = old_chunked
        self.chunks = chunks or ()
        self.revision: int | None = None


def batches(items: Sequence[Any], size: int = BATCH) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _lookup(conn: sa.Connection, statement: sa.Select, uuids: list[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for batch in batches(uuids):
        for row in conn.execute(statement, {"uuids": list(batch)}):
            found[row[0]] = row
    return found


def _describe(table: str, detail: models._Record) -> str:
    return f"{_KINDS.get(table, table)} {detail.name!r} ({detail.uuid})"


def check_unique(rows: list[RowWrite], kind: str) -> None:
    """ValueError (before any I/O) if one save would write the same record twice."""
    uuids = [r.params["v_uuid"] for r in rows]
    if len(set(uuids)) != len(uuids):
        twice = next(u for u in uuids if uuids.count(u) > 1)
        raise ValueError(f"{kind} {twice} appears twice in one save")


def _check_inline(session: Session, table: str, rows: list[RowWrite]) -> None:
    """Logbook and flow meta is stored inline: on MySQL it must fit in one packet."""
    if table == "atomdetails" or session.dialect.name not in ("mysql", "mariadb"):
        return
    for r in rows:
        meta = r.params.get("v_meta") or ""
        if len(meta) * 4 > MYSQL_MAX_INLINE and len(meta.encode("utf-8")) > MYSQL_MAX_INLINE:
            raise StorageFailure(
                f"the meta of {_describe(table, r.detail)} is {len(meta.encode('utf-8'))} "
                f"bytes: MySQL takes at most {MYSQL_MAX_INLINE} in a {_KINDS[table]} "
                f"(keep large values in atom results, which may be of any size)")


def param_bytes(params: dict[str, Any]) -> int:
    """The size of a row's text and binary values (what spans report as bytes)."""
    return sum(len(v) for k, v in params.items()
               if k[:2] == "v_" and isinstance(v, (str, bytes)))


def write_rows(session: Session, conn: sa.Connection, st: TableStatements,
               rows: list[RowWrite], txn: str, create: bool, keep_parent: bool = False) -> None:
    """Write ``rows``; set each one's new ``revision``.  Raises Conflict or NotFound
    (the caller's transaction is then rolled back), AlreadyApplied if ``txn`` already
    wrote one of them.  ``keep_parent``: existing rows keep their parent_uuid."""
    table = st.table.name
    _check_inline(session, table, rows)
    if telemetry.measuring():
        telemetry.add_bytes(sum(param_bytes(r.params) for r in rows))
    inserts: list[RowWrite] = []
    unknown = [r for r in rows if r.expected is None]
    if unknown and create:
        unknown = _insert_new(session, conn, st, unknown, txn)
    if unknown:
        found = _lookup(conn, st.probe, [r.params["v_uuid"] for r in unknown])
        for r in unknown:
            hit = found.get(r.params["v_uuid"])
            if hit is None:
                if not create:
                    raise NotFound(f"{_describe(table, r.detail)} was never saved: "
                                   f"{_NEVER_SAVED.get(table, 'save it first')}")
                inserts.append(r)
                continue
            if hit.txn == txn:
                raise AlreadyApplied()
            r.expected = hit.revision
            r.old_chunked = hit.chunked if len(hit) > 3 else None
    updates = [r for r in rows if r.expected is not None]
    if updates:
        for r in updates:
            r.revision = r.params["v_revision"] = r.expected + 1
            r.params["w_seen"] = r.expected
        update = st.update_keep_parent if keep_parent else st.update
        matched = rawpath.executemany(session, conn, update, [r.params for r in updates])
        if matched != len(updates):
            _diagnose(conn, st, updates, txn, create)
    if inserts:
        for r in inserts:
            r.revision = r.params["v_revision"] = 1
        try:
            rawpath.executemany(session, conn, st.insert, [r.params for r in inserts])
        except (sa.exc.IntegrityError, session.dialect.loaded_dbapi.IntegrityError) as err:
            # Another writer created one of these rows after our probe (the probe
            # cannot lock a row that does not exist yet): try again, as an update.
            raise Transient(err) from err


def _insert_new(session: Session, conn: sa.Connection, st: TableStatements,
                rows: list[RowWrite], txn: str) -> list[RowWrite]:
    """Insert the rows that do not exist yet, without a probe first, where the
    database can; return the rows still to be probed (all of them elsewhere).

    Rows that existed get the revision they are at as ``expected``, for the
    caller's conditional update.  A new book is then just its bulk inserts.
    """
    statement = st.insert_if_absent(session.dialect.name)
    if statement is None:
        return rows  # probe first
    for r in rows:
        r.params["v_revision"] = 1
    inserted = rawpath.executemany(session, conn, statement, [r.params for r in rows])
    if inserted != len(rows):
        found = _lookup(conn, st.probe, [r.params["v_uuid"] for r in rows])
        for r in rows:
            hit = found.get(r.params["v_uuid"])
            if hit is None:  # deleted by another writer since it blocked our insert
                raise Transient(StorageFailure(f"{st.table.name} {r.params['v_uuid']} was "
                                               f"deleted while it was being saved"))
            if hit.txn != txn:  # it existed: update it at the revision it is at
                r.expected = hit.revision
                r.old_chunked = hit.chunked if len(hit) > 3 else None
            elif hit.revision != 1:  # an earlier attempt of this write updated it
                raise AlreadyApplied()
    for r in rows:
        if r.expected is None:
            r.revision = 1  # inserted just now
    return []


def _diagnose(conn: sa.Connection, st: TableStatements, updates: list[RowWrite],
              txn: str, create: bool) -> None:
    """Raise why a conditional UPDATE matched fewer rows than it should have."""
    table = st.table.name
    found = _lookup(conn, st.diagnose, [r.params["v_uuid"] for r in updates])
    for r in updates:
        hit = found.get(r.params["v_uuid"])
        if hit is None and create:  # deleted since we read it: a conflict (revision 0)
            raise conflict(table, r.detail, r.expected, 0)
        if hit is None:
            raise NotFound(f"{_describe(table, r.detail)} was never saved (or was deleted): "
                           f"{_NEVER_SAVED.get(table, 'save it first')}")
        if hit.txn == txn:
            raise AlreadyApplied()
    for r in updates:
        hit = found[r.params["v_uuid"]]
        if hit.revision != r.expected:
            raise conflict(table, r.detail, r.expected, hit.revision)
    raise StorageFailure(f"a conditional update of {table} matched fewer rows than "
                         f"expected, yet every row is at the expected revision")


def conflict(table: str, detail: models._Record, expected: int, found: int) -> Conflict:
    what = _describe(table, detail)
    change = "deleted" if found == 0 else "changed"
    return Conflict(f"{what} was {change} by another writer: expected revision {expected}, "
                    f"found {found}; reload it and apply the change again",
                    record=f"{table} {detail.uuid}", expected=expected, found=found)


def write_chunks(session: Session, conn: sa.Connection, atoms: list[RowWrite]) -> None:
    """Replace the chunk rows of ``atoms`` that had or now have large values."""
    stale = [r.params["v_uuid"] for r in atoms if r.old_chunked]
    for batch in batches(stale):
        conn.execute(CHUNKS.delete, {"uuids": list(batch)})
    new = [chunk for r in atoms for chunk in r.chunks]
    if new:
        rawpath.executemany(session, conn, CHUNKS.insert, new)
