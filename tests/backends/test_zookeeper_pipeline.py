"""ZooKeeper: an atom's result sent behind its own mark, before the mark's answer.

The result's multi first checks the history entry the mark's multi created, so
the result cannot apply when the mark did not — even when another writer left
exactly the version the result expects, which sending both unconditionally
would turn into a lost update.  A result whose mark's entry vanished meanwhile
(a purge) is written again once the mark is known to have applied.
"""

from __future__ import annotations

import logging
import time
import uuid

import pytest

from persistence import FlowDetail, LogBook, TaskDetail, states
from persistence.exceptions import Conflict

pytest.importorskip("kazoo")


def _saved(backend) -> TaskDetail:
    book, flow = LogBook("pipeline"), FlowDetail("flow", str(uuid.uuid4()))
    ad = TaskDetail("task", str(uuid.uuid4()))
    flow.add(ad)
    book.add(flow)
    with backend.get_connection() as conn:
        conn.save_logbook(book)
    return ad


def test_a_result_behind_a_refused_mark_is_refused_with_it(backend_zookeeper):
    ad = _saved(backend_zookeeper)
    with backend_zookeeper.get_connection() as other:   # another writer, once: the atom
        theirs = other.get_atom_details(ad.uuid)       # is now at the version our
        theirs.put(states.SUCCESS, "theirs")           # result would expect
        other.update_atom_details(theirs)
    with backend_zookeeper.get_connection() as conn:
        ad.state = states.RUNNING
        conn.update_atom_details_nowait(ad)   # refused: stale; its answer is read later
        ad.put(states.SUCCESS, "ours")
        with pytest.raises(Conflict):
            conn.update_atom_details(ad)      # sent behind the mark, refused with it
    with backend_zookeeper.get_connection() as reader:
        stored = reader.get_atom_details(ad.uuid)
        assert (stored.results, stored.revision) == ("theirs", theirs.revision)
        # saved, then theirs: neither our mark nor our result left an entry
        assert [e.new_state for e in reader.get_history(ad.uuid)] == [None, states.SUCCESS]


def test_a_result_whose_mark_entry_was_purged_meanwhile_is_written(backend_zookeeper,
                                                                  zookeeper_admin, caplog):
    caplog.set_level(logging.INFO, logger="persistence.backends.zookeeper")
    ad = _saved(backend_zookeeper)
    with backend_zookeeper.get_connection() as conn:
        ad.state = states.RUNNING
        conn.update_atom_details_nowait(ad)
        entry = conn._sent.entry.path
        deadline = time.monotonic() + 10
        while zookeeper_admin.exists(entry) is None:   # the mark applied...
            assert time.monotonic() < deadline
            time.sleep(0.01)
        zookeeper_admin.delete(entry)                  # ...and its entry went, as in a purge
        ad.put(states.SUCCESS, "ours")
        conn.update_atom_details(ad)
    assert "the history entry of its previous write was gone" in caplog.text
    with backend_zookeeper.get_connection() as reader:
        stored = reader.get_atom_details(ad.uuid)
        assert (stored.state, stored.results, stored.revision) == (states.SUCCESS, "ours", 3)


def _lossy(monkeypatch, plan: list[str]) -> None:
    """Each update sent is, in turn: "ok"; "applied" (the server applies it, its
    answer is lost); "unsent" (the connection dropped before it went out)."""
    from kazoo.exceptions import ConnectionLoss

    from persistence.backends.zookeeper import pipeline, writes
    real = writes.send_update

    def lost_answer(conn):
        request = conn.backend.client.handler.async_result()
        request.set_exception(ConnectionLoss())
        return request

    def send(conn, put, entry=None, after=None):
        how = plan.pop(0) if plan else "ok"
        if how == "unsent":
            return writes.Sent(put, entry, lost_answer(conn), None, conn.backend.deadline(),
                               after)
        sent = real(conn, put, entry, after)
        if how == "applied":
            sent.request.get(timeout=10)
            sent.request = lost_answer(conn)
        return sent

    monkeypatch.setattr(writes, "send_update", send)
    monkeypatch.setattr(pipeline, "send_update", send)


