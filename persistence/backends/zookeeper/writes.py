"""Writes: the core's logical operations, planned into as few ZooKeeper transactions as fit.

The core hands a transaction its operations bottom-up (atoms, the flow, its
links, the logbook, its links).  At commit:

* One conditional update of one record (the engine's hot path) is a single
  versioned ``setData``.
* Anything else first reads the current state of every znode it touches (a
  multiRead), checks every expected revision and every must-exist record
  *before anything is written* (Conflict / NotFound), then turns the
  operations into znode operations grouped into transactions of at most
  ``max_request_bytes``.  One group is atomic.  When a save needs several,
  they are ordered so that a crash between two leaves nothing a reader takes
  for a complete record: a new record's znode is created *empty* (readers
  treat an empty znode as absent), its parts and links are added, and its
  data is set last (a save of a record an interrupted save left empty first
  removes the links and entries that save made); a replaced record's new parts go in before its new
  header and its old parts are deleted after; a deleted record is emptied
  first, then its children and itself are removed.

Revisions are znode versions: a new record is created empty (version 0) and
set once (version 1), and a conditional write is a ``setData`` with the
expected version, so the server itself refuses a stale writer.

When the connection drops before a write's answer arrives (the server died;
the client moves to another one), the outcome is looked up instead of
guessed: after a ``sync``, every record written is read back; all at their
new version with the new data means the write went through, all as before
means it did not and it is sent again.  Only a save split over several
transactions still fails with StorageFailure then.
"""

from __future__ import annotations

import logging
import posixpath
from collections import defaultdict
from typing import Any, NamedTuple

from kazoo.exceptions import (
    BadVersionError,
    ConnectionLoss,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    RolledBackError,
    RuntimeInconsistency,
    SessionExpiredError,
)
from kazoo.protocol import serialization as proto
from kazoo.security import OPEN_ACL_UNSAFE

from ... import telemetry
from ...exceptions import Conflict, NotFound, StorageFailure
from ...models import history
from . import chunks
from .host import ZkWriter
from .multiread import GET_CHILDREN, GET_DATA

__all__ = ["Revision", "Put", "Link", "Delete", "Entry", "commit"]

LOG = logging.getLogger(__name__)

_ATTEMPTS = 4
_RACES = (NodeExistsError, NoNodeError, BadVersionError, NotEmptyError)
_ROLLED_BACK = (RolledBackError, RuntimeInconsistency)
_ENVELOPE = 21  # length, xid, type, closing multi header


class Revision:
    """A record's new revision, known once its transaction is planned and committed."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: int | None = None

    def get(self) -> int:
        if self.value is None:
            raise RuntimeError("revision read before its transaction committed")
        return self.value


class Put(NamedTuple):
    path: str
    data: bytes
    create: bool
    expected: int | None
    revision: Revision | None


class Link(NamedTuple):
    path: str


class Delete(NamedTuple):
    path: str


class Entry(NamedTuple):
    """A history entry: a new znode below its record, created without reading first
    (its name is unique); ``revision`` is the record's (a Revision until planned)."""

    path: str
    fields: dict
    revision: Any


class _Node:
    """What the planner knows of one record znode: version (None: absent) and parts."""

    __slots__ = ("version", "record", "parts")

    def __init__(self, got: Any, parts: list[str] | None) -> None:
        absent = isinstance(got, NoNodeError)
        self.version: int | None = None if absent else got[1].version
        self.record = not absent and len(got[0]) > 0
        self.parts = parts


