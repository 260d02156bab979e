"""The dir backend's files: buffered transactions, atomic record files, staged publication.

Every record file is written to a temporary file, fsynced and renamed over
the old one, and its directory fsynced.  See :class:`Transaction` for the
order in which a transaction's writes reach the disk.  A transaction made with
``durable=False`` (an atom's RUNNING mark under at-least-once semantics)
writes and renames the same way without the fsyncs: a killed process loses
nothing of it (the kernel holds it), a power loss may.
"""

from __future__ import annotations

import os
import uuid as _uuid
from typing import Any, Protocol

__all__ = ["RECORD", "STAGING_PREFIX", "Transaction", "last_line", "remove_tree",
           "write_file"]

RECORD = ".record"
#: Name prefix of a new record's directory while it is built (see ``Transaction``).
STAGING_PREFIX = ".new-"


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)



class FileMapper(Protocol):
    """What a transaction needs of the dir connection applying it."""

    def _fs(self, path: str) -> str:
        """The file system path of a store path."""

class Transaction:
    """Buffered writes, applied in order at commit; directories fsynced once each.

    A new record that has links in the same transaction (a flow and its atoms,
    a logbook and its flows) is built in a staging directory ``.new-<id>``
    beside its final place (invisible: readers skip names starting with ``.``)
    and renamed into place once its record and every link are written, so a
    writer killed at any point never publishes half of it.  An existing
    record's new data is written after its new links.  ``upgrade()`` removes
    the staging directories a killed writer left.
    """

    def __init__(self, durable: bool = True) -> None:
        self.ops: list[tuple[str, str, bytes | None]] = []
        self.revisions: dict[str, int] = {}
        #: Whether the writes reach the disk (fsync) before :meth:`apply` returns.
        self.durable = durable

    def _plan(self) -> list[tuple[str, str, Any]]:
        """The ops in publication order; a staged record becomes one ``publish`` op."""
        last_link: dict[str, int] = {}
        for i, (op, path, _) in enumerate(self.ops):
            if op == "link":
                last_link[os.path.dirname(path)] = i
        staged: dict[str, list] = {}   # new record path -> [record op, link names]
        for op, path, data in self.ops:
            if (op in ("write", "logged") and path in last_link and path not in staged
                    and (data if op == "write" else data[0]).startswith(b"1\n")):
                staged[path] = [None, []]
        due: dict[int, list] = {}
        plan: list[tuple[str, str, Any]] = []
        for i, (op, path, data) in enumerate(self.ops):
            parent = os.path.dirname(path)
            if op in ("write", "logged") and path in staged:
                if staged[path][0] is None:   # written once per transaction by the core
                    due.setdefault(max(i, last_link[path]), []).append(
                        ("publish", path, staged[path]))
                staged[path][0] = (op, data)
            elif op == "link" and parent in staged:
                staged[parent][1].append(os.path.basename(path))
            elif op in ("write", "logged") and last_link.get(path, -1) > i:
                due.setdefault(last_link[path], []).append((op, path, data))
            else:
                plan.append((op, path, data))
            plan.extend(due.pop(i, ()))
        return plan

    def apply(self, conn: FileMapper) -> None:
        dirty_dirs: set[str] = set()
        for op, path, data in self._plan():
            target = conn._fs(path)
            parent = os.path.dirname(target)
            if op == "write" or op == "logged":
                if not os.path.isdir(target):
                    os.makedirs(target, exist_ok=True)
                    dirty_dirs.add(parent)
                _write_record(target, op, data, self.durable)
                dirty_dirs.add(target)
            elif op == "publish":
                _publish(target, data)
                dirty_dirs.add(parent)
            elif op == "append":   # an entry without its record (not used by the core)
                write_file(parent, target, data, self.durable)
                dirty_dirs.add(parent)
            elif op == "link":
                if not os.path.exists(target):
                    os.makedirs(parent, exist_ok=True)
                    os.close(os.open(target, os.O_WRONLY | os.O_CREAT, 0o644))
                    dirty_dirs.add(parent)
            else:
                remove_tree(target)
                dirty_dirs.add(parent)
        if not self.durable:
            return
        for directory in dirty_dirs:
            if os.path.isdir(directory):
                _fsync_dir(directory)


def _write_record(target: str, op: str, data: Any, durable: bool = True) -> None:
    """Write a record file in directory ``target`` (``logged``: and its history entry)."""
    record = os.path.join(target, RECORD)
    write_file(target, record, data if op == "write" else data[0], durable)
    if op == "logged":   # the entry: the file just written, under its name
        os.link(record, os.path.join(target, data[1]))


def _publish(target: str, staged: list) -> None:
    """Build a new record with its links in a staging directory, then rename it into place."""
    (op, data), links = staged
    stage = os.path.join(os.path.dirname(target), f"{STAGING_PREFIX}{_uuid.uuid4().hex}")
    os.makedirs(stage)
    _write_record(stage, op, data)
    for name in links:
        os.close(os.open(os.path.join(stage, name), os.O_WRONLY | os.O_CREAT, 0o644))
    _fsync_dir(stage)
    if os.path.isdir(target):   # left by an older writer, never published (no record)
        remove_tree(target)
    os.rename(stage, target)


def write_file(directory: str, final: str, data: bytes, durable: bool = True) -> None:
    """Write ``data`` to a temporary file in ``directory``, fsync it (if ``durable``),
    rename it to ``final``."""
    tmp = os.path.join(directory, f".tmp-{_uuid.uuid4().hex}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, data)
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, final)


def last_line(fh: Any) -> bytes:
    """The last line of a file (an entry file: record header, record, entry)."""
    size = fh.seek(0, os.SEEK_END)
    chunk = 8192
    while True:
        start = max(0, size - chunk)
        fh.seek(start)
        tail = fh.read()
        cut = tail.rfind(b"\n")
        if cut >= 0 or start == 0:
            return tail[cut + 1:]
        chunk *= 8


def remove_tree(path: str) -> None:
    """Delete a record directory (or link file); missing is fine."""
    try:
        os.unlink(path)
        return
    except FileNotFoundError:
        return
    except (IsADirectoryError, PermissionError):
        pass
    with os.scandir(path) as it:
        for entry in it:
            if entry.is_dir(follow_symlinks=False):
                remove_tree(entry.path)
            else:
                os.unlink(entry.path)
    os.rmdir(path)
