"""History, snapshots, summaries, listings, forks and purge of the SQL backend, in SQL.

History rows are inserted by the write they record, in its transaction: one
executemany INSERT for a save, and for the single-atom hot path an
``INSERT … SELECT`` from the row just updated (which knows the atom's flow).
Listings and counts are single queries on indexed columns that never read
atom rows; a summary groups the flow's atom rows in the database.  Purge
deletes at most ``batch_size`` logbooks per transaction (children cascade).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from ...exceptions import NotFound
from ...models import history, states
from ...models import records as models
from ...models.bookkeeping import bookkeeping
from .. import shared as lifecycle
from ..shared import check_component
from . import codec
from .statements import ATOMS, BOOK_COLUMNS, FLOW_COLUMNS, FLOWS
from .tables import atomdetails, flowdetails, logbooks, snapshot_chunks, snapshots
from .tables import history as history_table
from .types import ID
from .writes import RowWrite, batches, write_chunks, write_rows

__all__ = ["SQLLifecycle", "INSERT_HISTORY", "HISTORY_FROM_ATOM", "UPDATE_LOGGED_PG",
           "entry_params"]

_H = history_table.c
_COLUMNS = ("uuid", "kind", "name", "flow_uuid", "old_state", "new_state", "intention",
            "revision", "at_ns", "owner", "event")

#: One history row per parameter set (``h_<column>``).
INSERT_HISTORY = sa.insert(history_table).values(
    {name: sa.bindparam(f"h_{name}") for name in _COLUMNS})
#: The history row of an atom row just updated (its flow, state, intention and
#: revision read from the row); binds ``v_uuid``, ``h_old_state``, ``h_at_ns``,
#: ``h_owner`` and ``h_event``.
HISTORY_FROM_ATOM = sa.insert(history_table).from_select(list(_COLUMNS), sa.select(
    atomdetails.c.uuid, sa.literal_column("'atom'"), atomdetails.c.name,
    atomdetails.c.parent_uuid, sa.bindparam("h_old_state", type_=ID), atomdetails.c.state,
    atomdetails.c.intention, atomdetails.c.revision,
    sa.bindparam("h_at_ns", type_=sa.BigInteger), sa.bindparam("h_owner", type_=ID),
    sa.bindparam("h_event", type_=sa.String(16)),
).where(atomdetails.c.uuid == sa.bindparam("v_uuid")))

#: PostgreSQL: the hot-path UPDATE and its history row in one statement (one round
#: trip): the UPDATE in a CTE, RETURNING what the history row needs.
_UPDATED = ATOMS.update_keep_parent.returning(
    atomdetails.c.uuid, atomdetails.c.name, atomdetails.c.parent_uuid, atomdetails.c.state,
    atomdetails.c.intention, atomdetails.c.revision).cte("updated")
UPDATE_LOGGED_PG = sa.insert(history_table).from_select(list(_COLUMNS), sa.select(
    _UPDATED.c.uuid, sa.literal_column("'atom'"), _UPDATED.c.name, _UPDATED.c.parent_uuid,
    sa.bindparam("h_old_state", type_=ID), _UPDATED.c.state, _UPDATED.c.intention,
    _UPDATED.c.revision, sa.bindparam("h_at_ns", type_=sa.BigInteger),
    sa.bindparam("h_owner", type_=ID), sa.bindparam("h_event", type_=sa.String(16))))

_SELECT_HISTORY = sa.select(*(_H[name] for name in _COLUMNS))
_BOOK_COLS = [logbooks.c[name] for name in BOOK_COLUMNS]
_FLOW_COLS = [flowdetails.c[name] for name in FLOW_COLUMNS]
_FLOW_OF_ATOM = sa.select(atomdetails.c.parent_uuid).where(
    atomdetails.c.uuid == sa.bindparam("uuid")).scalar_subquery()
_BOOK_OF_FLOW = sa.select(flowdetails.c.parent_uuid).where(
    flowdetails.c.uuid == sa.bindparam("uuid"))
_SNAPSHOT_COLS = (snapshots.c.id, snapshots.c.flow_uuid, snapshots.c.label,
                  snapshots.c.created_ns, snapshots.c.atoms)
_HAS_FAILURE = sa.case((sa.or_(atomdetails.c.failure.is_not(None),
                               atomdetails.c.revert_failure.is_not(None),
                               atomdetails.c.chunked.like("%failure%")), 1), else_=0)


def _old_state(detail: models._Record, ours: bool) -> str | None:
    return bookkeeping(detail).stored_state if ours else None


def entry_params(detail: models._Record, kind: str, flow_uuid: str, revision: int | None,
                 old_state: str | None, owner: str | None,
                 event: str = history.WRITE) -> dict[str, Any]:
    return {"h_uuid": detail.uuid, "h_kind": kind, "h_name": detail.name,
            "h_flow_uuid": flow_uuid, "h_old_state": old_state, "h_new_state": detail.state,
            "h_intention": getattr(detail, "intention", None) if kind == history.ATOM
            else None, "h_revision": revision, "h_at_ns": history.now_ns(),
            "h_owner": owner, "h_event": event}


def _entry(row: Any) -> history.HistoryEntry:
    (uuid, kind, name, flow_uuid, old, new, intention, revision, at_ns, owner, event) = row
    return history.HistoryEntry(uuid=uuid, kind=kind, name=name, flow_uuid=flow_uuid,
                                old_state=old, new_state=new, intention=intention,
                                revision=revision, at=history.from_ns(at_ns), owner=owner,
                                event=event)


def _snapshot(row: Any, fd: models.FlowDetail | None = None) -> history.Snapshot:
    sid, flow_uuid, label, created_ns, atoms = row
    return history.Snapshot(sid, flow_uuid, label, history.from_ns(created_ns), atoms, fd)


class SQLLifecycle:
    """Mixin of :class:`~persistence.backends.sql.connection.SQLConnection`."""

    # -- history written with the records -------------------------------------------
    def _log_rows(self, conn: sa.Connection, rows: list[tuple[RowWrite, str, str, bool]],
                  event: str = history.WRITE) -> None:
        """Insert the history rows of ``rows``: (row written, kind, flow uuid, was ours)."""
        if not rows or not self._backend.history:
            return
        owner = self.owner
        params = [entry_params(r.detail, kind, flow, r.revision, _old_state(r.detail, ours),
                               owner, event) for r, kind, flow, ours in rows]
        self._session.executemany(conn, INSERT_HISTORY, params)

    def _atom_log(self, atom_detail: models.AtomDetail, ours: bool) -> dict[str, Any]:
        """Parameters of :data:`HISTORY_FROM_ATOM` for a write of ``atom_detail``."""
        return {"v_uuid": atom_detail.uuid, "h_old_state": _old_state(atom_detail, ours),
                "h_at_ns": history.now_ns(), "h_owner": self.owner,
                "h_event": history.WRITE}

    # -- history ----------------------------------------------------------------------
    def get_history(self, uuid: str | None = None, flow_uuid: str | None = None,
                    since: datetime.datetime | None = None,
                    limit: int | None = None) -> list[history.HistoryEntry]:
        limit, _ = lifecycle.check_page(limit, None)
        since = lifecycle.utc(since, "since")
        query, params = _SELECT_HISTORY, {}
        if flow_uuid is not None:
            query = query.where(_H.flow_uuid == sa.bindparam("flow"))
            params["flow"] = flow_uuid
        if uuid is not None:
            query = query.where(_H.uuid == sa.bindparam("uuid"))
            params["uuid"] = uuid
            if flow_uuid is None:   # through the flow index: the record's own flow
                query = query.where(_H.flow_uuid == sa.func.coalesce(
                    _FLOW_OF_ATOM, sa.bindparam("uuid")))
        if since is not None:
            query = query.where(_H.at_ns >= history.to_ns(since))
        query = query.order_by(_H.id)
        if limit is not None:
            query = query.limit(limit)

        def body(conn: sa.Connection) -> list[history.HistoryEntry]:
            return [_entry(row) for row in conn.execute(query, params)]
        return self._session.read("read history", body, consistent=False)

    # -- snapshots ----------------------------------------------------------------------
    def snapshot_flow(self, flow_uuid: str, label: str | None = None) -> history.Snapshot:
        if label is not None and not isinstance(label, str):
            raise TypeError(f"a snapshot label must be a string, not {type(label).__name__}")
        fd = self.get_flow_details(flow_uuid)
        sid = history.snapshot_id(flow_uuid)
        created = history.now_ns()
        data = history.snapshot_body(fd)
        size = self._backend.chunk_size
        parts = [{"snapshot_id": sid, "seq": i, "data": data[start:start + size]}
                 for i, start in enumerate(range(0, len(data), size))] or [
            {"snapshot_id": sid, "seq": 0, "data": b""}]
        exists = sa.select(snapshots.c.id).where(snapshots.c.id == sid)

        def op(conn: sa.Connection) -> None:
            self._begin(conn)
            if conn.execute(exists).first() is None:   # a retry after a lost COMMIT
                conn.execute(sa.insert(snapshots), {"id": sid, "flow_uuid": flow_uuid,
                                                    "label": label, "created_ns": created,
                                                    "atoms": len(fd)})
                for part in parts:
                    conn.execute(sa.insert(snapshot_chunks), part)
            conn.commit()

        self._session.run(f"snapshot flow detail {flow_uuid}", op)
        return history.Snapshot(sid, flow_uuid, label, history.from_ns(created), len(fd), fd)

    def _begin(self, conn: sa.Connection) -> None:
        if self._session.sqlite:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    def list_snapshots(self, flow_uuid: str | None = None) -> list[history.Snapshot]:
        query = sa.select(*_SNAPSHOT_COLS)
        if flow_uuid is not None:
            query = query.where(snapshots.c.flow_uuid == flow_uuid)
        query = query.order_by(snapshots.c.created_ns, snapshots.c.id)

        def body(conn: sa.Connection) -> list[history.Snapshot]:
            return [_snapshot(row) for row in conn.execute(query)]
        return self._session.read("list snapshots", body, consistent=False)

    def get_snapshot(self, snapshot_id: str) -> history.Snapshot:
        if not isinstance(snapshot_id, str):
            raise NotFound(f"no snapshot {snapshot_id!r}")
        head = sa.select(*_SNAPSHOT_COLS).where(snapshots.c.id == snapshot_id)
        parts = (sa.select(snapshot_chunks.c.data)
                 .where(snapshot_chunks.c.snapshot_id == snapshot_id)
                 .order_by(snapshot_chunks.c.seq))

        def body(conn: sa.Connection) -> tuple[Any, bytes]:
            row = conn.execute(head).first()
            if row is None:
                raise NotFound(f"no snapshot {snapshot_id!r}")
            return row, b"".join(bytes(r[0]) for r in conn.execute(parts))

        row, data = self._session.read(f"load snapshot {snapshot_id}", body)
        fd = history.load_snapshot_body(data, f"table snapshot_chunks, snapshot {snapshot_id}")
        return _snapshot(row, fd)

    def restore_flow(self, snapshot_id: str) -> models.FlowDetail:
        snap = self.get_snapshot(snapshot_id)
        saved = snap.flow
        current = self.get_flow_details(snap.flow_uuid)
        for ad in saved:   # conditional writes over what was just read
            now = current.find(ad.uuid)
            bk = bookkeeping(ad)
            if now is not None:
                bk.mark_loaded(self._token, now.revision, now.state)
                bk.set_extra(codec.CHUNKED, bookkeeping(now).extra(codec.CHUNKED))
            else:
                bk.forget_store()
        fd = current.copy(retain_contents=False)
        fd.__dict__.update(name=saved.name, state=saved.state)
        fd.meta = dict(saved.meta)
        extra = [ad.uuid for ad in current if saved.find(ad.uuid) is None]
        self._write_flow_and_atoms(fd, list(saved), None, history.RESTORE, extra)
        return self.get_flow_details(saved.uuid)

    def _write_flow_and_atoms(self, fd: models.FlowDetail, atoms: list[models.AtomDetail],
                              book_uuid: str | None, event: str,
                              delete_atoms: list[str] = ()) -> None:
        """One transaction: write ``fd`` (create it if ``book_uuid``) and ``atoms``,
        delete ``delete_atoms``, and log every write as ``event``."""
        flow_row = self._row(fd, _flow_params(fd, book_uuid))
        atom_rows = [self._atom_row(ad, fd.uuid, "") for ad in atoms]
        ours = {id(r): self._ours(r.detail) for r in [flow_row, *atom_rows]}
        create = book_uuid is not None
        delete = sa.delete(atomdetails).where(atomdetails.c.uuid.in_(
            sa.bindparam("uuids", expanding=True)))

        def body(conn: sa.Connection, txn: str) -> None:
            self._retxn([flow_row, *atom_rows], txn)
            write_rows(self._session, conn, FLOWS, [flow_row], txn, create=create,
                       keep_parent=not create)
            for batch in batches(list(delete_atoms)):
                conn.execute(delete, {"uuids": list(batch)})
            if atom_rows:
                write_rows(self._session, conn, ATOMS, atom_rows, txn, create=True)
                write_chunks(self._session, conn, atom_rows)
            self._log_rows(conn, [(flow_row, history.FLOW, fd.uuid, ours[id(flow_row)])]
                           + [(r, history.ATOM, fd.uuid, ours[id(r)]) for r in atom_rows],
                           event)

        self._session.write(f"{event} flow detail {fd.name!r} ({fd.uuid})",
                            (FLOWS, fd.uuid), body)
        self._mark([flow_row, *atom_rows])

    # -- fork ------------------------------------------------------------------------
    def fork_flow(self, flow_uuid: str, from_atoms: Iterable[str] = (),
                  name: str | None = None) -> models.FlowDetail:
        source = self.get_flow_details(flow_uuid)
        fork = lifecycle.fork_detail(source, from_atoms, name)

        def body(conn: sa.Connection) -> str:
            row = conn.execute(_BOOK_OF_FLOW, {"uuid": flow_uuid}).first()
            if row is None:
                raise NotFound(f"no flow detail {flow_uuid}")
            return row[0]

        book_uuid = self._session.read(f"find the logbook of flow detail {flow_uuid}", body,
                                       consistent=False)
        self._write_flow_and_atoms(fork, list(fork), book_uuid, history.FORK)
        return fork

    # -- summaries and counts ----------------------------------------------------------
    def summary(self, flow_uuid: str) -> lifecycle.FlowSummary:
        check_component("flow detail uuid", flow_uuid)
        flow = sa.select(flowdetails.c.name, flowdetails.c.state, flowdetails.c.updated_at) \
            .where(flowdetails.c.uuid == flow_uuid)
        groups = (sa.select(atomdetails.c.state, sa.func.count(), sa.func.sum(_HAS_FAILURE),
                            sa.func.max(atomdetails.c.updated_at))
                  .where(atomdetails.c.parent_uuid == flow_uuid)
                  .group_by(atomdetails.c.state))

        def body(conn: sa.Connection) -> lifecycle.FlowSummary:
            head = conn.execute(flow).first()
            if head is None:
                raise NotFound(f"no flow detail {flow_uuid}")
            name, state, last = head
            by_state: dict[str, int] = {}
            failures = 0
            for atom_state, count, failed, changed in conn.execute(groups):
                key = atom_state or states.PENDING
                by_state[key] = by_state.get(key, 0) + count
                failures += int(failed or 0)
                if changed is not None and (last is None or changed > last):
                    last = changed
            return lifecycle.FlowSummary(flow_uuid, name, state, sum(by_state.values()),
                                         by_state, failures, last)
        return self._session.read(f"summarize flow detail {flow_uuid}", body)

    def count_atoms(self, flow_uuid: str, states: str | Iterable[str] | None = None) -> int:
        check_component("flow detail uuid", flow_uuid)
        wanted = lifecycle.check_states(states, _ATOM_STATES, "atom state")
        count = sa.select(sa.func.count()).where(atomdetails.c.parent_uuid == flow_uuid)
        if wanted is not None:
            count = count.where(sa.func.coalesce(atomdetails.c.state, "PENDING").in_(wanted))
        query = sa.select(count.scalar_subquery()).where(flowdetails.c.uuid == flow_uuid)

        def body(conn: sa.Connection) -> int:
            row = conn.execute(query).first()
            if row is None:
                raise NotFound(f"no flow detail {flow_uuid}")
            return row[0]
        return self._session.read(f"count the atoms of flow detail {flow_uuid}", body,
                                  consistent=False)

    # -- listings --------------------------------------------------------------------------
    @staticmethod
    def _book_filters(query: sa.Select, name: str | None, since: Any, before: Any) -> sa.Select:
        since = lifecycle.utc(since, "updated_since")
        before = lifecycle.utc(before, "updated_before")
        if name is not None:
            query = query.where(logbooks.c.name == name)
        if since is not None:
            query = query.where(logbooks.c.updated_at >= since)
        if before is not None:
            query = query.where(logbooks.c.updated_at < before)
        return query

    def list_logbooks(self, name: str | None = None,
                      updated_since: datetime.datetime | None = None,
                      updated_before: datetime.datetime | None = None,
                      limit: int | None = None, offset: int | None = None
                      ) -> list[models.LogBook]:
        limit, offset = lifecycle.check_page(limit, offset)
        query = self._book_filters(sa.select(*_BOOK_COLS), name, updated_since, updated_before)
        query = query.order_by(logbooks.c.updated_at.desc(), logbooks.c.uuid.desc())
        query = query.limit(limit).offset(offset or None)

        def body(conn: sa.Connection) -> list[models.LogBook]:
            return [self._book(row) for row in conn.execute(query)]
        return self._session.read("list logbooks", body, consistent=False)

    def count_logbooks(self, name: str | None = None,
                       updated_since: datetime.datetime | None = None,
                       updated_before: datetime.datetime | None = None) -> int:
        query = self._book_filters(sa.select(sa.func.count()).select_from(logbooks), name,
                                   updated_since, updated_before)
        return self._session.read("count logbooks",
                                  lambda conn: conn.execute(query).scalar(), consistent=False)

    def list_flow_details(self, state: str | Iterable[str] | None = None,
                          logbook: str | None = None, limit: int | None = None,
                          offset: int | None = None) -> list[models.FlowDetail]:
        limit, offset = lifecycle.check_page(limit, offset)
        wanted = lifecycle.check_states(state, _FLOW_STATES, "flow state")
        query = sa.select(*_FLOW_COLS)
        if wanted is not None:
            query = query.where(flowdetails.c.state.in_(wanted))
        if logbook is not None:
            check_component("logbook uuid", logbook)
            query = query.where(flowdetails.c.parent_uuid == logbook)
        query = (query.order_by(flowdetails.c.updated_at.desc(), flowdetails.c.uuid.desc())
                 .limit(limit).offset(offset or None))
        book_exists = sa.select(logbooks.c.uuid).where(logbooks.c.uuid == logbook)

        def body(conn: sa.Connection) -> list[models.FlowDetail]:
            if logbook is not None and conn.execute(book_exists).first() is None:
                raise NotFound(f"no logbook {logbook}")
            return self._flows(conn.execute(query).all())
        return self._session.read("list flow details", body, consistent=logbook is not None)

    # -- retention -------------------------------------------------------------------------
    # Primitives of lifecycle.purge in SQL: what qualifies is one WHERE clause.
    def _purge_candidates(self, cutoff: datetime.datetime,
                          wanted: tuple[str, ...]) -> list[str]:
        query = (sa.select(logbooks.c.uuid).where(_purge_eligible(cutoff, wanted))
                 .order_by(logbooks.c.updated_at, logbooks.c.uuid))
        return self._session.read("find the logbooks to purge",
                                  lambda conn: list(conn.execute(query).scalars()),
                                  consistent=False)

    def _purge_batch(self, book_uuids: list[str], cutoff: datetime.datetime,
                     wanted: tuple[str, ...], dry_run: bool) -> list[tuple[str, int, int]]:
        eligible = _purge_eligible(cutoff, wanted)
        uuids = sa.bindparam("uuids", expanding=True)
        still = sa.select(logbooks.c.uuid).where(logbooks.c.uuid.in_(uuids), eligible)
        counts = (sa.select(flowdetails.c.parent_uuid,
                            sa.func.count(sa.distinct(flowdetails.c.uuid)),
                            sa.func.count(atomdetails.c.uuid))
                  .outerjoin(atomdetails, atomdetails.c.parent_uuid == flowdetails.c.uuid)
                  .where(flowdetails.c.parent_uuid.in_(uuids))
                  .group_by(flowdetails.c.parent_uuid))
        delete = sa.delete(logbooks).where(logbooks.c.uuid.in_(uuids), eligible)
        left = sa.select(logbooks.c.uuid).where(logbooks.c.uuid.in_(uuids))

        def op(conn: sa.Connection) -> tuple[list[str], dict[str, tuple[int, int]]]:
            if not dry_run:
                self._begin(conn)
            try:
                found = list(conn.execute(still, {"uuids": book_uuids}).scalars())
                sizes = {book: (flows, atoms) for book, flows, atoms in
                         conn.execute(counts, {"uuids": found})} if found else {}
                if found and not dry_run:
                    conn.execute(delete, {"uuids": found})
                    kept = set(conn.execute(left, {"uuids": found}).scalars())
                    found = [uuid for uuid in found if uuid not in kept]
            except BaseException:
                self._session.rollback()
                raise
            if dry_run:
                conn.rollback()
            else:
                conn.commit()
            return found, sizes

        found, sizes = self._session.run("purge logbooks", op)
        order = {uuid: i for i, uuid in enumerate(book_uuids)}
        return [(uuid, *sizes.get(uuid, (0, 0))) for uuid in sorted(found, key=order.get)]


def _purge_eligible(cutoff: datetime.datetime, wanted: tuple[str, ...]) -> Any:
    """Logbooks saved before ``cutoff`` whose flow details are all in ``wanted`` and
    last written before it."""
    unfinished = sa.select(flowdetails.c.uuid).where(
        flowdetails.c.parent_uuid == logbooks.c.uuid,
        sa.or_(flowdetails.c.state.is_(None), flowdetails.c.state.not_in(wanted),
               flowdetails.c.updated_at >= cutoff))
    return sa.and_(logbooks.c.updated_at < cutoff, ~sa.exists(unfinished))


_ATOM_STATES = states.ATOM_STATES
_FLOW_STATES = states.FLOW_STATES


def _flow_params(fd: models.FlowDetail, book_uuid: str | None) -> dict[str, Any]:
    return codec.flow_params(fd, book_uuid, "")