def commit(conn: ZkWriter, ops: list[Any]) -> None:
    if not ops:
        return
    first = ops[0]
    if (isinstance(first, Put) and first.expected is not None
            and len(first.data) <= conn.backend.chunk_size
            and (len(ops) == 1 or (len(ops) == 2 and isinstance(ops[1], Entry)))):
        _update_one_retrying(conn, first, ops[1] if len(ops) == 2 else None)
        return
    for attempt in range(_ATTEMPTS):
        last = attempt == _ATTEMPTS - 1
        try:
            plan = _Plan(conn, ops)
        except StorageFailure as err:
            if last or not _lost(err):
                raise
            continue  # nothing was sent yet
        groups = plan.groups()
        try:
            _run(conn, groups)
        except _Raced:
            continue
        except StorageFailure as err:
            # One transaction whose answer was lost: find out whether it went through.
            if last or not _lost(err) or len(groups) != 1:
                raise
            applied = _outcome(conn, plan.before, plan.after)
            if applied is None:
                raise
            LOG.info("the answer to a transaction writing %s was lost; it was %s",
                     ", ".join(plan.after), "applied" if applied else "not applied: again")
            if not applied:
                continue
        for revision, value in plan.revisions:
            revision.value = value
        return
    raise StorageFailure(f"gave up writing to ZooKeeper at {conn.backend.hosts}: the znodes "
                         f"kept changing concurrently ({_ATTEMPTS} attempts); nothing was written")


# -- lost answers -----------------------------------------------------------
def _lost(err: StorageFailure) -> bool:
    """Whether a request failed because the connection or session dropped (the client
    reconnects on its own): its outcome is unknown, and asking again is worth it."""
    return isinstance(err.__cause__, (ConnectionLoss, SessionExpiredError))


def _outcome(conn: ZkWriter, before: dict[str, int | None],
             after: dict[str, tuple[int, bytes]]) -> bool | None:
    """After a lost answer: True if the write is stored (every record at its new version
    with its new data), False if none of it is (every record as before), None if unknown.

    ``sync`` first, so the server answering has every committed change.
    """
    if not after:
        return None
    be = conn.backend
    client = be.client
    paths = list(after)
    try:
        be.call(f"sync {paths[0]}", lambda: client.sync_async(paths[0]))
        got = dict(zip(paths, conn.read_many([(GET_DATA, p) for p in paths])))
    except StorageFailure:
        return None

    def now_at(path: str) -> tuple[int | None, bytes | None]:
        result = got[path]
        return (None, None) if isinstance(result, NoNodeError) else (result[1].version,
                                                                     result[0])
    if all(now_at(p) == after[p] for p in paths):
        return True
    if all(now_at(p)[0] == before[p] for p in paths):
        return False
    return None


def _update_one_retrying(conn: ZkWriter, put: Put, entry: Entry | None = None) -> None:
    """:func:`_update_one`, asked again when the connection dropped before its answer."""
    for attempt in range(_ATTEMPTS):
        try:
            _update_one(conn, put, entry)
            return
        except StorageFailure as err:
            if attempt == _ATTEMPTS - 1 or not _lost(err):
                raise
            applied = _outcome(conn, {put.path: put.expected},
                               {put.path: (put.expected + 1, put.data)})
            if applied is None:
                raise
            if applied:
                LOG.info("the answer to an update of %s was lost; it was applied", put.path)
                return
            LOG.info("the answer to an update of %s was lost; it was not applied: "
                     "sending it again", put.path)
            telemetry.retried("zookeeper")


# -- the hot path -----------------------------------------------------------
def _update_one(conn: ZkWriter, put: Put, entry: Entry | None = None) -> None:
    """One conditional setData (with its history entry: one multi), then old parts go."""
    be = conn.backend
    client = be.client
    deadline = be.deadline()
    be.wait_live(deadline)
    parts_path = f"{put.path}/{chunks.CHUNKS}"
    if entry is None:
        sent = client.set_async(put.path, put.data, put.expected)
    else:
        sent = _send(client, [("set", put.path, put.data, put.expected),
                              ("create", entry.path, _entry_data(entry, put.expected + 1),
                               None)])
    # Requests of one session are answered in order: this listing sees the new value.
    # (An atom has children only if it has history entries or parts.)
    listing = (None if conn.is_atom(put.path) and entry is None
               else client.get_children_async(parts_path))
    try:
        stat = be.result(f"update {put.path}", sent, deadline)
        if entry is not None:
            stat = _multi_result(stat, put.path)
    except NoNodeError:
        if put.create:  # a record this backend saved was deleted meanwhile
            raise _conflict(conn, put.path, put.expected) from None
        raise NotFound(f"nothing stored at {put.path}") from None
    except BadVersionError:
        raise _conflict(conn, put.path, put.expected) from None
    if listing is None and stat.numChildren == 0:
        return
    try:
        stale = be.result(f"list {parts_path}", listing or client.get_children_async(parts_path),
                          deadline)
    except NoNodeError:
        return
    # Only while the record still holds this value: a newer writer's parts may be
    # in that listing by now, and they are not stale.
    ops = [("check", put.path, None, stat.version)]
    ops.extend(("delete", f"{parts_path}/{name}", None, -1) for name in stale)
    ops.append(("delete", parts_path, None, -1))
    try:
        _run(conn, _group(conn, ops))
    except _Raced:
        pass  # changed again meanwhile: its writer removes what is stale
    except StorageFailure as err:
        # The record itself is written; left-over parts are removed by its next write.
        LOG.warning("could not remove the old parts of %s: %s", put.path, err)


