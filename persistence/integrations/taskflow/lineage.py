"""Which stored revision a TaskFlow object was read or saved at.

Our records carry a revision, and a write of a record read from a store is
conditional on it, so a stale writer gets a Conflict instead of overwriting
newer data.  TaskFlow's objects have nowhere to keep a revision, and its
``Storage`` never saves the object it holds: it copies it (``copy.copy``),
changes the copy, saves the copy and takes the returned object's fields over
(``update()``), throwing the copy away.  A revision stored *as an attribute*
would therefore be lost after the first save, and one kept in a per-uuid
table of the backend would mix up every object of the process that has that
uuid (a second backend instance, a user's own copy loaded earlier).

So each TaskFlow object read or saved through the plugin gets a small mutable
:class:`Link` in its ``__dict__``.  A shallow copy shares the link, and the
objects a save returns are given the link of the object saved, so an object,
its copies and what its saves return form one *lineage* that sees its
revision advance together.  Two lineages of one record (loaded twice, or in
two processes) are independent: after one writes, the other is stale.

An object without a link of the store written to (built by the application,
deep-copied, unpickled, or read from another store) has no expectation: its
write merges into what is stored now, as TaskFlow's own backends do, and is
conditional only on the revision that merge read.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Link", "link_of", "known", "bind", "share"]

_ATTR = "_persistence_link"


class Link:
    """The store, revision and (atoms only) our record a lineage was last at."""

    __slots__ = ("store", "revision", "record")

    def __init__(self, store: object = None, revision: int | None = None,
                 record: Any = None) -> None:
        self.store = store
        self.revision = revision
        self.record = record

    def __deepcopy__(self, memo: dict) -> Link:
        # A deep copy is a new lineage at the same revision; it re-reads the
        # record before its first write instead of sharing ours.
        return Link(self.store, self.revision, None)

    def __reduce__(self) -> tuple:
        # Pickled objects (sent to another process) carry no expectation.
        return (Link, ())

    def __repr__(self) -> str:
        return f"<Link revision={self.revision}>"


def link_of(obj: Any) -> Link | None:
    """The link of a TaskFlow object, or None if it has none."""
    return getattr(obj, "__dict__", {}).get(_ATTR)


def known(obj: Any, store: object) -> Link | None:
    """The link of ``obj`` if it was read or saved through ``store``, else None."""
    link = link_of(obj)
    return link if link is not None and link.store is store else None


def bind(obj: Any, store: object, record: Any, keep_record: bool = False) -> None:
    """Record that ``obj``'s lineage is now at ``record``'s revision in ``store``;
    ``keep_record`` keeps the record itself (atoms: their next write needs no read)."""
    link = link_of(obj)
    if link is None:
        link = obj.__dict__[_ATTR] = Link()
    link.store = store
    link.revision = record.revision
    link.record = record if keep_record else None


def share(target: Any, source: Any) -> None:
    """Put ``target`` in ``source``'s lineage (the object a save returns)."""
    link = link_of(source)
    if link is not None:
        target.__dict__[_ATTR] = link
