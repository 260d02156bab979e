"""update_flow_details checks only the atoms its flow knows changed (counts, not times).

A flow keeps the set of its atoms that may differ from what it last wrote
(fed by the atoms' bookkeeping), so a flow update costs what changed, not the
flow's size.  These tests count what a flow update looks at and writes, and
cover the ways an atom can stop matching the store without the flow hearing
of it through an assignment: shared by a copy, rolled back, refreshed,
added, stamped by another store, pickled.
"""

from __future__ import annotations

import contextlib
import copy
import pickle

import pytest
import sqlalchemy as sa

import persistence
from persistence import FlowDetail, LogBook, TaskDetail, states
from persistence.models.base import _Record
from persistence.models.bookkeeping import roll_back, take_bookkeeping, undo_point

ATOMS = 1000


@pytest.fixture(params=["memory", "dir", "sqlite"])
def store(request, tmp_path):
    """Opens a fresh store of the parameter's kind each call (``store()``, ``store()``…)."""
    stack = contextlib.ExitStack()

    def open_store():
        n = len(stack._exit_callbacks)
        conf = {"memory": "memory://",
                "dir": {"connection": "dir", "path": str(tmp_path / f"d{n}")},
                "sqlite": f"sqlite:///{tmp_path}/s{n}.db"}[request.param]
        be = stack.enter_context(persistence.backend(conf))
        conn = stack.enter_context(contextlib.closing(be.get_connection()))
        conn.upgrade()
        return conn

    with stack:
        yield open_store


def _book(atoms: int) -> tuple[LogBook, FlowDetail]:
    book, fd = LogBook("book"), FlowDetail("flow")
    book.add(fd)
    for i in range(atoms):
        ad = TaskDetail(f"task-{i}")
        ad.state = states.PENDING
        fd.add(ad)
    return book, fd


def _stored(conn, fd: FlowDetail, ad: TaskDetail) -> TaskDetail:
    return conn.get_flow_details(fd.uuid).find(ad.uuid)


@pytest.fixture
def changed_reads(monkeypatch):
    """How many times any record's ``changed`` flag is read."""
    count = [0]
    real = _Record.changed

    def counting(self):
        count[0] += 1
        return real.fget(self)
    monkeypatch.setattr(_Record, "changed", property(counting))
    return count


