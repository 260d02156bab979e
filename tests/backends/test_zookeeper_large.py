"""ZooKeeper backend: any size.  A flow of 10,000 atoms and a 5 MB result against a
real server (~1 MiB per request), values split over parts, saves split over
transactions, and no parts left behind when values shrink, grow or go away."""

from __future__ import annotations

import threading
import uuid

import pytest

import persistence
from persistence import states
from persistence.exceptions import Conflict, NotFound
from persistence.testing._support import reopen, same_book

pytest.importorskip("kazoo")

MB = 1024 * 1024


def _tree(admin, path: str) -> list[str]:
    """Every znode below ``path`` (relative names), depth first."""
    out = []
    for name in sorted(admin.get_children(path)):
        out.append(name)
        out.extend(f"{name}/{below}" for below in _tree(admin, f"{path}/{name}"))
    return out


def _parts(admin, be, atom_uuid: str) -> list[str]:
    path = f"{be.path}/atom_details/{atom_uuid}/.chunks"
    return sorted(admin.get_children(path)) if admin.exists(path) else []


def _book_with(atoms: int, result=lambda i: {"i": i}) -> persistence.LogBook:
    book = persistence.LogBook("big")
    fd = persistence.FlowDetail("flow", str(uuid.uuid4()))
    for i in range(atoms):
        ad = persistence.TaskDetail(f"task-{i}", str(uuid.uuid4()))
        ad.put(states.SUCCESS, result(i))
        fd.add(ad)
    book.add(fd)
    return book


def test_flow_of_10000_atoms(zookeeper_backend_factory, zookeeper_admin):
    be = zookeeper_backend_factory()
    book = _book_with(10_000, lambda i: {"i": i, "pad": "x" * 64})
    fd = next(iter(book))
    with be.get_connection() as conn:
        conn.save_logbook(book)
        assert {ad.revision for ad in fd} == {1}
    with reopen(be) as other:
        got = other.get_logbook(book.uuid)
        same_book(got, book)
    # Change 100 of them and add one: only those are written, in one call.
    changed = list(fd)[::100]
    for ad in changed:
        ad.put(states.SUCCESS, {"changed": ad.name})
    extra = persistence.TaskDetail("extra", str(uuid.uuid4()))
    fd.add(extra)
    with be.get_connection() as conn:
        conn.update_flow_details(fd)
    assert {ad.revision for ad in changed} == {2}
    with reopen(be) as other:
        got = other.get_flow_details(fd.uuid)
        assert len(got) == 10_001
        for ad in changed:
            assert got.find(ad.uuid).results == {"changed": ad.name}
        other.destroy_logbook(book.uuid)
    for name in ("books", "flow_details", "atom_details"):
        assert zookeeper_admin.get_children(f"{be.path}/{name}") == []


def test_5mb_result_round_trips_and_leaves_no_parts_behind(zookeeper_backend_factory,
                                                           zookeeper_admin):
    be = zookeeper_backend_factory()
    big = "".join(chr(0x41 + i % 26) for i in range(5 * MB))
    book = _book_with(1, lambda i: big)
    ad = next(iter(next(iter(book))))
    with be.get_connection() as conn:
        conn.save_logbook(book)
    first_parts = _parts(zookeeper_admin, be, ad.uuid)
    assert len(first_parts) >= 10  # 5 MB in 512 KiB parts
    with reopen(be) as other:
        assert other.get_atom_details(ad.uuid).results == big
        same_book(other.get_logbook(book.uuid), book)
    # Another large value: a new generation of parts replaces the old one.
    ad.put(states.SUCCESS, {"again": big[::-1]})
    with be.get_connection() as conn:
        conn.update_atom_details(ad)
    second_parts = _parts(zookeeper_admin, be, ad.uuid)
    assert second_parts and not set(second_parts) & set(first_parts)
    # A small value: the parts go away.
    ad.put(states.SUCCESS, "small")
    with be.get_connection() as conn:
        conn.update_atom_details(ad)
    assert _parts(zookeeper_admin, be, ad.uuid) == []
    assert not zookeeper_admin.exists(f"{be.path}/atom_details/{ad.uuid}/.chunks")
    with reopen(be) as other:
        assert other.get_atom_details(ad.uuid).results == "small"
        assert other.get_atom_details(ad.uuid).revision == 3
        other.destroy_logbook(book.uuid)
    assert zookeeper_admin.get_children(f"{be.path}/atom_details") == []


