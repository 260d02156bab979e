"""FakeFilesystem: an in-memory tree of posix paths, the memory backend's store.

Also what TaskFlow's ``impl_memory.FakeFilesystem`` offers (links, recursive
listing and deletion, copies in and out), so code written against that one
runs on this one.
"""

from __future__ import annotations

import collections
import copy
import posixpath
from collections.abc import Iterator
from typing import Any

from .._rwlock import ReaderWriterLock
from ..exceptions import NotFound

__all__ = ["FakeFilesystem"]


class _Link:
    """The value of a symlink node: where its value is read from."""

    __slots__ = ("target",)

    def __init__(self, target: str) -> None:
        self.target = target


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

    def __init__(self, deep_copy: bool = True) -> None:
        # Values given and handed out through the mapping API are copies, so
        # callers cannot change what is stored through objects they hold.
        self._copy = copy.deepcopy if deep_copy else copy.copy
        self.lock = ReaderWriterLock()
        # path -> [value, revision, {child name: None}] (dict keeps insertion order)
        self._nodes: dict[str, list] = {self.root_path: [None, 0, {}]}

    @staticmethod
    def normpath(path: str) -> str:
        if not isinstance(path, str) or not path.startswith(posixpath.sep):
            raise ValueError(f"path must be an absolute posix path, not {path!r}")
        return posixpath.normpath(path).replace("//", "/")

    #: Split into (head, tail): ``posixpath.split`` itself.
    split = staticmethod(posixpath.split)

    @staticmethod
    def join(*pieces: str) -> str:
        """Join path pieces, as ``posixpath.join``."""
        return posixpath.join(*pieces)

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
        """The value at ``path`` (links followed, a copy), or ``default`` if none."""
        try:
            return self[path]
        except NotFound:
            return default

    def revision(self, path: str) -> int:
        with self.lock.read_lock():
            return self._node(self.normpath(path))[1]

    def __getitem__(self, path: str) -> Any:
        seen: list[str] = []
        path = self.normpath(path)
        with self.lock.read_lock():
            value = self._node(path)[0]
            while isinstance(value, _Link):
                if value.target in seen:
                    raise ValueError(f"links loop: {' -> '.join(seen + [value.target])}")
                seen.append(value.target)
                value = self._node(value.target)[0]
        return self._copy(value)

    def __setitem__(self, path: str, value: Any) -> None:
        path = self.normpath(path)
        value = self._copy(value)
        with self.lock.write_lock():
            self._set(path, value)

    def symlink(self, src_path: str, dest_path: str) -> None:
        """Make ``dest_path`` a link whose value is read from ``src_path``."""
        src_path, dest_path = self.normpath(src_path), self.normpath(dest_path)
        with self.lock.write_lock():
            self._set(dest_path, _Link(src_path))

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

    def ls(self, path: str, absolute: bool = False) -> list[str]:
        """Names of the children of ``path`` (their full paths with ``absolute=True``)."""
        path = self.normpath(path)
        with self.lock.read_lock():
            names = list(self._node(path)[2])
        return [self.join(path, n) for n in names] if absolute else names

    def ls_r(self, path: str, absolute: bool = False) -> list[str]:
        """Every path below ``path``, breadth first, newest sibling first at each level
        (as TaskFlow's); relative to ``path`` unless ``absolute``."""
        path = self.normpath(path)
        found: list[str] = []
        with self.lock.read_lock():
            queue = collections.deque(self.join(path, n) for n in reversed(self._node(path)[2]))
            while queue:
                current = queue.popleft()
                found.append(current)
                queue.extend(self.join(current, n) for n in reversed(self._nodes[current][2]))
        if absolute:
            return found
        return [p[len(path):].lstrip(posixpath.sep) for p in found]

    def delete(self, path: str, recursive: bool = False) -> None:
        """Delete ``path``; ``recursive=True`` also what is below it (ValueError otherwise
        when there is something).  Deleting the root recursively empties the tree."""
        path = self.normpath(path)
        with self.lock.write_lock():
            node = self._node(path)
            if node[2] and not recursive:
                raise ValueError(f"cannot delete {path!r}: it has {len(node[2])} children")
            if path == self.root_path:
                if not recursive:
                    raise ValueError("cannot delete the root")
                self._nodes = {self.root_path: [None, 0, {}]}
                return
            self._delete(path)

    def pformat(self) -> str:
        """The tree as indented text (links shown with their target)."""
        lines: list[str] = []

        def walk(path: str, depth: int) -> None:
            value = self._nodes[path][0]
            name = path if depth == 0 else posixpath.basename(path)
            suffix = f" (link to {value.target})" if isinstance(value, _Link) else ""
            lines.append("  " * depth + name + suffix)
            for child in self._nodes[path][2]:
                walk(self.join(path, child), depth + 1)
        with self.lock.read_lock():
            walk(self.root_path, 0)
        return "\n".join(lines)

    def clear(self) -> None:
        """Remove everything below the root."""
        with self.lock.write_lock():
            self._nodes = {self.root_path: [None, 0, {}]}

    def __iter__(self) -> Iterator[str]:
        with self.lock.read_lock():
            return iter(sorted(self._nodes))
