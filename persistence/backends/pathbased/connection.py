"""Logbook, flow and atom logic written once over a handful of path primitives.

Layout under a backend's root path::

    books/<book_uuid>            logbook record; children: one link per flow uuid
    flow_details/<flow_uuid>     flow record;    children: one link per atom uuid
    atom_details/<atom_uuid>     atom record
    <record>/.h-<time>-<id>      history entries of a flow or atom record
    snapshots/<snapshot id>      snapshot header (snapshot_data/<id>: its contents)

Children whose names start with ``.`` are never uuids (uuids cannot start
with one): they belong to the record (history, a backend's own parts).
The backend class is in :mod:`.backend`; the primitives and the layout in
:mod:`.primitives`, loading in :mod:`.reads`, saving in :mod:`.writes`;
history, snapshots, summaries, listings and purge in :mod:`.lifecycle`; flow
claims in :mod:`.claims`.  This module puts them together
(``persistence.path_based`` is this module).

A backend implements only the primitives (read, write, children, link,
delete, transaction).  Saves go bottom-up — atoms, then their flow and its
links, then the logbook — so a reader that starts from ``books/`` never
follows a link to a record that is not written yet.  A record is published
when its data is stored: a node without it (a save interrupted before its
record was written) is absent for every reader, links below it included.
Backends whose transactions are not atomic write a new record's data after
its links (dir: a staging directory renamed into place; ZooKeeper: an empty
znode set last), so a logbook or flow detail appears only complete.
"""

from __future__ import annotations

from ..base import Connection
from ..shared import check_component
from .backend import PathBasedBackend
from .claims import PathClaims
from .lifecycle import PathLifecycle
from .primitives import next_revision
from .reads import PathReads
from .writes import PathWrites

__all__ = ["PathBasedBackend", "PathBasedConnection", "check_component", "next_revision"]


class PathBasedConnection(PathWrites, PathReads, PathLifecycle, PathClaims, Connection):
    """Connection implementing the whole Connection API over path primitives."""

    def close(self) -> None:
        """Path-based connections hold nothing of their own."""