def _conflict(conn: ZkWriter, path: str, expected: int | None) -> Conflict:
    found: int | None = None
    try:
        stat = conn.backend.call(f"read {path}", lambda: conn.backend.client.exists_async(path))
        found = stat.version if stat is not None and stat.dataLength else 0
    except StorageFailure:
        pass
    return Conflict(f"{path} was changed by another writer: expected revision {expected}, "
                    f"found {found if found is not None else 'unknown'}",
                    record=path, expected=expected, found=found)


def _entry_data(entry: Entry, revision: int | None) -> bytes:
    return history.encode_entry(entry.fields, revision)


def _send(client: Any, ops: list[tuple]) -> Any:
    """Send ``ops`` as one multi request (kazoo protocol records, as :func:`_run`)."""
    acl = client.default_acl or OPEN_ACL_UNSAFE
    root = client.chroot or ""
    request = proto.Transaction([
        proto.Create(root + path, data, acl, 0) if kind == "create" else
        proto.SetData(root + path, data, version)
        for kind, path, data, version in ops])
    result = client.handler.async_result()
    client._call(request, result)
    return result


def _multi_result(results: list[Any], path: str) -> Any:
    """The setData stat of a [set, create entry] multi; its failure raised as such."""
    failed = [r for r in results if isinstance(r, Exception) and not isinstance(r, _ROLLED_BACK)]
    if failed:
        raise failed[0]
    if len(results) != 2:
        raise StorageFailure(f"ZooKeeper answered an update of {path} with {len(results)} "
                             f"results instead of 2")
    return results[0]


