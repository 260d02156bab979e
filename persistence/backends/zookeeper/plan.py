"""Planning a ZooKeeper write: the operations the core hands a transaction,
the znode operations they become, and their grouping into transactions.

See :mod:`.writes` for the ordering rules (what a crash between two groups
may leave) and for the single-record hot path; this module reads the current
state once (:class:`Plan`), checks every expected revision before anything is
written, and runs the groups (:func:`run_groups`).
"""

from __future__ import annotations

import posixpath
from collections import defaultdict
from typing import Any, NamedTuple

from kazoo.exceptions import (
    BadVersionError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    RolledBackError,
    RuntimeInconsistency,
)
from kazoo.protocol import serialization as proto
from kazoo.security import OPEN_ACL_UNSAFE

from ... import telemetry
from ...exceptions import Conflict, NotFound, StorageFailure
from ...models import history
from . import chunks
from .host import ZkWriter
from .multiread import GET_CHILDREN, GET_DATA

__all__ = ["Revision", "Put", "Link", "Delete", "Entry", "Plan", "Raced", "RACES",
           "ROLLED_BACK", "entry_data", "group_ops", "run_groups"]


RACES = (NodeExistsError, NoNodeError, BadVersionError, NotEmptyError)


ROLLED_BACK = (RolledBackError, RuntimeInconsistency)


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


def entry_data(entry: Entry, revision: int | None) -> bytes:
    return history.encode_entry(entry.fields, revision)


class Plan:
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

    def note_partless(self) -> None:
        """Once committed: remember which records now hold no parts, at which version
        (their next update then needs no listing of parts to remove)."""
        known = self.conn.partless
        for op in self.ops:
            if isinstance(op, Delete):
                known.pop(op.path, None)
        for path, (version, _data) in self.after.items():
            if self.nodes[path].parts is None:
                known[path] = version
            else:
                known.pop(path, None)

    def groups(self) -> list[list[tuple]]:
        return group_ops(self.conn, self._znode_ops())

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
                out.append(("create", op.path, entry_data(op, revision), None))
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


def group_ops(conn: ZkWriter, ops: list[tuple]) -> list[list[tuple]]:
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


class Raced(Exception):
    """The first transaction met a concurrent change; nothing was written: plan again."""


def run_groups(conn: ZkWriter, groups: list[list[tuple]]) -> None:
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
                  if isinstance(r, Exception) and not isinstance(r, ROLLED_BACK)]
        if not failed and len(results) == len(group):
            continue
        op, err = failed[0] if failed else (group[0], RuntimeInconsistency())
        if isinstance(err, RACES) and k == 0:
            raise Raced(op[1])
        done = (f"; {k} of {len(groups)} transactions were already committed (each record "
                f"is whole, new records stay invisible until saved again)" if k else
                "; nothing was written")
        message = (f"ZooKeeper refused to {op[0]} {op[1]}: {type(err).__name__} "
                   f"(changed concurrently?){done}")
        if isinstance(err, BadVersionError):
            raise Conflict(message, record=op[1])
        raise StorageFailure(message)
