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

from .. import history
from .._rwlock import ReaderWriterLock
from ..exceptions import NotFound
from ..path_based import PathBasedBackend, PathBasedConnection, next_revision
from ..path_lifecycle import HISTORY_PREFIX

__all__ = ["FakeFilesystem", "MemoryBackend", "MemoryConnection"]

_MISSING = object()


class FakeFilesystem:
    """An in-memory tree of posix paths, each holding a value and a revision.

    Safe for concurrent threads: reads share a reader/writer lock, writes hold
    it exclusively.  Paths are absolute posix paths (``posixpath``, whatever
    the OS).

    >>> fs = FakeFilesystem()
    >>> fs.ensure_path("/a/b/c")
    >>> fs["/a/b/c"] = "d"
    >>> fs["/a/b/c"]
    'd'
    >>> del fs["/a/b/c"]
    >>> fs.ls("/a/b")
    []
    >>> fs.get("/a/b/c", "blob")
    'blob'
    """

    root_path = posixpath.sep

    def __init__(self) -> None:
        self.lock = ReaderWriterLock()
        # path -> [value, revision, {child name: None}] (dict keeps insertion order)
        self._nodes: dict[str, list] = {self.root_path: [None, 0, {}]}

    @staticmethod
    def normpath(path: str) -> str:
        if not isinstance(path, str) or not path.startswith(posixpath.sep):
            raise ValueError(f"path must be an absolute posix path, not {path!r}")
        return posixpath.normpath(path).replace("//", "/")

    @staticmethod
    def split(path: str) -> tuple[str, str]:
        """Split into (head, tail), as ``posixpath.split``."""
        return posixpath.split(path)

    def _node(self, path: str) -> list:
        try:
            return self._nodes[path]
        except KeyError:
            raise NotFound(f"path {path!r} does not exist") from None

    def ensure_path(self, path: str) -> None:
        """Create ``path`` and any missing parents (values None)."""
        path = self.normpath(path)
        with self.lock.write_lock():
            self._ensure(path)

    def _ensure(self, path: str) -> list:
        node = self._nodes.get(path)
        if node is None:
            head, tail = posixpath.split(path)
            self._ensure(head)[2][tail] = None
            node = self._nodes[path] = [None, 0, {}]
        return node

    def get(self, path: str, default: Any = None) -> Any:
        path = self.normpath(path)
        with self.lock.read_lock():
            node = self._nodes.get(path)
        return default if node is None else node[0]

    def revision(self, path: str) -> int:
        with self.lock.read_lock():
            return self._node(self.normpath(path))[1]

    def __getitem__(self, path: str) -> Any:
        with self.lock.read_lock():
            return self._node(self.normpath(path))[0]

    def __setitem__(self, path: str, value: Any) -> None:
        path = self.normpath(path)
        with self.lock.write_lock():
            self._set(path, value)

    def _set(self, path: str, value: Any, revision: int | None = None) -> None:
        node = self._nodes.get(path)
        if node is None:
            head, tail = posixpath.split(path)
            self._node(head)[2][tail] = None
            node = self._nodes[path] = [None, 0, {}]
        node[0] = value
        node[1] = node[1] + 1 if revision is None else revision

    def _add_leaf(self, parent: str, name: str, value: Any) -> None:
        """Add a new child ``name`` holding ``value`` below the existing ``parent``."""
        self._nodes[parent][2][name] = None
        self._nodes[f"{parent}/{name}"] = [value, 1, {}]

    def __delitem__(self, path: str) -> None:
        path = self.normpath(path)
        with self.lock.write_lock():
            self._node(path)
            self._delete(path)

    def _delete(self, path: str) -> None:
        node = self._nodes.pop(path, None)
        if node is None:
            return
        for child in node[2]:
            self._delete(posixpath.join(path, child))
        head, tail = posixpath.split(path)
        parent = self._nodes.get(head)
        if parent is not None:
            parent[2].pop(tail, None)

    def __contains__(self, path: str) -> bool:
        return self.normpath(path) in self._nodes

    def ls(self, path: str) -> list[str]:
        """Names of the children of ``path``."""
        with self.lock.read_lock():
            return list(self._node(self.normpath(path))[2])

    def clear(self) -> None:
        """Remove everything below the root."""
        with self.lock.write_lock():
            self._nodes = {self.root_path: [None, 0, {}]}

    def __iter__(self) -> Iterator[str]:
        with self.lock.read_lock():
            return iter(sorted(self._nodes))


class MemoryBackend(PathBasedBackend):
    """A non-durable backend in a :class:`FakeFilesystem` shared by its connections."""

    DEFAULT_PATH = "/"

    def __init__(self, conf: dict[str, Any] | None = None) -> None:
        super().__init__(conf)
        self.memory = FakeFilesystem()

    def get_connection(self) -> MemoryConnection:
        return MemoryConnection(self)

    def close(self) -> None:
        """Nothing to release; data stays until the backend is garbage collected."""


class _Transaction:
    """Writes buffered until commit, so a failure half-way writes nothing."""

    __slots__ = ("ops", "revisions")

    def __init__(self) -> None:
        self.ops: list[tuple] = []
        self.revisions: dict[str, int] = {}


class MemoryConnection(PathBasedConnection):
    def __init__(self, backend: MemoryBackend) -> None:
        super().__init__(backend, FakeFilesystem.normpath(backend.path))
        self._fs = backend.memory

    def _read(self, path: str) -> tuple[bytes, int]:
        with self._fs.lock.read_lock():
            node = self._fs._nodes.get(path)
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
        with self._fs.lock.write_lock():
            node = self._fs._nodes.get(path)
            revision = next_revision(path, 0 if node is None else node[1], create=False,
                                     expected_revision=expected_revision)
            txn = _Transaction()
            log(revision, txn)
            self._fs._set(path, data, revision)
            for op, *args in txn.ops:
                op(*args)
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
            for op, *args in txn.ops:
                op(*args)

    def _reading(self) -> contextlib.AbstractContextManager[Any]:
        return self._fs.lock.read_lock()
