"""Whether a persistence store exists at a backend, found out without creating anything.

Read-only tools (``persistence ls``, ``show``, ``validate``, a ``migrate``
source…) must not leave a file, a directory or a lock behind when pointed at
a typo.  Opening a sqlite file creates it and the dir backend makes its
directory on first lock, so the question is answered before any of that:
from the file system for files, from the schema's version table for SQL
servers, from the layout's root node for ZooKeeper.
"""

from __future__ import annotations

from ..backends.base import Backend
from ..exceptions import NotFound

__all__ = ["StoreMissing", "store_exists", "require_store", "missing"]


class StoreMissing(NotFound):
    """There is no persistence store where a read-only operation looked for one."""


def store_exists(backend: Backend) -> bool | None:
    """True or False when this backend can tell without writing; None when it cannot
    (each backend answers through its ``store_exists()``)."""
    own = getattr(backend, "store_exists", None)
    if not callable(own):
        return None
    found = own()
    return None if found is None else bool(found)


def missing(where: str) -> StoreMissing:
    """The error for no store at ``where`` (a masked URI), naming the command that
    creates one."""
    return StoreMissing(f"no persistence store at {where} (run `persistence upgrade "
                        f"{where}` to create one)")


def require_store(backend: Backend, where: str) -> None:
    """StoreMissing unless a store is at ``where``."""
    if store_exists(backend) is False:
        raise missing(where)
