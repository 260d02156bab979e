"""The ``memory`` backend: everything in a process-local fake filesystem.

Nothing survives the process; useful for tests and for engines that need no
durability.  Records are stored encoded, exactly as durable backends store
them, so what works here works there (and callers cannot mutate stored data
through objects they hold).

Example configuration::

    fetch("memory://")
    fetch({"connection": "memory"})
"""

from __future__ import annotations

import contextlib
import posixpath
from collections.abc import Iterator
from typing import Any

from ..exceptions import NotFound
from ..models import history
from .fakefs import FakeFilesystem
from .pathbased.connection import PathBasedBackend, PathBasedConnection, next_revision
from .pathbased.lifecycle import HISTORY_PREFIX

__all__ = ["FakeFilesystem", "MemoryBackend", "MemoryConnection"]

class MemoryBackend(PathBasedBackend):
    """A non-durable backend in a :class:`FakeFilesystem` shared by its connections."""

    DEFAULT_PATH = "/"

    def __init__(self, conf: dict[str, Any] | None = None) -> None:
        super().__init__(conf)
        self.memory = FakeFilesystem()

    def get_connection(self) -> MemoryConnection:
        return MemoryConnection(self)

    def store_exists(self) -> bool:
        """A fresh memory store is an empty one, never a missing one."""
        return True

    def close(self) -> None:
        """Nothing to release; data stays until the backend is garbage collected."""


class _Transaction:
    """Writes buffered until commit, so a failure half-way writes nothing."""

    __slots__ = ("ops", "revisions")

    def __init__(self) -> None:
        self.ops: list[tuple] = []
        self.revisions: dict[str, int] = {}


def _publication_order(ops: list[tuple]) -> list[tuple]:
    """``ops`` with each record's value (and its history entries) set after the links
    below it: readers hold the lock out while a transaction applies, and a writer
    stopped half-way (an exception raised into its thread) leaves nodes without a
    value, which every reader takes for absent, never a half-linked record."""
    last_link = {posixpath.dirname(op[1]): i for i, op in enumerate(ops)
                 if op[0].__name__ == "_ensure"}
    if not last_link:
        return ops
    out: list[tuple] = []
    due: dict[int, list[tuple]] = {}
    moving: tuple[str, int] | None = None   # (record path, where its value goes)
    for i, op in enumerate(ops):
        name, path = op[0].__name__, op[1]
        if name == "_set" and last_link.get(path, -1) > i:
            moving = (path, last_link[path])
            due.setdefault(moving[1], []).append(op)
        elif name == "_add_leaf" and moving is not None and path == moving[0]:
            due[moving[1]].append(op)   # its history entry goes with it
        else:
            moving = None
            out.append(op)
        out.extend(due.pop(i, ()))
    return out


class MemoryConnection(PathBasedConnection):
    def __init__(self, backend: MemoryBackend) -> None:
        super().__init__(backend, FakeFilesystem.normpath(backend.path))
        self._fs = backend.memory

    def _read(self, path: str) -> tuple[bytes, int]:
        lock = self._fs.lock
        lock.acquire_read()
        try:
            node = self._fs._nodes.get(path)
        finally:
            lock.release_read()
        if node is None or node[0] is None:
            raise NotFound(f"nothing stored at {path}")
        return node[0], node[1]

    def _read_many(self, paths: list[str]) -> list[tuple[bytes, int] | None]:
        with self._fs.lock.read_lock():
            nodes = self._fs._nodes
            return [None if (n := nodes.get(p)) is None or n[0] is None else (n[0], n[1])
                    for p in paths]

    def _children(self, path: str) -> list[str]:
        return self._fs.ls(path)

    def _exists(self, path: str) -> bool:
        return path in self._fs._nodes

    def _write(self, path: str, data: bytes, txn: _Transaction, *, create: bool,
               expected_revision: int | None) -> int:
        current = txn.revisions.get(path)
        if current is None:
            node = self._fs._nodes.get(path)
            current = 0 if node is None else node[1]
            if node is not None and node[0] is None and node[2]:
                # Links an interrupted save left below a record it never set: the
                # record gets this save's links only.
                txn.ops.append((self._fs._delete, path))
        revision = next_revision(path, current, create=create,
                                 expected_revision=expected_revision)
        txn.revisions[path] = revision
        txn.ops.append((self._fs._set, path, data, revision))
        return revision

    def _write_single(self, path: str, data: bytes, *, create: bool,
                      expected_revision: int | None) -> int:
        with self._fs.lock.write_lock():
            node = self._fs._nodes.get(path)
            revision = next_revision(path, 0 if node is None else node[1], create=create,
                                     expected_revision=expected_revision)
            self._fs._set(path, data, revision)
        return revision

    def _write_single_logged(self, path: str, data: bytes, expected_revision: int | None,
                             log: Any) -> int:
        fs = self._fs
        lock = fs.lock
        lock.acquire_write()   # the hot path: no guard object
        try:
            node = fs._nodes.get(path)
            revision = next_revision(path, 0 if node is None else node[1], create=False,
                                     expected_revision=expected_revision)
            txn = _Transaction()
            log(revision, txn)
            fs._set(path, data, revision)
            for op in txn.ops:
                op[0](*op[1:])
        finally:
            lock.release_write()
        return revision

    def _append(self, record_path: str, fields: dict[str, Any], revision: Any,
                txn: _Transaction) -> None:
        # Kept as the dict itself: it is built for this entry only and never
        # handed out (readers get a HistoryEntry built from it).
        fields["revision"] = revision
        txn.ops.append((self._fs._add_leaf, record_path,
                        HISTORY_PREFIX + history.entry_name(fields["at_ns"]), fields))

    def _link(self, path: str, txn: _Transaction) -> None:
        txn.ops.append((self._fs._ensure, path))

    def _delete(self, path: str, txn: _Transaction) -> None:
        txn.ops.append((self._fs._delete, path))

    def _ensure_dir(self, path: str) -> None:
        self._fs.ensure_path(path)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[_Transaction]:
        with self._fs.lock.write_lock():
            txn = _Transaction()
            yield txn
            for op, *args in _publication_order(txn.ops):
                op(*args)

    def _reading(self) -> contextlib.AbstractContextManager[Any]:
        return self._fs.lock.read_lock()
