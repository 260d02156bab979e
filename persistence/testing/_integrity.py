"""Contract part 3: failed writes write nothing; stale and concurrent writers lose nothing."""

from __future__ import annotations

import threading

import pytest

from ..exceptions import Conflict, NotFound, SerializationError, StorageFailure
from ..models import states
from ..models.records import FlowDetail, LogBook, TaskDetail
from ._support import assert_not_stored, reopen, same_atom, same_book, same_flow, two_writers
from .samples import make_book, new_uuid

ESCAPING_UUIDS = ["../x", "a/b", "\x00", "x\x00y", "..", "/abs", "a\\b"]

THREADS = 6
UPDATES = 15


class _Unserializable:
    def __repr__(self) -> str:
        return "<unserializable>"


def _first_task(book: LogBook) -> TaskDetail:
    return next(ad for fd in book for ad in fd if isinstance(ad, TaskDetail))


def _saved_task(conn) -> TaskDetail:
    """The task detail of a logbook of one flow and one task, saved through ``conn``."""
    book = make_book(flows=1, atoms=1)
    conn.save_logbook(book)
    return _first_task(book)


class IntegrityContract:
    """Stale writes conflict, bad values and bad uuids are refused, threads are safe."""

    # -- stale writers -------------------------------------------------------
    def test_stale_atom_write_conflicts_and_writes_nothing(self, backend, conn):
        uuid = _saved_task(conn).uuid
        with two_writers(backend, uuid) as (a, first, b, second):
            first.put(states.SUCCESS, "first")
            second.put(states.SUCCESS, "second")
            a.update_atom_details(first)
            with pytest.raises(Conflict):
                b.update_atom_details(second)
        with reopen(backend) as other:
            got = other.get_atom_details(uuid)
            assert got.results == "first"
            assert got.revision == first.revision

    def test_stale_flow_write_conflicts_and_writes_none_of_its_atoms(self, backend, conn):
        book = make_book(flows=1, atoms=3)
        conn.save_logbook(book)
        fd_uuid = next(iter(book)).uuid
        with reopen(backend) as a, reopen(backend) as b:
            first, second = a.get_flow_details(fd_uuid), b.get_flow_details(fd_uuid)
            names = sorted(ad.name for ad in first)
            first_atom = next(ad for ad in first if ad.name == names[0])
            first_atom.put(states.SUCCESS, "from first")
            first.state = states.SUCCESS
            a.update_flow_details(first)
            # The stale copy changes a *different* atom and adds a new one.
            other_atom = next(ad for ad in second if ad.name == names[1])
            other_atom.put(states.SUCCESS, "from second")
            second.add(TaskDetail("added by stale writer", new_uuid()))
            second.state = states.FAILURE
            with pytest.raises(Conflict):
                b.update_flow_details(second)
        with reopen(backend) as other:
            same_flow(other.get_flow_details(fd_uuid), first)
            assert other.get_atom_details(other_atom.uuid).results != "from second"
            assert len(list(other.get_atoms_for_flow(fd_uuid))) == 3

    def test_stale_logbook_write_conflicts_and_writes_nothing(self, backend, conn):
        book = make_book(flows=1, atoms=1)
        conn.save_logbook(book)
        with reopen(backend) as a, reopen(backend) as b:
            first, second = a.get_logbook(book.uuid), b.get_logbook(book.uuid)
            first.meta["writer"] = "first"
            a.save_logbook(first)
            second.name = "stale"
            second.add(FlowDetail("stale flow", new_uuid()))
            with pytest.raises(Conflict):
                b.save_logbook(second)
        with reopen(backend) as other:
            got = other.get_logbook(book.uuid)
            assert (got.name, got.meta["writer"]) == (book.name, "first")
            assert len(got) == 1

    def test_reload_after_conflict_then_write_succeeds(self, backend, conn):
        uuid = _saved_task(conn).uuid
        with two_writers(backend, uuid) as (a, first, b, second):
            first.put(states.SUCCESS, 1)
            a.update_atom_details(first)
            second.put(states.SUCCESS, 2)
            with pytest.raises(Conflict):
                b.update_atom_details(second)
            fresh = b.get_atom_details(uuid)
            fresh.put(states.SUCCESS, 3)
            b.update_atom_details(fresh)
        with reopen(backend) as other:
            assert other.get_atom_details(uuid).results == 3

    # -- values that cannot be stored ----------------------------------------
    def test_unserializable_result_in_new_logbook_writes_nothing(self, backend, conn):
        book = make_book(flows=2, atoms=2)
        _first_task(book).put(states.SUCCESS, {"bad": _Unserializable()})
        with pytest.raises(SerializationError) as info:
            conn.save_logbook(book)
        assert isinstance(info.value, StorageFailure)
        with reopen(backend) as other:
            assert list(other.get_logbooks()) == []
            assert_not_stored(other, book)

    def test_unserializable_value_in_saved_logbook_writes_nothing(self, backend, conn):
        book = make_book(flows=1, atoms=2)
        conn.save_logbook(book)
        with reopen(backend) as other:
            before = other.get_logbook(book.uuid)
        book.meta["changed"] = True
        _first_task(book).put(states.SUCCESS, "would be written")
        bad_flow = FlowDetail("bad", new_uuid())
        bad_atom = TaskDetail("bad", new_uuid())
        bad_atom.meta["set"] = {1, 2}
        bad_flow.add(bad_atom)
        book.add(bad_flow)
        with pytest.raises(SerializationError):
            conn.save_logbook(book)
        with reopen(backend) as other:
            same_book(other.get_logbook(book.uuid), before)
            with pytest.raises(NotFound):
                other.get_flow_details(bad_flow.uuid)

    def test_unserializable_update_flow_details_writes_nothing(self, backend, conn):
        book = make_book(flows=1, atoms=3)
        conn.save_logbook(book)
        fd = next(iter(book))
        with reopen(backend) as other:
            before = other.get_flow_details(fd.uuid)
        good, bad = [ad for ad in fd if isinstance(ad, TaskDetail)][:2]
        good.put(states.SUCCESS, "would be written")
        bad.put(states.SUCCESS, [object()])
        fd.state = states.SUCCESS
        fd.add(TaskDetail("new", new_uuid()))
        with pytest.raises(SerializationError):
            conn.update_flow_details(fd)
        with reopen(backend) as other:
            same_flow(other.get_flow_details(fd.uuid), before)

    def test_unserializable_update_atom_details_writes_nothing(self, backend, conn):
        ad = _saved_task(conn)
        with reopen(backend) as other:
            before = other.get_atom_details(ad.uuid)
        ad.put(states.SUCCESS, _Unserializable())
        with pytest.raises(SerializationError):
            conn.update_atom_details(ad)
        with reopen(backend) as other:
            same_atom(other.get_atom_details(ad.uuid), before)

    # -- uuids that would escape a directory ------------------------------------
    @pytest.mark.parametrize("bad", ESCAPING_UUIDS, ids=repr)
    def test_escaping_uuids_are_refused_and_nothing_is_written(self, backend, conn, bad):
        as_book = make_book(flows=1, atoms=1)
        as_book.uuid = bad
        as_flow = make_book(flows=1, atoms=1)
        as_flow.add(FlowDetail("bad flow", bad))
        as_atom = make_book(flows=1, atoms=1)
        next(iter(as_atom)).add(TaskDetail("bad atom", bad))
        for book in (as_book, as_flow, as_atom):
            with pytest.raises(ValueError):
                conn.save_logbook(book)
        saved = make_book(flows=1, atoms=1)
        conn.save_logbook(saved)
        with pytest.raises(ValueError):
            conn.update_flow_details(FlowDetail("bad flow", bad))
        with pytest.raises(ValueError):
            conn.update_atom_details(TaskDetail("bad atom", bad))
        with reopen(backend) as other:
            assert [b.uuid for b in other.get_logbooks()] == [saved.uuid]
            same_book(other.get_logbook(saved.uuid), saved)
            for get in (other.get_logbook, other.get_flow_details, other.get_atom_details):
                with pytest.raises((ValueError, NotFound)):
                    get(bad)

    # -- concurrency ------------------------------------------------------------
    @pytest.mark.parametrize("shared", [False, True], ids=["own-connections", "one-connection"])
    def test_threads_updating_atoms_of_one_flow_lose_nothing(self, backend, conn, shared):
        book = LogBook("threads")
        fd = FlowDetail("flow", new_uuid())
        atoms = [TaskDetail(f"t{i}", new_uuid()) for i in range(THREADS)]
        for ad in atoms:
            fd.add(ad)
        book.add(fd)
        conn.save_logbook(book)
        errors: list[BaseException] = []
        start = threading.Barrier(THREADS)

        def work(ad: TaskDetail) -> None:
            own = None if shared else backend.get_connection()
            try:
                start.wait(timeout=30)
                for n in range(UPDATES):
                    ad.put(states.SUCCESS, {"atom": ad.name, "n": n})
                    ad.meta["n"] = n
                    (own or conn).update_atom_details(ad)
            except BaseException as err:  # reported below, in the test's thread
                errors.append(err)
            finally:
                if own is not None:
                    own.close()

        threads = [threading.Thread(target=work, args=(ad,)) for ad in atoms]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not any(t.is_alive() for t in threads), "worker threads hung"
        assert errors == []
        with reopen(backend) as other:
            got = other.get_logbook(book.uuid).find(fd.uuid)
            assert len(got) == THREADS
            for ad in atoms:
                stored = got.find(ad.uuid)
                assert stored.results == {"atom": ad.name, "n": UPDATES - 1}
                assert stored.meta["n"] == UPDATES - 1
                assert stored.revision == ad.revision

    def test_threads_saving_logbooks_lose_nothing(self, backend):
        books = [make_book(flows=2, atoms=2, name=f"b{i}") for i in range(THREADS)]
        errors: list[BaseException] = []

        def work(book: LogBook) -> None:
            try:
                with reopen(backend) as own:
                    own.save_logbook(book)
                    for ad in (ad for fd in book for ad in fd if isinstance(ad, TaskDetail)):
                        ad.put(states.SUCCESS, book.name)
                        own.update_atom_details(ad)
            except BaseException as err:
                errors.append(err)

        threads = [threading.Thread(target=work, args=(b,)) for b in books]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert errors == []
        with reopen(backend) as other:
            got = {b.uuid: b for b in other.get_logbooks()}
            assert sorted(got) == sorted(b.uuid for b in books)
            for book in books:
                same_book(got[book.uuid], book)
