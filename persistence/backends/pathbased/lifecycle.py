"""History, snapshots, summaries, listings, forks and purge for path-based backends.

A mixin of :class:`~persistence.path_based.PathBasedConnection`, written over
the same primitives plus three for history entries, which a backend may
override when it has a cheaper way (the defaults store each entry as a
record named ``.h-<time>-<id>`` below the record it describes):

``_append(record_path, fields, revision, txn)``
    add the entry for a write of the record at ``record_path`` to ``txn``;
``_history_names(record_paths)``
    the entry names below each record (oldest first);
``_read_entries(paths)``
    the stored bytes of entries (None where gone).

Entry names start with the write time, so ``since`` and ``limit`` are applied
to names before any entry is read.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import time
from collections.abc import Iterable
from typing import Any

from ...exceptions import NotFound, SerializationError
from ...models import encoding as serialization
from ...models import history, states
from ...models import records as models
from ...models.bookkeeping import bookkeeping
from ...payload import collecting
from .. import shared as lifecycle
from .primitives import links

__all__ = ["PathLifecycle", "HISTORY_PREFIX"]

HISTORY_PREFIX = ".h-"


def _name_ns(name: str) -> int:
    try:
        return int(name[len(HISTORY_PREFIX):].split("-", 1)[0])
    except ValueError:
        return 0


class PathLifecycle:
    """History, snapshots, summaries, listings, forks and purge over the path primitives."""

    #: Whether purge pauses between batches as long as a batch held the store (at
    #: most 0.1 s): for stores whose lock waiters poll (dir), so they get their turn.
    _purge_pauses = False
    _purge_held = 0.0

    # -- history primitives (defaults) ----------------------------------------
    def _append(self, record_path: str, fields: dict[str, Any], revision: Any,
                txn: Any) -> None:
        name = HISTORY_PREFIX + history.entry_name(fields["at_ns"])
        data = history.encode_entry(fields, revision if isinstance(revision, int) else None)
        self._write(self._join(record_path, name), data, txn, create=True,
                    expected_revision=None)

    def _history_names(self, record_paths: list[str]) -> list[list[str]]:
        return [sorted(n for n in names or () if n.startswith(HISTORY_PREFIX))
                for names in self._children_many(record_paths)]

    def _read_entries(self, paths: list[str]) -> list[bytes | None]:
        return [None if raw is None else raw[0] for raw in self._read_many(paths)]

    # -- history ---------------------------------------------------------------
    def get_history(self, uuid: str | None = None, flow_uuid: str | None = None,
                    since: datetime.datetime | None = None,
                    limit: int | None = None) -> list[history.HistoryEntry]:
        limit, _ = lifecycle.check_page(limit, None)
        since = lifecycle.utc(since, "since")
        with self._reading():
            records, flow_of = self._history_records(uuid, flow_uuid)
            names = self._history_names(records)
            cutoff = history.to_ns(since) if since is not None else None
            found = sorted((_name_ns(n), n, path) for path, ns in zip(records, names)
                           for n in ns if cutoff is None or _name_ns(n) >= cutoff)
            if limit is not None:
                found = found[:limit]
            paths = [self._join(path, name) for _, name, path in found]
            raws = self._read_entries(paths)
        entries = []
        for path, raw in zip(paths, raws):
            if raw is None:
                continue
            entry = history.decode_entry(raw, self._where(path))
            if entry.flow_uuid is None and entry.uuid in flow_of:
                entry = dataclasses.replace(entry, flow_uuid=flow_of[entry.uuid])
            entries.append(entry)
        return history.sort_entries(entries, since, limit)

    def _history_records(self, uuid: str | None,
                         flow_uuid: str | None) -> tuple[list[str], dict[str, str]]:
        """Paths of the records whose history is asked for, and each atom's flow if known."""
        if flow_uuid is not None:
            try:
                atoms = links(self._children(self._flow(flow_uuid)))
            except NotFound:
                atoms = []
            flow_of = {a: flow_uuid for a in atoms}
            if uuid is not None:
                if uuid == flow_uuid:
                    return [self._flow(uuid)], flow_of
                return ([self._atom(uuid)] if uuid in flow_of else []), flow_of
            return [self._flow(flow_uuid)] + [self._atom(a) for a in atoms], flow_of
        if uuid is not None:
            return [self._flow(uuid), self._atom(uuid)], {}
        flows = links(self._children(self.flow_path)) if self._exists(self.flow_path) else []
        atoms = links(self._children(self.atom_path)) if self._exists(self.atom_path) else []
        flow_of = {}
        for flow, names in zip(flows, self._children_many([self._flow(f) for f in flows])):
            for atom in links(names):
                flow_of[atom] = flow
        return [self._flow(f) for f in flows] + [self._atom(a) for a in atoms], flow_of

    def _last_change(self, record_paths: list[str]) -> datetime.datetime | None:
        latest = max((_name_ns(n) for names in self._history_names(record_paths)
                      for n in names), default=0)
        return history.from_ns(latest) if latest else None

    # -- snapshots -------------------------------------------------------------
    def _snapshot_ids(self) -> list[str]:
        if not self._exists(self.snapshot_path):
            return []
        return links(self._children(self.snapshot_path))

    def snapshot_flow(self, flow_uuid: str, label: str | None = None) -> history.Snapshot:
        lifecycle.check_label(label)
        fd = self.get_flow_details(flow_uuid)
        sid = history.snapshot_id(flow_uuid)
        at = history.now_ns()
        header = {"id": sid, "flow_uuid": flow_uuid, "label": label, "at_ns": at,
                  "atoms": len(fd)}
        data = history.snapshot_body(fd, self._backend.payload)
        for path in (self.snapshot_path, self.snapshot_data_path):
            if not self._exists(path):
                self._ensure_dir(path)
        with self._transaction() as txn:
            self._write(self._join(self.snapshot_data_path, sid), data, txn, create=True,
                        expected_revision=None)
            self._write(self._join(self.snapshot_path, sid),
                        serialization.dumps(header, "snapshot header"), txn, create=True,
                        expected_revision=None)
        return history.Snapshot(sid, flow_uuid, label, history.from_ns(at), len(fd), fd)

    def _snapshot_header(self, raw: tuple[bytes, int], path: str) -> history.Snapshot:
        head = serialization.loads(raw[0], self._where(path))
        try:
            return history.Snapshot(head["id"], head["flow_uuid"], head.get("label"),
                                    history.from_ns(head["at_ns"]), head["atoms"])
        except (KeyError, TypeError) as err:
            raise SerializationError(f"stored data in {self._where(path)} is not a snapshot "
                                     f"header: {err!r}") from err

    def list_snapshots(self, flow_uuid: str | None = None) -> list[history.Snapshot]:
        with self._reading():
            ids = [sid for sid in self._snapshot_ids()
                   if flow_uuid is None or sid.startswith(flow_uuid + ".")]
            paths = [self._join(self.snapshot_path, sid) for sid in ids]
            raws = self._read_many(paths)
        found = [self._snapshot_header(raw, path) for path, raw in zip(paths, raws)
                 if raw is not None]
        return sorted(found, key=lambda s: (s.created_at, s.id))

    def get_snapshot(self, snapshot_id: str) -> history.Snapshot:
        if not isinstance(snapshot_id, str) or snapshot_id[:1] in ("", ".") \
                or "/" in snapshot_id or "\\" in snapshot_id or "\x00" in snapshot_id:
            raise NotFound(f"no snapshot {snapshot_id!r}")
        head_path = self._join(self.snapshot_path, snapshot_id)
        body_path = self._join(self.snapshot_data_path, snapshot_id)
        with self._reading():
            head, body = self._read_many([head_path, body_path])
        if head is None or body is None:
            raise NotFound(f"no snapshot {snapshot_id!r}")
        snap = self._snapshot_header(head, head_path)
        fd = history.load_snapshot_body(body[0], self._where(body_path),
                                        self._backend.payload)
        return dataclasses.replace(snap, flow=fd)

    def restore_flow(self, snapshot_id: str) -> models.FlowDetail:
        snap = self.get_snapshot(snapshot_id)
        saved = snap.flow
        current = self.get_flow_details(snap.flow_uuid)
        token = self._backend.token
        flow_path = self._flow(saved.uuid)
        with self._transaction() as txn:
            for ad in saved:
                now = current.find(ad.uuid)
                bk = bookkeeping(ad)
                if now is not None:   # a conditional write over what we just read
                    bk.mark_loaded(token, now.revision, now.state)
                    self._write_atom(ad, txn, False, saved.uuid, history.RESTORE)
                else:
                    bk.forget_store()
                    self._write_atom(ad, txn, True, saved.uuid, history.RESTORE)
                    self._link(self._join(flow_path, ad.uuid), txn)
            for ad in current:
                if saved.find(ad.uuid) is None:
                    self._delete(self._join(flow_path, ad.uuid), txn)
                    self._delete(self._atom(ad.uuid), txn)
            fd = current.copy(retain_contents=False)
            fd.__dict__.update(name=saved.name, state=saved.state)
            fd.meta = dict(saved.meta)
            record = serialization.flow_record(fd, None, codec=self._backend.payload)
            record["updated_at"] = datetime.datetime.now(datetime.timezone.utc).isoformat()
            revision = self._write(flow_path, serialization.encode_record(record, fd), txn,
                                   create=False, expected_revision=current.revision)
            if self._backend.history:
                self._log(flow_path, fd, history.FLOW, fd.uuid, revision, txn,
                          history.RESTORE)
        return self.get_flow_details(saved.uuid)

    # -- fork ----------------------------------------------------------------------
    def _book_of(self, flow_uuid: str) -> str:
        books = links(self._children(self.book_path)) if self._exists(self.book_path) else []
        paths = [self._book(b) for b in books]
        for book, raw, flows in zip(books, self._read_many(paths), self._children_many(paths)):
            if raw is not None and flow_uuid in (flows or ()):
                return book
        raise NotFound(f"no flow detail {flow_uuid} in any logbook")

    def fork_flow(self, flow_uuid: str, from_atoms: Iterable[str] = (),
                  name: str | None = None) -> models.FlowDetail:
        with self._reading():
            source = self.get_flow_details(flow_uuid)
            book_uuid = self._book_of(flow_uuid)
        fork = lifecycle.fork_detail(source, from_atoms, name)
        book_path = self._book(book_uuid)
        with self._transaction() as txn:
            if not self._exists(book_path):
                raise NotFound(f"logbook {book_uuid} of flow detail {flow_uuid} is gone")
            written = self._write_flow(fork, txn, create=True, only_changed=False,
                                       event=history.FORK)
            self._link(self._join(book_path, fork.uuid), txn)
        for detail, revision in written:
            self._mark(detail, revision)
        return fork

    # -- summaries and listings ----------------------------------------------------
    def summary(self, flow_uuid: str) -> lifecycle.FlowSummary:
        with self._reading():
            fd = self.get_flow_details(flow_uuid)
            last = self._last_change([self._flow(flow_uuid)]
                                     + [self._atom(ad.uuid) for ad in fd])
        return lifecycle.summarize(fd, fd, last)

    def _flow_rows(self, flow_uuids: list[str]) -> list[tuple[models.FlowDetail, str]]:
        """(lazy flow detail, updated_at ISO text or '') of each stored flow."""
        paths = [self._flow(u) for u in flow_uuids]
        out = []
        for path, raw in zip(paths, self._read_many(paths)):
            if raw is None:
                continue
            record = self._decode(raw, path)
            fd = serialization.load_flow(record, self._where(path), self._backend.payload)
            bookkeeping(fd).mark_stored(self._backend.token, fd.state)
            out.append((fd, record.get("updated_at") or ""))
        return out

    def list_flow_details(self, state: str | Iterable[str] | None = None,
                          logbook: str | None = None, limit: int | None = None,
                          offset: int | None = None) -> list[models.FlowDetail]:
        limit, offset = lifecycle.check_page(limit, offset)
        wanted = lifecycle.check_states(state, states.FLOW_STATES, "flow state")
        with self._reading():
            if logbook is not None:
                found = self._published_children(self._book(logbook))
                if found is None:
                    raise NotFound(f"no logbook {logbook}")
                flows = found
            else:
                books = (links(self._children(self.book_path))
                         if self._exists(self.book_path) else [])
                paths = [self._book(b) for b in books]
                flows = [f for raw, names in zip(self._read_many(paths),
                                                 self._children_many(paths))
                         if raw is not None for f in links(names)]
            rows = self._flow_rows(flows)
        rows = [(fd, at) for fd, at in rows if wanted is None or fd.state in wanted]
        rows.sort(key=lambda row: (row[1], row[0].uuid), reverse=True)
        return lifecycle.page([fd for fd, _ in rows], limit, offset)

    def count_logbooks(self, name: str | None = None,
                       updated_since: datetime.datetime | None = None,
                       updated_before: datetime.datetime | None = None) -> int:
        return len(lifecycle.list_logbooks(self, name, updated_since, updated_before,
                                           None, None))

    # -- retention -----------------------------------------------------------------
    # Primitives of lifecycle.purge over the path layout.
    def _purge_candidates(self, cutoff: datetime.datetime,
                          wanted: tuple[str, ...]) -> list[str]:
        # Found without holding the store (dir: its lock); each batch checks again.
        return [uuid for uuid, _, _ in self._purgeable(None, cutoff, wanted, locked=False)]

    def _purge_batch(self, book_uuids: list[str], cutoff: datetime.datetime,
                     wanted: tuple[str, ...], dry_run: bool) -> list[tuple[str, int, int]]:
        self._purge_held = 0.0
        if dry_run:
            found = self._purgeable(book_uuids, cutoff, wanted)
        else:
            held = time.monotonic()
            with self._transaction() as txn:
                # Checked again in the transaction: a writer may have moved on.
                found = self._purgeable(book_uuids, cutoff, wanted)
                snapshot_ids = self._snapshot_ids() if found else []
                for uuid, flows, atom_lists in found:
                    self._delete_book(self._book(uuid), flows, atom_lists, snapshot_ids, txn)
            self._purge_held = time.monotonic() - held
        return [(uuid, len(flows), sum(len(links(a)) for a in atom_lists))
                for uuid, flows, atom_lists in found]

    def _purge_pause(self) -> None:
        # Writers of other processes poll for the store's lock: give them a turn.
        if self._purge_pauses and self._purge_held:
            time.sleep(min(self._purge_held, 0.1))

    def _purgeable(self, book_uuids: list[str] | None, cutoff: datetime.datetime,
                   wanted: tuple[str, ...], locked: bool = True
                   ) -> list[tuple[str, list[str], list[list[str] | None]]]:
        """(book uuid, its flow uuids, each flow's atom links) of the books that may go:
        saved before ``cutoff``, every flow in ``wanted`` and last written before it."""
        with self._reading() if locked else contextlib.nullcontext():
            if book_uuids is None:
                book_uuids = (links(self._children(self.book_path))
                              if self._exists(self.book_path) else [])
            paths = [self._book(u) for u in book_uuids]
            old = []
            for uuid, path, raw, flows in zip(book_uuids, paths, self._read_many(paths),
                                              self._children_many(paths)):
                if raw is None or flows is None:
                    continue
                with collecting():     # only its time is needed: no value is opened
                    book = serialization.load_logbook(self._decode(raw, path),
                                                      self._where(path), self._backend.payload)
                if lifecycle.book_time(book) < cutoff:
                    old.append((uuid, links(flows)))
            rows = {fd.uuid: (fd.state, _parse(at))
                    for fd, at in self._flow_rows([f for _, flows in old for f in flows])}
            keep = [(uuid, flows) for uuid, flows in old
                    if all(f in rows and rows[f][0] in wanted
                           and (rows[f][1] is None or rows[f][1] < cutoff) for f in flows)]
            atom_lists = self._children_many([self._flow(f) for _, fl in keep for f in fl])
        out, pos = [], 0
        for uuid, flows in keep:
            out.append((uuid, flows, atom_lists[pos:pos + len(flows)]))
            pos += len(flows)
        return out


def _parse(text: str) -> datetime.datetime | None:
    try:
        return lifecycle.utc(datetime.datetime.fromisoformat(text), "updated_at") if text else None
    except ValueError:
        return None
