"""The ``dir`` (alias ``file``) backend: one directory per record on local disk.

Durable on one machine and safe across processes: writers hold an
inter-process lock, and every record is written to a temporary file, fsynced,
renamed over the old one and its directory fsynced, so a process killed at
any instant leaves the old record or the new one, never a torn file.
Decoded files are kept in an LRU cache, checked against the file's inode,
size and mtime, so other processes' writes are always seen.

Example configuration::

    fetch({"connection": "dir", "path": "/var/lib/myapp/flows", "max_cache_size": 1024})
    fetch("file:///var/lib/myapp/flows?max_cache_size=0")

``path`` defaults to ``$XDG_DATA_HOME/persistence`` (``~/.local/share/persistence``).
Each record file holds its revision on the first line and the JSON record after it.
A write that records history puts its entry on a third line of the new record
file, and after renaming it into place hard-links it as ``.h-<time>-<id>`` in
the record's directory: no extra fsync (the one of the directory covers both
names), at the price of disk space, since each entry keeps the whole record as
that write left it.  A crash between the rename and the link loses that one
entry; it never shows an entry for a write that did not happen.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections.abc import Iterator
from typing import Any

import cachetools
import fasteners

from ..exceptions import ConfigurationError, NotFound, SerializationError, StorageFailure
from ..models import history
from .base import store_token
from .dirfiles import RECORD, STAGING_PREFIX, Transaction, last_line, remove_tree
from .pathbased.connection import PathBasedBackend, PathBasedConnection, next_revision
from .pathbased.lifecycle import HISTORY_PREFIX

__all__ = ["STAGING_PREFIX", "DirBackend", "DirConnection", "default_path"]



def default_path() -> str:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"),
                                                           ".local", "share")
    return os.path.join(base, "persistence")


class _Lock:
    """Thread- and process-exclusive lock, re-entrant within a thread."""

    def __init__(self, path: str) -> None:
        self._thread_lock = threading.RLock()
        self._process_lock = fasteners.InterProcessLock(path)
        self._depth = 0

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        with self._thread_lock:
            if self._depth == 0:
                if not self._process_lock.acquire(timeout=60):
                    raise StorageFailure(f"could not lock {self._process_lock.path!r} "
                                         f"within 60 s: another process holds it")
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._process_lock.release()


_LOCKS: weakref.WeakValueDictionary[str, _Lock] = weakref.WeakValueDictionary()
_LOCKS_GUARD = threading.Lock()


def _shared_lock(path: str) -> _Lock:
    """One lock per lock file in this process: POSIX file locks do not exclude
    two holders in one process, so backends on one directory share the object."""
    key = os.path.realpath(path)
    with _LOCKS_GUARD:
        lock = _LOCKS.get(key)
        if lock is None:
            lock = _LOCKS[key] = _Lock(key)
        return lock


class DirBackend(PathBasedBackend):
    """A durable backend storing each record as a file under ``path``."""

    OPTIONS = {"path": str, "max_cache_size": int, "history": bool}

    def __init__(self, conf: dict[str, Any] | None = None) -> None:
        conf = dict(conf or {})
        if conf.get("host"):
            raise ConfigurationError(
                f"a dir/file URI names a local directory and takes no host (got "
                f"{conf['host']!r}): write file:///absolute/path, with three slashes")
        if not conf.get("path"):
            conf["path"] = default_path()
        super().__init__(conf)
        self._path = os.path.abspath(self._path)
        # Every backend of this process on this directory shares the token.
        self.token = store_token(f"dir:{os.path.realpath(self._path)}")
        size = self._options.get("max_cache_size", 1024)
        if size < 0:
            raise ValueError(f"max_cache_size must be >= 0, not {size}")
        self.file_cache: cachetools.LRUCache | None = cachetools.LRUCache(size) if size else None
        self._cache_lock = threading.Lock()
        self._lock: _Lock | None = None
        self._lock_guard = threading.Lock()

    @property
    def lock(self) -> _Lock:
        with self._lock_guard:
            if self._lock is None:
                try:
                    os.makedirs(self._path, exist_ok=True)
                except OSError as err:
                    raise StorageFailure(f"cannot create directory {self._path!r}: "
                                         f"{err.strerror}") from err
                self._lock = _shared_lock(os.path.join(self._path, ".lock"))
            return self._lock

    def get_connection(self) -> DirConnection:
        return DirConnection(self)

    def store_exists(self) -> bool:
        """Whether the ``books`` directory exists (looked at, nothing locked or made)."""
        return os.path.isdir(os.path.join(self.path, "books"))

    def close(self) -> None:
        if self.file_cache is not None:
            with self._cache_lock:
                self.file_cache.clear()


class DirConnection(PathBasedConnection):
    #: A write that need not be durable skips its fsyncs (see dirfiles.Transaction).
    writes_nowait = True
    _purge_pauses = True   # writers of other processes poll for the lock
    def __init__(self, backend: DirBackend) -> None:
        super().__init__(backend, "/")
        self._root = backend.path
        self._cache = backend.file_cache
        self._cache_lock = backend._cache_lock

    def _fs(self, path: str) -> str:
        return os.path.join(self._root, path.lstrip("/"))

    def _where(self, path: str) -> str:
        return os.path.join(self._fs(path), RECORD)

    # -- reads -----------------------------------------------------------
    def _read(self, path: str) -> tuple[bytes, int]:
        file = os.path.join(self._fs(path), RECORD)
        try:
            st = os.stat(file)
        except FileNotFoundError:
            raise NotFound(f"nothing stored at {path}") from None
        except OSError as err:
            raise StorageFailure(f"cannot read {file}: {err.strerror}") from err
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        if self._cache is not None:
            hit = self._cache.get(file)
            if hit is not None and hit[0] == key:
                return hit[1]
        try:
            with open(file, "rb") as fh:
                raw = fh.read()
        except FileNotFoundError:
            raise NotFound(f"nothing stored at {path}") from None
        except OSError as err:
            raise StorageFailure(f"cannot read {file}: {err.strerror}") from err
        header, sep, data = raw.partition(b"\n")
        if not sep or not header.isdigit():
            raise SerializationError(f"record file {file} is corrupt or truncated "
                                     f"(no revision header)")
        # A JSON record holds no raw newline: a third line is its history entry.
        value = (data.partition(b"\n")[0], int(header))
        if self._cache is not None:
            with self._cache_lock:
                self._cache[file] = (key, value)
        return value

    def _children(self, path: str) -> list[str]:
        try:
            with os.scandir(self._fs(path)) as it:
                return sorted(e.name for e in it if not e.name.startswith("."))
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"nothing stored at {path}") from None
        except OSError as err:
            raise StorageFailure(f"cannot list {self._fs(path)}: {err.strerror}") from err

    def _exists(self, path: str) -> bool:
        return os.path.exists(self._fs(path))

    def _revision(self, path: str) -> int:
        try:
            return self._read(path)[1]
        except NotFound:
            return 0

    # -- writes ----------------------------------------------------------
    def _write(self, path: str, data: bytes, txn: Transaction, *, create: bool,
               expected_revision: int | None) -> int:
        current = txn.revisions.get(path)
        if current is None:
            current = self._revision(path)
        revision = next_revision(path, current, create=create,
                                 expected_revision=expected_revision)
        txn.revisions[path] = revision
        txn.ops.append(("write", path, b"%d\n" % revision + data))
        return revision

    def _link(self, path: str, txn: Transaction) -> None:
        txn.ops.append(("link", path, None))

    # -- history entries: plain files beside the record file ---------------
    def _append(self, record_path: str, fields: dict[str, Any], revision: Any,
                txn: Transaction) -> None:
        name = HISTORY_PREFIX + history.entry_name(fields["at_ns"])
        entry = history.encode_entry(fields, revision if isinstance(revision, int) else None)
        op, path, data = txn.ops[-1]
        if op == "write" and path == record_path:   # always so: the core logs right after
            txn.ops[-1] = ("logged", path, (data + b"\n" + entry, name))
        else:
            txn.ops.append(("append", self._join(record_path, name), entry))

    def _history_names(self, record_paths: list[str]) -> list[list[str]]:
        out = []
        for path in record_paths:
            try:
                with os.scandir(self._fs(path)) as it:
                    out.append(sorted(e.name for e in it if e.name.startswith(HISTORY_PREFIX)))
            except (FileNotFoundError, NotADirectoryError):
                out.append([])
            except OSError as err:
                raise StorageFailure(f"cannot list {self._fs(path)}: {err.strerror}") from err
        return out

    def _read_entries(self, paths: list[str]) -> list[bytes | None]:
        out: list[bytes | None] = []
        for path in paths:
            try:
                with open(self._fs(path), "rb") as fh:
                    out.append(last_line(fh))
            except FileNotFoundError:
                out.append(None)
            except OSError as err:
                raise StorageFailure(f"cannot read {self._fs(path)}: {err.strerror}") from err
        return out

    def _delete(self, path: str, txn: Transaction) -> None:
        txn.ops.append(("delete", path, None))

    def _ensure_dir(self, path: str) -> None:
        try:
            os.makedirs(self._fs(path), exist_ok=True)
        except OSError as err:
            raise StorageFailure(f"cannot create {self._fs(path)}: {err.strerror}") from err

    @contextlib.contextmanager
    def _transaction(self, durable: bool = True) -> Iterator[Transaction]:
        with self.backend.lock.held():
            txn = Transaction(durable)
            yield txn
            try:
                txn.apply(self)
            except OSError as err:
                raise StorageFailure(f"cannot write under {self._root}: "
                                     f"{err.strerror} ({err.filename})") from err

    def _reading(self) -> contextlib.AbstractContextManager[Any]:
        if not os.path.isdir(self._root):   # nothing to read: create nothing (no lock file)
            return contextlib.nullcontext()
        return self.backend.lock.held()

    def upgrade(self) -> None:
        """Create the layout and remove what killed writers left: temporary files,
        staging directories and record directories that never got their record.

        Safe under the writer lock: no write is in flight while it is held.
        """
        with self.backend.lock.held():
            super().upgrade()
            for directory, dirs, files in os.walk(self._root):
                for name in files:
                    if name.startswith(".tmp-"):
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(os.path.join(directory, name))
                for name in [d for d in dirs if d.startswith(STAGING_PREFIX)]:
                    remove_tree(os.path.join(directory, name))
                    dirs.remove(name)
            for kind in (self.book_path, self.flow_path, self.atom_path):
                with os.scandir(self._fs(kind)) as it:
                    unpublished = [e.path for e in it if e.is_dir(follow_symlinks=False)
                                   and not e.name.startswith(".")
                                   and not os.path.exists(os.path.join(e.path, RECORD))]
                for path in unpublished:
                    remove_tree(path)