# -- planning ---------------------------------------------------------------
class _Plan:
    """The znode operations for a list of logical ones, after reading what is there."""

    def __init__(self, conn: ZkWriter, ops: list[Any]) -> None:
        self.conn = conn
        self.ops = ops
        self.nodes: dict[str, _Node] = {}
        self.listed: dict[str, list[str] | None] = {}
        self.revisions: list[tuple[Revision, int]] = []
        self.resolved: dict[int, int] = {}   # id(Revision) -> the revision it will be
        self.links = {op.path for op in ops if isinstance(op, Link)}
        self._read()
        self._check()
        #: Each written record's version before this plan (None: absent) and after it
        #: (with the data it will hold): how a lost answer is resolved.
        self.before = {path: node.version for path, node in self.nodes.items()}
        self.after: dict[str, tuple[int, bytes]] = {}

    def _read(self) -> None:
        """Two rounds of multiRead: the touched znodes, then what hangs below some of them."""
        first: dict[tuple[int, str], None] = {}
        for op in self.ops:
            if isinstance(op, Put):
                first[(GET_DATA, op.path)] = None
            elif isinstance(op, Delete):
                first[(GET_CHILDREN, op.path)] = None
        got = dict(zip(first, self.conn.read_many(list(first))))
        data = {path: result for (kind, path), result in got.items() if kind == GET_DATA}
        for (kind, path), result in got.items():
            if kind == GET_CHILDREN:
                self.listed[path] = None if isinstance(result, NoNodeError) else result
        second: dict[str, None] = {}
        for path, result in data.items():
            # Parts can only exist below a znode that has children.
            if not isinstance(result, NoNodeError) and result[1].numChildren:
                second[f"{path}/{chunks.CHUNKS}"] = None
                if not result[0]:   # never published: what an interrupted save left
                    second[path] = None
        for op in self.ops:
            if isinstance(op, Link):
                parent = posixpath.dirname(op.path)
                known = data.get(parent)
                if parent not in self.listed and not isinstance(known, NoNodeError):
                    second[parent] = None
            elif isinstance(op, Delete):
                for name in self.listed.get(op.path) or ():
                    if name == chunks.CHUNKS:   # parts below a record (entries are leaves)
                        second[f"{op.path}/{name}"] = None
        if second:
            results = self.conn.read_many([(GET_CHILDREN, p) for p in second])
            for path, result in zip(second, results):
                self.listed[path] = None if isinstance(result, NoNodeError) else result
        for op in self.ops:
            if isinstance(op, Put):
                self.nodes[op.path] = _Node(data[op.path],
                                            self.listed.get(f"{op.path}/{chunks.CHUNKS}"))

    def _check(self) -> None:
        """Refuse the whole save before writing anything if any record is stale or absent."""
        for op in self.ops:
            if not isinstance(op, Put):
                continue
            node = self.nodes[op.path]
            current = node.version if node.record else 0
            if not op.create and not node.record:
                raise NotFound(f"nothing stored at {op.path}")
            if op.expected is not None and op.expected != current:
                raise Conflict(f"{op.path} was changed by another writer: expected revision "
                               f"{op.expected}, found {current}",
                               record=op.path, expected=op.expected, found=current)

    def groups(self) -> list[list[tuple]]:
        return _group(self.conn, self._znode_ops())

    def _znode_ops(self) -> list[tuple]:
        last_child: dict[str, int] = {}
        for i, op in enumerate(self.ops):
            if isinstance(op, Link):
                last_child[posixpath.dirname(op.path)] = i
        due: dict[int, list[tuple]] = defaultdict(list)
        out: list[tuple] = []
        linked: set[str] = set()
        for i, op in enumerate(self.ops):
            if isinstance(op, Put):
                finals = self._put(op, out)
                target = last_child.get(op.path, -1)
                (due[target] if target > i else out).extend(finals)
            elif isinstance(op, Link):
                if op.path not in linked and not self._has_child(op.path):
                    out.append(("create", op.path, b"", None))
                linked.add(op.path)
            elif isinstance(op, Entry):
                revision = op.revision if isinstance(op.revision, int) else \
                    self.resolved.get(id(op.revision))
                out.append(("create", op.path, _entry_data(op, revision), None))
            else:
                self._delete(op.path, out)
            out.extend(due.pop(i, ()))
        return out

    def _has_child(self, path: str) -> bool:
        parent, name = posixpath.split(path)
        return name in (self.listed.get(parent) or ())

    def _put(self, op: Put, out: list[tuple]) -> list[tuple]:
        """Append what must precede ``op``'s data; return the ops that complete it."""
        node = self.nodes[op.path]
        parts_path = f"{op.path}/{chunks.CHUNKS}"
        if node.version is None:
            out.append(("create", op.path, b"", None))
            node.version = 0
        elif not node.record:
            # An interrupted save's links and entries: the record gets this save's only.
            linked = self.links
            out.extend(("delete", f"{op.path}/{name}", None, -1)
                       for name in self.listed.get(op.path) or ()
                       if name != chunks.CHUNKS and f"{op.path}/{name}" not in linked)
        version = node.version
        old_parts = node.parts
        finals: list[tuple] = []
        if len(op.data) > self.conn.backend.chunk_size:
            gen = chunks.new_generation()
            pieces = chunks.split(op.data, self.conn.backend.chunk_size)
            telemetry.offloaded("zookeeper", len(op.data))
            if old_parts is None:
                out.append(("create", parts_path, b"", None))
            for k, piece in enumerate(pieces):
                out.append(("create", f"{parts_path}/{gen}-{k}", piece, None))
            finals.append(("set", op.path, chunks.make_header(gen, len(pieces), op.data), version))
            node.parts = [f"{gen}-{k}" for k in range(len(pieces))]
        else:
            finals.append(("set", op.path, op.data, version))
            node.parts = None
        if old_parts is not None:
            finals.extend(("delete", f"{parts_path}/{name}", None, -1) for name in old_parts)
            if node.parts is None:
                finals.append(("delete", parts_path, None, -1))
        node.version = version + 1
        node.record = True
        self.after[op.path] = (version + 1, finals[0][2])
        if op.revision is not None:
            self.revisions.append((op.revision, version + 1))
            self.resolved[id(op.revision)] = version + 1
        return finals

    def _delete(self, path: str, out: list[tuple]) -> None:
        children = self.listed.get(path)
        if children is None:
            return
        if children:
            out.append(("set", path, b"", -1))  # invisible before it is taken apart
        for name in children:
            child = f"{path}/{name}"
            out.extend(("delete", f"{child}/{g}", None, -1) for g in self.listed.get(child) or ())
            out.append(("delete", child, None, -1))
        out.append(("delete", path, None, -1))