@pytest.mark.parametrize("mark, result", [("applied", "applied"), ("unsent", "unsent"),
                                          ("ok", "unsent"), ("applied", "unsent"), ("unsent", "ok"),
                                          ("ok", "applied")])
def test_lost_answers_of_a_mark_and_its_result_are_read_back(backend_zookeeper, monkeypatch,
                                                             mark, result):
    """Whatever reached the server is found applied, what did not is sent again:
    both writes end up stored exactly once, in order."""
    ad = _saved(backend_zookeeper)
    with backend_zookeeper.get_connection() as conn:
        _lossy(monkeypatch, [mark, result])
        ad.state = states.RUNNING
        conn.update_atom_details_nowait(ad)
        ad.put(states.SUCCESS, "ours")
        conn.update_atom_details(ad)
        monkeypatch.undo()
    with backend_zookeeper.get_connection() as reader:
        stored = reader.get_atom_details(ad.uuid)
        assert (stored.state, stored.results, stored.revision) == (states.SUCCESS, "ours", 3)
        assert [e.new_state for e in reader.get_history(ad.uuid)] == [
            None, states.RUNNING, states.SUCCESS]


def test_parts_another_writer_left_are_removed_by_our_next_small_write(
        zookeeper_backend_factory, zookeeper_admin):
    """A connection skips the listing of parts only for a record it knows holds none
    at the version it replaces: parts another writer added meanwhile still go."""
    be = zookeeper_backend_factory(chunk_size=1000, max_request_bytes=5096)
    ad = _saved(be)
    with be.get_connection() as ours, be.get_connection() as other:
        ad.state = states.RUNNING
        ours.update_atom_details_nowait(ad)
        ad.put(states.SUCCESS, "small")
        ours.update_atom_details(ad)                  # known: no parts at revision 3
        theirs = other.get_atom_details(ad.uuid)
        theirs.put(states.SUCCESS, "x" * 5000)        # revision 4, in parts
        other.update_atom_details(theirs)
        parts = f"{ours._atom(ad.uuid)}/.chunks"
        assert zookeeper_admin.get_children(parts)
        fresh = ours.get_atom_details(ad.uuid)
        fresh.put(states.SUCCESS, "small again")
        ours.update_atom_details(fresh)               # revision 5, inline
        assert zookeeper_admin.exists(parts) is None
        assert ours.get_atom_details(ad.uuid).results == "small again"


def test_interleaved_atoms_wait_for_the_other_atoms_mark(backend_zookeeper, monkeypatch):
    """Two atoms running side by side: a's result is not chained behind b's unanswered
    mark; that mark is settled first, and b's result then finds nothing in flight."""
    from persistence.backends.zookeeper import pipeline
    book, flow = LogBook("pipeline"), FlowDetail("flow", str(uuid.uuid4()))
    a, b = TaskDetail("a", str(uuid.uuid4())), TaskDetail("b", str(uuid.uuid4()))
    flow.add(a)
    flow.add(b)
    book.add(flow)
    followed = []
    follow = pipeline.follow
    monkeypatch.setattr(pipeline, "follow",
                        lambda conn, sent, put, entry: (followed.append(put.path),
                                                        follow(conn, sent, put, entry)))
    with backend_zookeeper.get_connection() as conn:
        conn.save_logbook(book)
        for ad in (a, b):
            ad.state = states.RUNNING
            conn.update_atom_details_nowait(ad)
        for ad in (a, b):
            ad.put(states.SUCCESS, ad.name)
            conn.update_atom_details(ad)
        assert followed == []
    with backend_zookeeper.get_connection() as reader:
        for ad in (a, b):
            stored = reader.get_atom_details(ad.uuid)
            assert (stored.results, stored.revision) == (ad.name, 3)
            assert [e.new_state for e in reader.get_history(ad.uuid)] == [
                None, states.RUNNING, states.SUCCESS]
