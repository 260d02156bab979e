"""Contract part: Storage over the backend (its fingerprints and listeners)."""

from __future__ import annotations

from ..models import states
from ..models.records import FlowDetail, LogBook
from ..runtime.atom import Task
from ..runtime.storage import Storage
from ._support import reopen
from .samples import new_uuid


class StorageContract:
    """What an engine's Storage keeps through this backend."""

    # -- Storage over this backend: fingerprints and listeners ------------------------
    def test_storage_fingerprints_and_listeners_through_the_store(self, backend, conn):
        book = LogBook("storage")
        fd = FlowDetail("flow", new_uuid())
        book.add(fd)
        conn.save_logbook(book)
        atoms = [Task("a", provides="x", requires="seed"), Task("b", requires="x")]
        seen: list = []
        first = Storage(conn.get_flow_details(fd.uuid), backend)
        first.add_listener(seen.append)
        first.ensure_atoms(atoms)
        first.inject({"seed": 1})
        for atom in atoms:
            first.save(atom.name, first.fetch_mapped_args(atom.rebind, atom_name=atom.name))
        first.close()
        assert [(c.name, c.field, c.new) for c in seen] == [
            ("a", "state", states.SUCCESS), ("a", "results", {"seed": 1}),
            ("b", "state", states.SUCCESS), ("b", "results", {"x": {"seed": 1}})]
        resumed = Storage(conn.get_flow_details(fd.uuid), backend)   # from the store
        resumed.ensure_atoms(atoms)
        assert resumed.stale_atoms(atoms) == []
        resumed.inject({"seed": 2})
        assert resumed.stale_atoms(atoms) == ["a", "b"]
        assert resumed.invalidate_stale(atoms) == ["a", "b"]
        resumed.close()
        with reopen(backend) as other:
            stored = {ad.name: ad.state for ad in other.get_flow_details(fd.uuid)}
        assert stored == {"a": states.PENDING, "b": states.PENDING,
                          Storage.injector_name: states.SUCCESS}
