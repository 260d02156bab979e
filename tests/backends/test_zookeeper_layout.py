"""ZooKeeper backend: what is stored where, revisions as znode versions, and how
records that are still being written (empty znodes) or damaged look to readers."""

from __future__ import annotations

import json
import uuid

import pytest

import persistence
from persistence import states
from persistence.exceptions import Conflict, NotFound, SerializationError

pytest.importorskip("kazoo")


def _book() -> persistence.LogBook:
    book = persistence.LogBook("book")
    fd = persistence.FlowDetail("flow", str(uuid.uuid4()))
    fd.add(persistence.TaskDetail("task", str(uuid.uuid4())))
    book.add(fd)
    return book


def test_layout_and_revisions_are_znode_versions(backend_zookeeper, zookeeper_admin):
    be, admin = backend_zookeeper, zookeeper_admin
    book = _book()
    fd = next(iter(book))
    ad = next(iter(fd))
    with be.get_connection() as conn:
        conn.save_logbook(book)
        assert admin.get_children(f"{be.path}/books/{book.uuid}") == [fd.uuid]
        links, entries = [], []
        for name in admin.get_children(f"{be.path}/flow_details/{fd.uuid}"):
            (entries if name.startswith(".h-") else links).append(name)
        assert links == [ad.uuid] and len(entries) == 1   # its history entry
        entry = json.loads(admin.get(f"{be.path}/flow_details/{fd.uuid}/{entries[0]}")[0])
        assert (entry["uuid"], entry["kind"], entry["revision"]) == (fd.uuid, "flow", 1)
        data, stat = admin.get(f"{be.path}/atom_details/{ad.uuid}")
        assert json.loads(data)["uuid"] == ad.uuid
        assert stat.version == ad.revision == 1
        for _ in range(3):
            ad.put(states.SUCCESS, "again")
            conn.update_atom_details(ad)
        assert admin.get(f"{be.path}/atom_details/{ad.uuid}")[1].version == ad.revision == 4
        # The server itself refuses a write based on an older version.
        admin.set(f"{be.path}/atom_details/{ad.uuid}", data)
        ad.put(states.SUCCESS, "stale")
        with pytest.raises(Conflict) as info:
            conn.update_atom_details(ad)
        assert (info.value.expected, info.value.found) == (4, 5)


def test_saving_an_owned_record_that_was_deleted_conflicts(backend_zookeeper):
    book = persistence.LogBook("alone")
    with backend_zookeeper.get_connection() as conn:
        conn.save_logbook(book)
        conn.destroy_logbook(book.uuid)
        with pytest.raises(Conflict):
            conn.save_logbook(book)


def test_empty_znodes_are_records_being_written(backend_zookeeper, zookeeper_admin):
    be, admin = backend_zookeeper, zookeeper_admin
    book = _book()
    fd = next(iter(book))
    ad = next(iter(fd))
    # What a writer killed half-way leaves: empty record znodes, some links.
    admin.create(f"{be.path}/atom_details/{ad.uuid}", b"")
    admin.create(f"{be.path}/flow_details/{fd.uuid}/{ad.uuid}", b"", makepath=True)
    admin.create(f"{be.path}/books/{book.uuid}/{fd.uuid}", b"", makepath=True)
    with be.get_connection() as conn:
        assert list(conn.get_logbooks()) == []
        for read in (conn.get_logbook, conn.get_flows_for_book):
            with pytest.raises(NotFound):
                read(book.uuid)
        for read in (conn.get_flow_details, conn.get_atoms_for_flow):
            with pytest.raises(NotFound):
                read(fd.uuid)
        with pytest.raises(NotFound):
            conn.get_atom_details(ad.uuid)
        with pytest.raises(NotFound):
            conn.update_atom_details(ad)
        # Saving the logbook completes what was started.
        conn.save_logbook(book)
    with be.get_connection() as conn:
        got = conn.get_logbook(book.uuid)
        assert got.find(fd.uuid).find(ad.uuid).name == "task"


def test_damaged_parts_are_a_serialization_error_naming_the_record(backend_zookeeper,
                                                                    zookeeper_admin):
    be = backend_zookeeper
    path = f"{be.path}/atom_details/{uuid.uuid4()}"
    header = b'\x00zk-chunks:{"gen":"gone","parts":2,"size":10,"crc":1}'
    zookeeper_admin.create(path, header)
    with be.get_connection() as conn, pytest.raises(SerializationError) as info:
        conn.get_atom_details(path.rsplit("/", 1)[1])
    assert path in str(info.value)
    zookeeper_admin.set(path, b"\x00something else")
    with be.get_connection() as conn, pytest.raises(SerializationError) as info:
        conn.get_atom_details(path.rsplit("/", 1)[1])
    assert path in str(info.value)