def test_large_flow_and_logbook_records(zookeeper_backend_factory, zookeeper_admin):
    """Flows and logbooks (which have link children) split their own values too."""
    be = zookeeper_backend_factory(chunk_size=2000, max_request_bytes=8192)
    book = _book_with(30, lambda i: "r" * (i * 150))
    book.meta["blob"] = "m" * 9000
    fd = next(iter(book))
    fd.meta["blob"] = "f" * 7000
    with be.get_connection() as conn:
        conn.save_logbook(book)
    with reopen(be) as other:
        same_book(other.get_logbook(book.uuid), book)
        assert [f.uuid for f in other.get_flows_for_book(book.uuid)] == [fd.uuid]
        assert len(list(other.get_atoms_for_flow(fd.uuid))) == 30
    fd.meta["blob"] = "small"
    with be.get_connection() as conn:
        conn.update_flow_details(fd)
    tree = _tree(zookeeper_admin, f"{be.path}/flow_details/{fd.uuid}")
    # No parts left (history entries, .h-*, are leaves of their record).
    assert not [n for n in tree if n.startswith(".") and not n.startswith(".h-")]
    with reopen(be) as other:
        same_book(other.get_logbook(book.uuid), book)


def test_saves_split_over_many_transactions_still_conflict_before_writing(
        zookeeper_backend_factory):
    be = zookeeper_backend_factory(chunk_size=1000, max_request_bytes=5096)
    book = _book_with(40, lambda i: "v" * 2500)
    fd = next(iter(book))
    with be.get_connection() as conn:
        conn.save_logbook(book)
    with reopen(be) as a, reopen(be) as b:
        mine, theirs = a.get_flow_details(fd.uuid), b.get_flow_details(fd.uuid)
        atoms = sorted(mine, key=lambda ad: ad.name)
        last = atoms[-1]
        mine.find(last.uuid).put(states.SUCCESS, "first writer")
        a.update_atom_details(mine.find(last.uuid))
        # The stale copy changes every atom: far more than one transaction.
        for ad in theirs:
            ad.put(states.SUCCESS, "w" * 2500)
        with pytest.raises(Conflict):
            b.update_flow_details(theirs)
    with reopen(be) as other:
        got = other.get_flow_details(fd.uuid)
        for ad in got:
            expected = "first writer" if ad.uuid == last.uuid else "v" * 2500
            assert ad.results == expected


def test_readers_see_old_or_new_value_while_large_values_are_replaced(
        zookeeper_backend_factory):
    be = zookeeper_backend_factory(chunk_size=1500, max_request_bytes=6000)
    values = ["a" * 7000, "b" * 11000, "short"]
    book = _book_with(1, lambda i: values[0])
    ad = next(iter(next(iter(book))))
    with be.get_connection() as conn:
        conn.save_logbook(book)
    seen, errors, done = set(), [], threading.Event()

    def read() -> None:
        try:
            with reopen(be) as reader:
                while not done.is_set():
                    seen.add(reader.get_atom_details(ad.uuid).results)
        except BaseException as err:
            errors.append(err)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        with be.get_connection() as conn:
            for n in range(60):
                ad.put(states.SUCCESS, values[n % 3])
                conn.update_atom_details(ad)
    finally:
        done.set()
        reader.join(timeout=60)
    assert errors == []
    assert seen <= set(values) and seen


def test_record_of_any_size_via_update_atom_details_needs_a_saved_atom(
        zookeeper_backend_factory):
    be = zookeeper_backend_factory(chunk_size=1000, max_request_bytes=5096)
    stray = persistence.TaskDetail("stray", str(uuid.uuid4()))
    stray.put(states.SUCCESS, "z" * 5000)
    with be.get_connection() as conn:
        with pytest.raises(NotFound):
            conn.update_atom_details(stray)
        assert list(conn.get_logbooks()) == []