def test_one_changed_atom_of_many_is_the_only_one_looked_at(store, changed_reads):
    conn = store()
    book, fd = _book(ATOMS)
    conn.save_logbook(book)
    conn.update_flow_details(fd)           # nothing changed: no atom looked at
    target = list(fd)[ATOMS // 2]
    target.state = states.RUNNING
    changed_reads[0] = 0
    conn.update_flow_details(fd)
    assert changed_reads[0] <= 2, changed_reads[0]
    assert _stored(conn, fd, target).state == states.RUNNING


def test_path_based_flow_update_writes_the_flow_and_the_changed_atom(tmp_path, monkeypatch):
    for conf in ("memory://", {"connection": "dir", "path": str(tmp_path / "d")}):
        with persistence.backend(conf) as be, contextlib.closing(be.get_connection()) as conn:
            book, fd = _book(ATOMS)
            conn.save_logbook(book)
            target = list(fd)[7]
            target.put(states.SUCCESS, {"n": 7})
            written = []
            monkeypatch.setattr(conn, "_write", _recording(conn._write, written))
            conn.update_flow_details(fd)
            assert sorted(written) == sorted([conn._atom(target.uuid), conn._flow(fd.uuid)])
            assert _stored(conn, fd, target).results == {"n": 7}


def _recording(write, written: list):
    def recording(path, *args, **kwargs):
        written.append(path)
        return write(path, *args, **kwargs)
    return recording


def test_sql_flow_update_sends_one_atom_row(sql_backend):
    rows = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("UPDATE") and "atomdetails" in statement:
            rows.append(len(parameters) if executemany else 1)
    with contextlib.closing(sql_backend.get_connection()) as conn:
        book, fd = _book(ATOMS)
        conn.save_logbook(book)
        target = list(fd)[3]
        target.state = states.FAILURE
        sa.event.listen(sql_backend.engine, "before_cursor_execute", record)
        try:
            conn.update_flow_details(fd)
        finally:
            sa.event.remove(sql_backend.engine, "before_cursor_execute", record)
        assert rows == [1]
        assert _stored(conn, fd, target).state == states.FAILURE


def test_atoms_shared_by_a_copy_are_written_through_either_flow(store):
    here, there = store(), store()
    book, fd = _book(5)
    here.save_logbook(book)
    other_book = LogBook("elsewhere")
    twin = fd.copy()                       # the same atom objects, kept in another store
    other_book.add(twin)
    there.save_logbook(other_book)
    a, b = list(fd)[:2]
    for state in (states.RUNNING, states.SUCCESS):
        a.state = state
        here.update_flow_details(fd)
        there.update_flow_details(twin)    # a is written here, then there
        b.state = state
        there.update_flow_details(twin)
        here.update_flow_details(fd)       # b is written there, then here
        for conn in (here, there):
            assert _stored(conn, fd, a).state == state
            assert _stored(conn, fd, b).state == state


def test_a_rolled_back_atom_still_tells_its_flow(store):
    conn = store()
    book, fd = _book(5)
    conn.save_logbook(book)
    ad = list(fd)[1]
    roll_back(ad, undo_point(ad))          # nothing changed in between
    ad.state = states.RUNNING
    conn.update_flow_details(fd)
    assert _stored(conn, fd, ad).state == states.RUNNING
    point = undo_point(ad)
    ad.state = states.FAILURE
    roll_back(ad, point)                   # as Storage undoes a failed write
    assert ad.state == states.RUNNING
    conn.update_flow_details(fd)
    ad.state = states.SUCCESS
    conn.update_flow_details(fd)
    assert _stored(conn, fd, ad).state == states.SUCCESS


def test_rolled_back_changes_are_written(store):
    conn = store()
    book, fd = _book(3)
    conn.save_logbook(book)
    ad = list(fd)[0]
    ad.state = states.RUNNING
    point = undo_point(ad)                 # changed, not yet written
    ad.state = states.SUCCESS
    roll_back(ad, point)
    conn.update_flow_details(fd)
    assert _stored(conn, fd, ad).state == states.RUNNING


def test_a_refreshed_flow_writes_its_new_atoms_changes(store):
    conn = store()
    book, fd = _book(4)
    conn.save_logbook(book)
    conn.update_flow_details(fd)
    fresh = conn.get_flow_details(fd.uuid)
    fd.update(fresh)                       # as Storage.reload: fresh atom objects
    take_bookkeeping(fd, fresh)
    ad = list(fd)[2]
    ad.state = states.REVERTED
    conn.update_flow_details(fd)
    assert _stored(conn, fd, ad).state == states.REVERTED


def test_atoms_added_to_a_written_flow_are_written(store):
    conn = store()
    book, fd = _book(3)
    conn.save_logbook(book)
    new = TaskDetail("late")
    new.state = states.PENDING
    fd.add(new)
    conn.update_flow_details(fd)
    assert _stored(conn, fd, new).state == states.PENDING
    assert len(conn.get_flow_details(fd.uuid)) == 4


def test_an_atom_stamped_by_another_store_is_written_back(store):
    here, there = store(), store()
    book, fd = _book(3)
    here.save_logbook(book)
    ad = list(fd)[0]
    other_book = LogBook("elsewhere")
    other_book.add(fd.copy())              # shares ad; written to another store
    ad.state = states.RUNNING
    there.save_logbook(other_book)         # ad is now clean, but as stored *there*
    here.update_flow_details(fd)
    assert _stored(here, fd, ad).state == states.RUNNING
    assert _stored(there, fd, ad).state == states.RUNNING


def test_a_flow_written_elsewhere_then_here_writes_what_changed(store):
    here, there = store(), store()
    book, fd = _book(3)
    here.save_logbook(book)
    ad = list(fd)[1]
    ad.state = states.RUNNING
    there.save_logbook(book)
    here.update_flow_details(fd)
    assert _stored(here, fd, ad).state == states.RUNNING


def test_merged_atoms_are_written(store):
    conn = store()
    book, fd = _book(3)
    conn.save_logbook(book)
    ad = list(fd)[0]
    other = ad.copy()
    other.put(states.SUCCESS, 42)
    ad.merge(other)
    conn.update_flow_details(fd)
    assert _stored(conn, fd, ad).results == 42


@pytest.mark.parametrize("clone", [lambda fd: pickle.loads(pickle.dumps(fd)), copy.deepcopy],
                         ids=["pickle", "deepcopy"])
def test_pickled_and_deep_copied_flows_write_their_changes(store, clone):
    conn = store()
    book, fd = _book(3)
    conn.save_logbook(book)
    conn.update_flow_details(fd)
    twin = clone(fd)
    ad = list(twin)[2]
    ad.state = states.RUNNING
    conn.update_flow_details(twin)
    assert _stored(conn, fd, ad).state == states.RUNNING
    ad.state = states.SUCCESS
    conn.update_flow_details(twin)
    assert _stored(conn, fd, ad).state == states.SUCCESS


def test_loaded_records_start_clean_and_their_flow_checks_all_once(store, changed_reads):
    conn = store()
    book, fd = _book(50)
    conn.save_logbook(book)
    loaded = conn.get_flow_details(fd.uuid)
    assert not any(ad.__dict__["_bk"].changed for ad in loaded)
    changed_reads[0] = 0
    conn.update_flow_details(loaded)       # not known which changed: each is checked
    assert changed_reads[0] >= 50
    ad = list(loaded)[4]
    ad.state = states.RUNNING
    changed_reads[0] = 0
    conn.update_flow_details(loaded)
    assert changed_reads[0] <= 2
    assert _stored(conn, fd, ad).state == states.RUNNING
