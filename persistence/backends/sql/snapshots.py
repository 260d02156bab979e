"""Snapshots, restores and forks of a flow detail in SQL.

A snapshot is a header row and its encoded flow in ``snapshot_chunks`` rows.
A restore and a fork each write a flow detail and its atoms in one
transaction (:meth:`SQLSnapshots._write_flow_and_atoms`), every write logged
as a ``restore`` or ``fork`` history entry.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from ...exceptions import NotFound
from ...models import history
from ...models import records as models
from ...models.bookkeeping import bookkeeping
from .. import shared as lifecycle
from . import codec
from .session import Session
from .statements import FLOWS
from .tables import atomdetails, flowdetails, snapshot_chunks, snapshots
from .writes import batches, write_rows

__all__ = ["SQLSnapshots"]

_BOOK_OF_FLOW = sa.select(flowdetails.c.parent_uuid).where(
    flowdetails.c.uuid == sa.bindparam("uuid"))
_SNAPSHOT_COLS = (snapshots.c.id, snapshots.c.flow_uuid, snapshots.c.label,
                  snapshots.c.created_ns, snapshots.c.atoms)


def _snapshot(row: Any, fd: models.FlowDetail | None = None) -> history.Snapshot:
    sid, flow_uuid, label, created_ns, atoms = row
    return history.Snapshot(sid, flow_uuid, label, history.from_ns(created_ns), atoms, fd)


class SQLSnapshots:
    """Mixin of :class:`~persistence.backends.sql.connection.SQLConnection`: snapshots,
    restores and forks."""

    _session: Session
    _backend: Any
    _token: object

    # -- snapshots ----------------------------------------------------------------------
    def snapshot_flow(self, flow_uuid: str, label: str | None = None) -> history.Snapshot:
        lifecycle.check_label(label)
        fd = self.get_flow_details(flow_uuid)
        sid = history.snapshot_id(flow_uuid)
        created = history.now_ns()
        data = history.snapshot_body(fd, self._backend.payload)
        size = self._backend.chunk_size
        parts = [{"snapshot_id": sid, "seq": i, "data": data[start:start + size]}
                 for i, start in enumerate(range(0, len(data), size))] or [
            {"snapshot_id": sid, "seq": 0, "data": b""}]
        exists = sa.select(snapshots.c.id).where(snapshots.c.id == sid)

        def op(conn: sa.Connection) -> None:
            self._session.begin_write(conn)
            if conn.execute(exists).first() is None:   # a retry after a lost COMMIT
                conn.execute(sa.insert(snapshots), {"id": sid, "flow_uuid": flow_uuid,
                                                    "label": label, "created_ns": created,
                                                    "atoms": len(fd)})
                for part in parts:
                    conn.execute(sa.insert(snapshot_chunks), part)
            conn.commit()

        self._session.run(f"snapshot flow detail {flow_uuid}", op)
        return history.Snapshot(sid, flow_uuid, label, history.from_ns(created), len(fd), fd)

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
        fd = history.load_snapshot_body(data, f"table snapshot_chunks, snapshot {snapshot_id}",
                                        self._backend.payload)
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
        flow_row = self._row(fd, codec.flow_params(fd, book_uuid, "", self._backend.payload))
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
            self._write_atom_rows(conn, atom_rows, txn)
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
