"""Saving, updating and destroying records over the path primitives.

Saves go bottom-up (atoms, then their flow and its links, then the logbook)
in one transaction, each record conditional on the revision this store gave
it, with its history entry when the backend keeps history.
"""

from __future__ import annotations

import datetime
from typing import Any

from ...exceptions import NotFound
from ...models import encoding as serialization
from ...models import history
from ...models import records as models
from ...models.bookkeeping import atoms_to_check, bookkeeping, flow_written
from .primitives import PathPrimitives, links

__all__ = ["PathWrites"]


class PathWrites(PathPrimitives):
    """The write half of the Connection API."""

    # Provided by PathLifecycle (history entries, snapshot ids) and Connection.
    _append: Any
    _snapshot_ids: Any
    owner: str | None

    def _write_atom(self, ad: models.AtomDetail, txn: Any, create: bool,
                    flow_uuid: str | None = None, event: str = history.WRITE) -> Any:
        path = self._atom(ad.uuid)
        data = serialization.encode_record(
            serialization.atom_record(ad, None, codec=self._backend.payload), ad)
        revision = self._write(path, data, txn, create=create,
                               expected_revision=self._expected(ad))
        if self._backend.history:
            self._log(path, ad, history.ATOM, flow_uuid, revision, txn, event)
        return revision

    def _log(self, path: str, detail: models._Record, kind: str, flow_uuid: str | None,
             revision: Any, txn: Any, event: str = history.WRITE) -> None:
        """Append the history entry of a write of ``detail`` at ``path`` to ``txn``."""
        old = bookkeeping(detail).stored_state_in(self._backend.token)
        self._append(path, history.entry_fields(detail, kind, flow_uuid, old, self.owner,
                                                event), revision, txn)

    def _write_flow(self, fd: models.FlowDetail, txn: Any, create: bool,
                    only_changed: bool, event: str = history.WRITE
                    ) -> list[tuple[models._Record, int]]:
        """Write a flow's atoms (bottom-up), the flow and its links; return what to mark."""
        flow_path = self._flow(fd.uuid)
        written, new_atoms = [], []
        # Only the atoms the flow knows may need it (all on its first write here).
        for ad in atoms_to_check(fd, self._backend.token) if only_changed else fd:
            if self._is_ours(ad):
                if only_changed and not ad.changed:
                    continue
                written.append((ad, self._write_atom(ad, txn, False, fd.uuid, event)))
            else:
                written.append((ad, self._write_atom(ad, txn, True, fd.uuid, event)))
                new_atoms.append(ad.uuid)
        record = serialization.flow_record(fd, None, codec=self._backend.payload)
        record["updated_at"] = datetime.datetime.now(datetime.timezone.utc).isoformat()
        revision = self._write(flow_path, serialization.encode_record(record, fd), txn,
                               create=create, expected_revision=self._expected(fd))
        if self._backend.history:
            self._log(flow_path, fd, history.FLOW, fd.uuid, revision, txn, event)
        written.append((fd, revision))
        for atom_uuid in new_atoms:
            self._link(self._join(flow_path, atom_uuid), txn)
        return written

    def save_logbook(self, book: models.LogBook) -> models.LogBook:
        """Save ``book`` with its flows and their changed atoms, in one transaction."""
        book_path = self._book(book.uuid)
        self._ensure_layout()
        book.updated_at = datetime.datetime.now(datetime.timezone.utc)
        with self._transaction() as txn:
            written = []
            new_flows = [fd for fd in book if not self._is_ours(fd)]
            for fd in book:
                written.extend(self._write_flow(fd, txn, create=True, only_changed=True))
            data = serialization.encode_record(
                serialization.logbook_record(book, codec=self._backend.payload), book)
            written.append((book, self._write(book_path, data, txn, create=True,
                                              expected_revision=self._expected(book))))
            for fd in new_flows:
                self._link(self._join(book_path, fd.uuid), txn)
        for detail, revision in written:
            self._mark(detail, revision)
        for fd in book:
            flow_written(fd, self._backend.token)
        return book

    def update_flow_details(self, flow_detail: models.FlowDetail,
                            ignore_missing: bool = False) -> models.FlowDetail:
        """Write a flow detail and its changed atoms; ``ignore_missing=True`` stores
        one that was never saved instead of raising NotFound (as TaskFlow's)."""
        path = self._flow(flow_detail.uuid)
        if ignore_missing:
            self._ensure_layout()
        with self._transaction() as txn:
            missing = not self._is_ours(flow_detail) and not self._exists(path)
            if missing and not ignore_missing:
                raise NotFound(f"flow detail {flow_detail.uuid} was never saved: "
                               f"save the logbook that contains it first")
            written = self._write_flow(flow_detail, txn, create=missing, only_changed=True)
        for detail, revision in written:
            self._mark(detail, revision)
        flow_written(flow_detail, self._backend.token)
        return flow_detail

    def update_atom_details(self, atom_detail: models.AtomDetail,
                            ignore_missing: bool = False) -> models.AtomDetail:
        """Write one atom detail (revision-checked); ``ignore_missing=True`` stores one
        that was never saved instead of raising NotFound (as TaskFlow's)."""
        return self._update_atom(atom_detail, ignore_missing, True)

    def update_atom_details_nowait(self, atom_detail: models.AtomDetail
                                   ) -> models.AtomDetail:
        """Write one atom detail without waiting for it to be durable, where the store
        can (``writes_nowait``); see ``Connection.update_atom_details_nowait``."""
        return self._update_atom(atom_detail, False, not self.writes_nowait)

    def _update_atom(self, atom_detail: models.AtomDetail, ignore_missing: bool,
                     durable: bool) -> models.AtomDetail:
        # The hot path (one per checkpoint): the bookkeeping and the backend are
        # looked up once, where _is_ours, _expected and _log would each ask.
        backend = self._backend
        token = backend.token
        bk = bookkeeping(atom_detail)
        if bk.token is not token:
            if ignore_missing:
                self._ensure_layout()
                with self._transaction() as txn:
                    revision = self._write_atom(atom_detail, txn, True)
                self._mark(atom_detail, revision)
                return atom_detail
            expected = None
        else:
            expected = bk.revision
        data = serialization.encode_record(
            serialization.atom_record(atom_detail, None, codec=backend.payload), atom_detail)
        path = self._atom(atom_detail.uuid)
        # Passed only when False: stores that never set ``writes_nowait`` (memory, a
        # third party's) keep their own _write_single* signatures.
        nowait = {} if durable else {"durable": False}
        try:
            if backend.history:
                owner, append = self.owner, self._append

                def log(revision: Any, txn: Any) -> None:
                    # Asked when the entry is made (a store may make it twice).
                    old = bk.stored_state if bk.token is token else None
                    append(path, history.entry_fields(atom_detail, history.ATOM, None, old,
                                                      owner), revision, txn)
                revision = self._write_single_logged(path, data, expected, log, **nowait)
            else:
                revision = self._write_single(path, data, create=False,
                                              expected_revision=expected, **nowait)
        except NotFound:
            raise NotFound(f"atom detail {atom_detail.uuid} was never saved: save the "
                           f"flow detail (or logbook) that contains it first") from None
        self._mark(atom_detail, revision)   # ZooKeeper's resolves a revision still on its way
        return atom_detail

    def destroy_logbook(self, book_uuid: str) -> None:
        """Delete logbook ``book_uuid`` with its flows, atoms, history and snapshots."""
        book_path = self._book(book_uuid)
        with self._transaction() as txn:
            try:
                flow_uuids = links(self._children(book_path))
            except NotFound:
                raise NotFound(f"no logbook {book_uuid} to destroy") from None
            atom_lists = self._children_many([self._flow(u) for u in flow_uuids])
            self._delete_book(book_path, flow_uuids, atom_lists, self._snapshot_ids(), txn)

    def _delete_book(self, book_path: str, flow_uuids: list[str],
                     atom_lists: list[list[str] | None], snapshot_ids: list[str],
                     txn: Any) -> None:
        """Delete a logbook, its flows and atoms (history included) and their snapshots."""
        self._delete(book_path, txn)
        for flow_uuid, atoms in zip(flow_uuids, atom_lists):
            self._delete(self._flow(flow_uuid), txn)
            for atom_uuid in links(atoms):
                self._delete(self._atom(atom_uuid), txn)
            prefix = flow_uuid + "."
            for sid in snapshot_ids:
                if sid.startswith(prefix):
                    self._delete(self._join(self.snapshot_path, sid), txn)
                    self._delete(self._join(self.snapshot_data_path, sid), txn)

    def clear_all(self) -> None:
        """Delete every record (and snapshot), then recreate the empty layout."""
        with self._transaction() as txn:
            for path in self._layout():
                for name in self._children(path) if self._exists(path) else ():
                    self._delete(self._join(path, name), txn)
        self.upgrade()
