"""TaskFlow's ``dir`` store, read without changing a byte of it.

Layout written by TaskFlow's dir backend under its root path::

    books/<uuid>/metadata           logbook JSON; symlinks named by flow uuid beside it
    flow_details/<uuid>/metadata    flow detail JSON; symlinks named by atom uuid
    atom_details/<uuid>/metadata    {"atom": {...}, "type": "TASK_DETAIL"}
    <each record dir>/lock          TaskFlow's inter-process lock file

Links are only read for their names (their targets are absolute paths, which
break when a store is moved or copied).  TaskFlow rewrites a record's
``metadata`` in place (truncate, then write) while it holds the record's
``lock`` exclusively; this reader takes a *shared* lock on an existing lock
file, opened read-only, so nothing is created or modified and a TaskFlow
process still writing to the store is never read half-way.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from typing import Any

from ...exceptions import StorageFailure
from . import convert
from .errors import NoTaskFlowStore
from .paths import KINDS, OURS, PathTaskFlowConnection

__all__ = ["DirTaskFlowConnection"]


@contextlib.contextmanager
def _shared_lock(directory: str) -> Iterator[None]:
    try:
        fd = os.open(os.path.join(directory, "lock"), os.O_RDONLY)
    except FileNotFoundError:  # never locked by TaskFlow
        yield
        return
    try:
        fcntl.lockf(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # closing releases the lock


class DirTaskFlowConnection(PathTaskFlowConnection):
    """Reads the TaskFlow dir store at ``root``, whose files are in ``encoding``."""

    def __init__(self, backend: Any, root: str, encoding: str = "utf-8") -> None:
        super().__init__(backend, root)
        self._root = root
        self._encoding = encoding

    def validate(self) -> None:
        if not os.path.isdir(self._root):
            raise NoTaskFlowStore(f"no TaskFlow store at {self._root}: no such directory")
        missing = [k for k in KINDS if not os.path.isdir(os.path.join(self._root, k))]
        if missing:
            raise NoTaskFlowStore(f"no TaskFlow store at {self._root}: "
                                  f"{', '.join(k + '/' for k in missing)} missing (TaskFlow's "
                                  f"dir backend keeps books/, flow_details/ and atom_details/)")
        if any(os.path.isdir(os.path.join(self._root, k)) for k in OURS):
            raise NoTaskFlowStore(
                f"no TaskFlow store at {self._root}: it is a persistence dir store (it has "
                f"{'/, '.join(OURS)}/); read it as file://{self._root}, without taskflow+")

    def _fetch(self, kind: str, uuid: str) -> tuple[Any, str]:
        directory = os.path.join(self._root, kind, uuid)
        path = os.path.join(directory, "metadata")
        try:
            with _shared_lock(directory), open(path, "rb") as fh:
                return fh.read(), path
        except FileNotFoundError:
            if os.path.exists(os.path.join(directory, ".record")):
                convert.Where(f"record {uuid}", directory).fail(
                    "it is in persistence's own dir format, not TaskFlow's")
            return None, path
        except OSError as err:
            raise StorageFailure(f"cannot read {path}: {err.strerror}") from err

    def _decode(self, raw: Any, where: convert.Where) -> Any:
        try:
            text = raw.decode(self._encoding)
        except (UnicodeDecodeError, LookupError) as err:
            where.fail(f"it is not {self._encoding} text ({err})")
        return convert.decode_json(text, where, "the file")

    def _list(self, kind: str, uuid: str | None = None) -> list[str] | None:
        path = os.path.join(self._root, kind, uuid) if uuid else os.path.join(self._root, kind)
        try:
            with os.scandir(path) as entries:
                # Record dirs in books/ (TaskFlow lists directories there); links elsewhere.
                return sorted(e.name for e in entries if not e.name.startswith(".") and (
                    e.is_symlink() if uuid else e.is_dir(follow_symlinks=False)))
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as err:
            raise StorageFailure(f"cannot list {path}: {err.strerror}") from err

    def _link_location(self, kind: str, parent: str, uuid: str) -> str:
        return os.path.join(self._root, kind, parent, uuid)
