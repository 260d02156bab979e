"""Contract part 2: every Connection method, its merge semantics and its NotFound cases."""

from __future__ import annotations

import pytest

from ..exceptions import NotFound
from ..models import states
from ..models.records import FlowDetail, LogBook, RetryDetail, TaskDetail
from ._support import assert_not_stored, reopen, same_atom, same_book, same_flow
from .samples import make_book, new_uuid


def _uuids(records) -> list[str]:
    return sorted(r.uuid for r in records)


class ConnectionContract:
    """The Connection API as the spec describes it."""

    def test_fresh_backend_is_empty_and_valid(self, conn):
        conn.validate()
        assert list(conn.get_logbooks()) == []
        assert list(conn.get_logbooks(lazy=True)) == []

    def test_upgrade_is_idempotent_and_keeps_data(self, backend, conn):
        book = make_book()
        conn.save_logbook(book)
        conn.upgrade()
        conn.upgrade()
        conn.validate()
        with reopen(backend) as other:
            other.upgrade()
            same_book(other.get_logbook(book.uuid), book)

    def test_save_logbook_saves_everything_in_it(self, backend, conn):
        book = make_book(flows=3, atoms=4)
        assert conn.save_logbook(book).uuid == book.uuid
        with reopen(backend) as other:
            same_book(other.get_logbook(book.uuid), book)
            assert _uuids(other.get_flows_for_book(book.uuid)) == _uuids(book)
            for fd in book:
                same_flow(other.get_flow_details(fd.uuid), fd)
                assert _uuids(other.get_atoms_for_flow(fd.uuid)) == _uuids(fd)
                for ad in fd:
                    same_atom(other.get_atom_details(ad.uuid), ad)
            types = sorted(type(ad).__name__ for fd in other.get_logbook(book.uuid) for ad in fd)
            assert types == ["RetryDetail"] * 3 + ["TaskDetail"] * 9

    def test_save_logbook_again_adds_new_flows_and_keeps_old(self, backend, conn):
        book = make_book(flows=1)
        conn.save_logbook(book)
        (first,) = list(book)
        second = FlowDetail("second", new_uuid())
        second.add(TaskDetail("t2", new_uuid()))
        book.add(second)
        conn.save_logbook(book)
        # A different object for the same logbook, holding only a third flow.
        again = LogBook("renamed", uuid=book.uuid)
        third = FlowDetail("third", new_uuid())
        third.add(TaskDetail("t3", new_uuid()))
        again.add(third)
        conn.save_logbook(again)
        with reopen(backend) as other:
            got = other.get_logbook(book.uuid)
            assert _uuids(got) == sorted([first.uuid, second.uuid, third.uuid])
            assert got.name == "renamed"
            same_flow(got.find(first.uuid), first)
            same_flow(got.find(second.uuid), second)
            same_flow(got.find(third.uuid), third)

    def test_save_logbook_again_writes_changed_atoms(self, backend, conn):
        book = make_book()
        conn.save_logbook(book)
        fd = next(iter(book))
        ad = next(ad for ad in fd if isinstance(ad, TaskDetail))
        ad.put(states.SUCCESS, {"second": "save"})
        fd.state = states.SUCCESS
        book.meta["saved"] = 2
        conn.save_logbook(book)
        with reopen(backend) as other:
            same_book(other.get_logbook(book.uuid), book)
            assert other.get_atom_details(ad.uuid).results == {"second": "save"}

    def test_lazy_loads_return_containers_without_children(self, backend, conn):
        book = make_book(flows=2, atoms=2)
        conn.save_logbook(book)
        with reopen(backend) as other:
            lazy = other.get_logbook(book.uuid, lazy=True)
            assert len(lazy) == 0 and list(lazy) == []
            same_book(lazy, book, flows=False)
            (listed,) = list(other.get_logbooks(lazy=True))
            assert len(listed) == 0
            same_book(listed, book, flows=False)
            for fd in book:
                lazy_fd = other.get_flow_details(fd.uuid, lazy=True)
                assert len(lazy_fd) == 0
                same_flow(lazy_fd, fd, atoms=False)
            for lazy_fd in other.get_flows_for_book(book.uuid, lazy=True):
                assert len(lazy_fd) == 0
            for full_fd in other.get_flows_for_book(book.uuid):
                same_flow(full_fd, book.find(full_fd.uuid))

    def test_get_logbooks_returns_every_book(self, backend, conn):
        books = [make_book(flows=1, atoms=2, name=f"book-{i}") for i in range(4)]
        for book in books:
            conn.save_logbook(book)
        with reopen(backend) as other:
            got = {b.uuid: b for b in other.get_logbooks()}
            assert sorted(got) == _uuids(books)
            for book in books:
                same_book(got[book.uuid], book)

    def test_update_flow_details_writes_changed_atoms_and_adds_new_ones(self, backend, conn):
        book = make_book(flows=1, atoms=3)
        conn.save_logbook(book)
        with reopen(backend) as other:
            fd = other.get_flow_details(next(iter(book)).uuid)
        by_name = {ad.name: ad for ad in fd}
        changed, unchanged = by_name["task-0-0"], by_name["task-0-1"]
        changed.put(states.SUCCESS, {"updated": ["✓"]})
        new = RetryDetail("new retry", new_uuid())
        new.put(states.SUCCESS, 7)
        fd.add(new)
        fd.state = states.SUCCESS
        fd.meta["updated"] = True
        assert conn.update_flow_details(fd) is not None
        with reopen(backend) as other:
            got = other.get_flow_details(fd.uuid)
            same_flow(got, fd)
            assert got.find(changed.uuid).results == {"updated": ["✓"]}
            same_atom(got.find(unchanged.uuid), unchanged)
            same_atom(other.get_atom_details(new.uuid), new)
            assert _uuids(other.get_atoms_for_flow(fd.uuid)) == _uuids(fd)
            same_flow(other.get_logbook(book.uuid).find(fd.uuid), fd)

    def test_update_flow_details_from_a_new_object_keeps_stored_atoms(self, backend, conn):
        book = make_book(flows=1, atoms=2)
        conn.save_logbook(book)
        (old,) = list(book)
        replacement = FlowDetail("replaced", old.uuid)
        replacement.state = states.FAILURE
        added = TaskDetail("added", new_uuid())
        replacement.add(added)
        conn.update_flow_details(replacement)
        with reopen(backend) as other:
            got = other.get_flow_details(old.uuid)
            assert (got.name, got.state) == ("replaced", states.FAILURE)
            assert _uuids(got) == sorted(_uuids(old) + [added.uuid])

    def test_update_flow_details_of_unsaved_logbook_is_not_found(self, backend, conn):
        fd = FlowDetail("orphan", new_uuid())
        fd.add(TaskDetail("t", new_uuid()))
        with pytest.raises(NotFound):
            conn.update_flow_details(fd)
        with reopen(backend) as other:
            with pytest.raises(NotFound):
                other.get_flow_details(fd.uuid)
            with pytest.raises(NotFound):
                other.get_atom_details(next(iter(fd)).uuid)

    def test_update_atom_details(self, backend, conn):
        book = make_book(flows=1, atoms=2)
        conn.save_logbook(book)
        ad = next(ad for ad in next(iter(book)) if isinstance(ad, TaskDetail))
        ad.put(states.SUCCESS, {"v": 2})
        ad.meta["progress"] = 1.0
        assert conn.update_atom_details(ad).uuid == ad.uuid
        with reopen(backend) as other:
            same_atom(other.get_atom_details(ad.uuid), ad)
            same_book(other.get_logbook(book.uuid), book)

    def test_update_atom_details_of_unsaved_flow_is_not_found(self, backend, conn):
        orphan = TaskDetail("orphan", new_uuid())
        with pytest.raises(NotFound):
            conn.update_atom_details(orphan)
        # An atom added to a saved flow but never saved itself is not found either.
        book = make_book(flows=1, atoms=1)
        conn.save_logbook(book)
        late = TaskDetail("late", new_uuid())
        next(iter(book)).add(late)
        with pytest.raises(NotFound):
            conn.update_atom_details(late)
        with reopen(backend) as other:
            for uuid in (orphan.uuid, late.uuid):
                with pytest.raises(NotFound):
                    other.get_atom_details(uuid)
            assert _uuids(other.get_atoms_for_flow(next(iter(book)).uuid)) == \
                [ad.uuid for ad in next(iter(book)) if ad is not late]

    def test_destroy_logbook_removes_it_and_everything_in_it(self, backend, conn):
        doomed, kept = make_book(name="doomed"), make_book(name="kept")
        conn.save_logbook(doomed)
        conn.save_logbook(kept)
        conn.destroy_logbook(doomed.uuid)
        with reopen(backend) as other:
            assert _uuids(other.get_logbooks()) == [kept.uuid]
            same_book(other.get_logbook(kept.uuid), kept)
            assert_not_stored(other, doomed)
        with pytest.raises(NotFound):
            conn.destroy_logbook(doomed.uuid)

    def test_missing_records_are_not_found(self, conn):
        conn.save_logbook(make_book())
        missing = new_uuid()
        calls = {
            "destroy_logbook": lambda: conn.destroy_logbook(missing),
            "get_logbook": lambda: conn.get_logbook(missing),
            "get_logbook(lazy=True)": lambda: conn.get_logbook(missing, lazy=True),
            "get_flows_for_book": lambda: list(conn.get_flows_for_book(missing)),
            "get_flow_details": lambda: conn.get_flow_details(missing),
            "get_flow_details(lazy=True)": lambda: conn.get_flow_details(missing, lazy=True),
            "get_atoms_for_flow": lambda: list(conn.get_atoms_for_flow(missing)),
            "get_atom_details": lambda: conn.get_atom_details(missing),
        }
        for name, call in calls.items():
            try:
                call()
            except NotFound:
                continue
            pytest.fail(f"{name} of a missing uuid did not raise NotFound")

    def test_clear_all_removes_everything_and_backend_stays_usable(self, backend, conn):
        books = [make_book(), make_book()]
        for book in books:
            conn.save_logbook(book)
        conn.clear_all()
        conn.validate()
        with reopen(backend) as other:
            assert list(other.get_logbooks()) == []
            for book in books:
                assert_not_stored(other, book)
        again = make_book()
        conn.save_logbook(again)
        with reopen(backend) as other:
            same_book(other.get_logbook(again.uuid), again)

    def test_revisions_increase_with_every_write(self, backend, conn):
        book = make_book(flows=1, atoms=1)
        fd = next(iter(book))
        ad = next(iter(fd))
        assert (book.revision, fd.revision, ad.revision) == (None, None, None)
        conn.save_logbook(book)
        first = (book.revision, fd.revision, ad.revision)
        assert all(isinstance(r, int) and r >= 1 for r in first), first
        assert not book.changed and not fd.changed and not ad.changed
        with reopen(backend) as other:
            got = other.get_logbook(book.uuid)
            assert got.revision == book.revision
            assert got.find(fd.uuid).revision == fd.revision
            assert other.get_atom_details(ad.uuid).revision == ad.revision
        seen = [ad.revision]
        for i in range(3):
            ad.put(states.SUCCESS, i)
            conn.update_atom_details(ad)
            seen.append(ad.revision)
        assert seen == sorted(set(seen)), seen
        fd.state = states.SUCCESS
        conn.update_flow_details(fd)
        assert fd.revision > first[1]
        book.meta["again"] = 1
        conn.save_logbook(book)
        assert book.revision > first[0]
        with reopen(backend) as other:
            got = other.get_logbook(book.uuid)
            assert got.revision == book.revision
            assert got.find(fd.uuid).revision == fd.revision
            assert got.find(fd.uuid).find(ad.uuid).revision == ad.revision

    def test_loaded_and_saved_objects_do_not_share_state_with_the_store(self, backend, conn):
        book = make_book(flows=1, atoms=1)
        ad = next(iter(next(iter(book))))
        ad.results = {"rows": [1, 2]}
        conn.save_logbook(book)
        ad.results["rows"].append(3)  # in place, never saved
        book.meta["unsaved"] = True
        loaded = conn.get_atom_details(ad.uuid)
        loaded.results["rows"].append(4)
        with reopen(backend) as other:
            assert other.get_atom_details(ad.uuid).results == {"rows": [1, 2]}
            assert "unsaved" not in other.get_logbook(book.uuid).meta
        assert conn.get_atom_details(ad.uuid).results == {"rows": [1, 2]}

    def test_closed_connection_leaves_data_for_new_ones(self, backend):
        book = make_book()
        with reopen(backend) as first:
            first.save_logbook(book)
        with reopen(backend) as second:
            same_book(second.get_logbook(book.uuid), book)