def _group(conn: ZkWriter, ops: list[tuple]) -> list[list[tuple]]:
    """Split znode operations, in order, into transactions of at most max_request_bytes."""
    be = conn.backend
    client = be.client
    budget = be.max_request_bytes
    acl = client.default_acl or OPEN_ACL_UNSAFE
    acl_size = 4 + sum(12 + len(a.id.scheme) + len(a.id.id) for a in acl)
    root = len((client.chroot or "").encode("utf-8"))
    groups: list[list[tuple]] = []
    current: list[tuple] = []
    size = _ENVELOPE
    for op in ops:
        kind, path, data, _ = op
        op_size = 17 + root + len(path.encode("utf-8"))
        if kind == "create":
            op_size += 8 + len(data) + acl_size
        elif kind == "set":
            op_size += 4 + len(data)
        if op_size + _ENVELOPE > budget:
            raise StorageFailure(f"cannot write {path}: one operation needs {op_size} bytes, "
                                 f"more than max_request_bytes ({budget})")
        if current and size + op_size > budget:
            groups.append(current)
            current, size = [], _ENVELOPE
        current.append(op)
        size += op_size
    if current:
        groups.append(current)
    return groups


# -- execution --------------------------------------------------------------
class _Raced(Exception):
    """The first transaction met a concurrent change; nothing was written: plan again."""


def _run(conn: ZkWriter, groups: list[list[tuple]]) -> None:
    be = conn.backend
    client = be.client
    acl = client.default_acl or OPEN_ACL_UNSAFE
    root = client.chroot or ""
    for k, group in enumerate(groups):
        # kazoo's own transaction builder re-validates and normalises every
        # path (~50 us per op); these paths are already valid, so build the
        # request from kazoo's protocol records directly.
        request = proto.Transaction([
            proto.Create(root + path, data, acl, 0) if kind == "create" else
            proto.SetData(root + path, data, version) if kind == "set" else
            proto.Delete(root + path, version) if kind == "delete" else
            proto.CheckVersion(root + path, version)
            for kind, path, data, version in group])

        def send(request: proto.Transaction = request) -> Any:
            result = client.handler.async_result()
            client._call(request, result)
            return result

        results = be.call(f"commit a transaction of {len(group)} znode operations", send)
        failed = [(op, r) for op, r in zip(group, results)
                  if isinstance(r, Exception) and not isinstance(r, _ROLLED_BACK)]
        if not failed and len(results) == len(group):
            continue
        op, err = failed[0] if failed else (group[0], RuntimeInconsistency())
        if isinstance(err, _RACES) and k == 0:
            raise _Raced(op[1])
        done = (f"; {k} of {len(groups)} transactions were already committed (each record "
                f"is whole, new records stay invisible until saved again)" if k else
                "; nothing was written")
        message = (f"ZooKeeper refused to {op[0]} {op[1]}: {type(err).__name__} "
                   f"(changed concurrently?){done}")
        if isinstance(err, BadVersionError):
            raise Conflict(message, record=op[1])
        raise StorageFailure(message)
