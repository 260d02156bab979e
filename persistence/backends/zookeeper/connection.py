"""ZkConnection: the path-based core's primitives over znodes.

Reads of many znodes go out as multiRead requests (see :mod:`.multiread`);
writes are collected and planned at commit (see :mod:`.writes`).  Every
connection of a backend shares its kazoo client, which is thread-safe; a
connection holds only the update it sent without waiting
(``update_atom_details_nowait``), whose answer it checks before its next
write: requests of one session are answered in order, so nothing sent later
overtakes it.  The next write of the same record (the atom's result) goes out
before that answer, conditional on it (see :mod:`.pipeline`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from kazoo.exceptions import NoNodeError, UnimplementedError

from ...exceptions import NotFound, SerializationError, StorageFailure
from ...models import history
from ...models import records as models
from ..pathbased.connection import PathBasedConnection
from ..pathbased.lifecycle import HISTORY_PREFIX
from . import chunks, pipeline, writes
from .claims import ZkClaims
from .host import ZkHost
from .multiread import GET_CHILDREN, GET_DATA, MultiRead, batches

__all__ = ["ZkConnection"]

LOG = logging.getLogger(__name__)

_READ_ATTEMPTS = 5


class ZkConnection(ZkClaims, PathBasedConnection):
    #: update_atom_details_nowait sends the update and checks its answer later.
    writes_nowait = True

    def __init__(self, backend: ZkHost) -> None:
        super().__init__(backend, backend.path)
        self._sent: writes.Sent | None = None
        #: Records known to hold no parts, at that version (see writes.send_update).
        self.partless: dict[str, int] = {}
        self._atoms = self.atom_path + "/"
        self._dirs = {backend.path, self.book_path, self.flow_path, self.atom_path,
                      self.snapshot_path, self.snapshot_data_path}

    @property
    def backend(self) -> ZkHost:
        return self._backend

    def is_atom(self, path: str) -> bool:
        return path.startswith(self._atoms)

    # -- many reads at once ------------------------------------------------
    def read_many(self, ops: list[tuple[int, str]]) -> list[Any]:
        """Results of GET_DATA/GET_CHILDREN ``ops``, in order; NoNodeError where missing."""
        if not ops:
            return []
        be = self.backend
        client = be.client
        deadline = be.deadline()
        be.wait_live(deadline)
        if be.multi_read:
            root = client.chroot or ""
            sent = []
            for batch in batches(ops):
                result = client.handler.async_result()
                client._call(MultiRead([(kind, root + path) for kind, path in batch]), result)
                sent.append(result)
            try:
                out = [r for result in sent for r in be.result("read znodes", result, deadline)]
            except UnimplementedError:
                LOG.warning("ZooKeeper at %s does not implement multiRead (older than 3.6): "
                            "reading with pipelined requests instead", be.hosts)
                be.multi_read = False
                return self.read_many(ops)
        else:
            sent = [client.get_async(path) if kind == GET_DATA else client.get_children_async(path)
                    for kind, path in ops]
            out = []
            for result in sent:
                try:
                    out.append(be.result("read znodes", result, deadline))
                except NoNodeError as err:
                    out.append(err)
        for (_, path), result in zip(ops, out):
            if isinstance(result, Exception) and not isinstance(result, NoNodeError):
                raise StorageFailure(f"cannot read {path} on ZooKeeper at {be.hosts}: "
                                     f"{type(result).__name__}") from result
        return out

    # -- primitives: reads -------------------------------------------------
    def _read(self, path: str) -> tuple[bytes, int]:
        got = self._read_many([path])[0]
        if got is None:
            raise NotFound(f"nothing stored at {path}")
        return got

    def _read_many(self, paths: list[str]) -> list[tuple[bytes, int] | None]:
        out: list[tuple[bytes, int] | None] = [None] * len(paths)
        chunked = []
        for i, result in enumerate(self.read_many([(GET_DATA, p) for p in paths])):
            if isinstance(result, NoNodeError) or not result[0]:
                continue  # absent, or a record still being written
            data, stat = result
            if chunks.is_header(data):
                chunked.append((i, paths[i], data, stat.version))
            else:
                out[i] = (data, stat.version)
        if chunked:
            self._join_parts(chunked, out)
        return out

    def _join_parts(self, pending: list[tuple[int, str, bytes, int]],
              out: list[tuple[bytes, int] | None]) -> None:
        """Read the parts of chunked records; re-read a record whose header changed meanwhile."""
        for _ in range(_READ_ATTEMPTS):
            heads = [chunks.parse_header(data, path) for _, path, data, _ in pending]
            parts = self.read_many([(GET_DATA, p) for (_, path, _, _), head in zip(pending, heads)
                                    for p in chunks.part_paths(path, head)])
            again, pos = [], 0
            for item, head in zip(pending, heads):
                got = parts[pos:pos + head["parts"]]
                pos += head["parts"]
                whole = None
                if not any(isinstance(g, NoNodeError) for g in got):
                    whole = chunks.join_parts([g[0] for g in got], head)
                if whole is None:
                    again.append(item)
                else:
                    out[item[0]] = (whole, item[3])
            if not again:
                return
            fresh = self.read_many([(GET_DATA, path) for _, path, _, _ in again])
            pending = []
            for (i, path, data, version), result in zip(again, fresh):
                if isinstance(result, NoNodeError) or not result[0]:
                    continue
                if result[0] == data and result[1].version == version:
                    raise SerializationError(f"record {path} is corrupt: parts of its value "
                                             f"under {path}/{chunks.CHUNKS} are missing or damaged")
                if chunks.is_header(result[0]):
                    pending.append((i, path, result[0], result[1].version))
                else:
                    out[i] = (result[0], result[1].version)
            if not pending:
                return
        raise StorageFailure(f"{pending[0][1]} kept changing while it was read "
                             f"({_READ_ATTEMPTS} attempts)")

    def _children(self, path: str) -> list[str]:
        client = self.backend.client
        try:
            names, stat = self.backend.call(
                f"list {path}", lambda: client.get_children_async(path, include_data=True))
        except NoNodeError:
            raise NotFound(f"nothing stored at {path}") from None
        if not stat.dataLength and path not in self._dirs:
            # A record still being written (or taken apart): its links are not its own yet.
            raise NotFound(f"nothing stored at {path}")
        return sorted(n for n in names if not n.startswith("."))

    def _children_many(self, paths: list[str]) -> list[list[str] | None]:
        results = self.read_many([(GET_CHILDREN, p) for p in paths])
        return [None if isinstance(r, NoNodeError) else sorted(n for n in r if n[:1] != ".")
                for r in results]

    def _exists(self, path: str) -> bool:
        client = self.backend.client
        stat = self.backend.call(f"look up {path}", lambda: client.exists_async(path))
        return stat is not None and (path in self._dirs or stat.dataLength > 0)

    # -- primitives: writes ------------------------------------------------
    def _write(self, path: str, data: bytes, txn: list, *, create: bool,
               expected_revision: int | None) -> int | writes.Revision:
        revision = None if expected_revision is not None else writes.Revision()
        txn.append(writes.Put(path, data, create, expected_revision, revision))
        return expected_revision + 1 if revision is None else revision

    def _link(self, path: str, txn: list) -> None:
        txn.append(writes.Link(path))

    # -- history entries: znodes below their record, created blind ------------
    def _append(self, record_path: str, fields: dict[str, Any], revision: Any,
                txn: list) -> None:
        name = HISTORY_PREFIX + history.entry_name(fields["at_ns"])
        txn.append(writes.Entry(f"{record_path}/{name}", fields, revision))

    def _history_names(self, record_paths: list[str]) -> list[list[str]]:
        got = self.read_many([(GET_CHILDREN, p) for p in record_paths])
        return [[] if isinstance(names, NoNodeError) else
                sorted(n for n in names if n.startswith(HISTORY_PREFIX)) for names in got]

    def _read_entries(self, paths: list[str]) -> list[bytes | None]:
        got = self.read_many([(GET_DATA, p) for p in paths])
        return [None if isinstance(r, NoNodeError) else r[0] for r in got]

    def _delete(self, path: str, txn: list) -> None:
        txn.append(writes.Delete(path))

    def _ensure_dir(self, path: str) -> None:
        client = self.backend.client
        self.backend.call(f"create {path}", lambda: client.ensure_path_async(path))

    @contextlib.contextmanager
    def _transaction(self, durable: bool = True) -> Iterator[list]:
        self.settle()
        ops: list = []
        yield ops
        self._sent = writes.commit(self, ops, wait=durable)

    def _write_single_logged(self, path: str, data: bytes, expected_revision: int | None,
                             log: Any, durable: bool = True) -> int:
        """The next write of the record whose update was sent without waiting goes out
        behind it at once, conditional on it (see :mod:`.pipeline`)."""
        sent = self._sent
        if not durable or sent is None or expected_revision is None:
            return super()._write_single_logged(path, data, expected_revision, log, durable)
        ops: list = []
        revision = self._write(path, data, ops, create=False,
                               expected_revision=expected_revision)
        log(revision, ops)
        self._sent = None
        if pipeline.chains(self, sent, ops):
            pipeline.follow(self, sent, *ops)
        else:   # as _transaction(): the earlier update's answer first, then these ops
            writes.settle(self, sent)
            writes.commit(self, ops)
        return revision

    def settle(self) -> None:
        """Wait for the answer to the update sent without waiting, if any; its error
        (Conflict, NotFound, StorageFailure) is raised here."""
        sent, self._sent = self._sent, None
        if sent is not None:
            writes.settle(self, sent)

    def close(self) -> None:
        """Check the update sent without waiting (an error is logged: nothing is left
        to raise it to); the client stays with the backend."""
        try:
            self.settle()
        except Exception as err:  # closing must not raise; the write's fate is logged
            LOG.warning("an update sent without waiting failed: %s", err)
        super().close()

    def _mark(self, detail: models._Record, revision: Any) -> None:
        if isinstance(revision, writes.Revision):
            revision = revision.get()
        super()._mark(detail, revision)
