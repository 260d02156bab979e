"""Contract part: summaries, counts, listings and purge (finding and retiring work)."""

from __future__ import annotations

import datetime
import time

import pytest

from ..exceptions import NotFound
from ..models import states
from ..models.records import FlowDetail, LogBook
from ._support import assert_not_stored, by_name, flow_book, now, reopen, same_flow
from .samples import make_failure, new_uuid


def _finished_book(conn, name: str, state: str = states.SUCCESS) -> LogBook:
    book, fd = flow_book(2, name, flow_state=state, atom_state=states.SUCCESS)
    conn.save_logbook(book)
    return book


def _next_tick(after: datetime.datetime) -> None:
    """Wait until the clock has passed ``after`` by a whole second (coarse store clocks)."""
    time.sleep(max(0.0, 1.05 - (now() - after).total_seconds()))


class ListingsContract:
    """Summaries, counts, listings and purge through the Connection."""

    # -- summaries and counts ----------------------------------------------------------
    def test_summary_and_counts(self, conn):
        start = now() - datetime.timedelta(seconds=1)
        book, fd = flow_book(5)
        names = by_name(fd)
        names["t0"].put(states.SUCCESS, 1)
        names["t1"].put(states.SUCCESS, 2)
        names["t2"].put(states.FAILURE, make_failure())
        names["t3"].state = states.RUNNING
        conn.save_logbook(book)
        summary = conn.summary(fd.uuid)
        assert (summary.flow_uuid, summary.name, summary.state) == (fd.uuid, fd.name,
                                                                    states.RUNNING)
        assert summary.atoms == 5 and summary.failures == 1
        assert summary.by_state == {states.SUCCESS: 2, states.FAILURE: 1,
                                    states.RUNNING: 1, states.PENDING: 1}
        assert summary.last_change is None or start <= summary.last_change <= now()
        assert summary.to_dict()["atoms"] == 5
        assert conn.count_atoms(fd.uuid) == 5
        assert conn.count_atoms(fd.uuid, states=states.SUCCESS) == 2
        assert conn.count_atoms(fd.uuid, states=[states.SUCCESS, states.FAILURE]) == 3
        assert conn.count_atoms(fd.uuid, states=[]) == 0
        empty_book, empty = flow_book(0, "empty")
        conn.save_logbook(empty_book)
        assert conn.summary(empty.uuid).atoms == 0
        assert conn.count_atoms(empty.uuid) == 0
        for call in (conn.summary, conn.count_atoms):
            with pytest.raises(NotFound):
                call(new_uuid())
        with pytest.raises(ValueError):
            conn.count_atoms(fd.uuid, states="DONE")

    # -- listings ----------------------------------------------------------------------
    def test_list_logbooks_filters_and_pages_newest_first(self, backend, conn):
        books = []
        for name in ["a", "b", "a", "c", "a"]:
            book, _ = flow_book(1, name)
            conn.save_logbook(book)
            books.append(book)
        newest_first = [b.uuid for b in reversed(books)]
        with reopen(backend) as other:
            listed = other.list_logbooks()
            assert [b.uuid for b in listed] == newest_first
            assert all(len(b) == 0 for b in listed)   # no flow details loaded
            assert listed[0].name == "a" and listed[0].updated_at == books[-1].updated_at
            assert [b.uuid for b in other.list_logbooks(name="a")] == [
                b.uuid for b in reversed(books) if b.name == "a"]
            assert [b.uuid for b in other.list_logbooks(limit=2, offset=1)] == \
                newest_first[1:3]
            assert other.list_logbooks(offset=10) == []
            since = other.list_logbooks(updated_since=books[2].updated_at)
            assert [b.uuid for b in since] == newest_first[:3]
            before = other.list_logbooks(updated_before=books[2].updated_at)
            assert [b.uuid for b in before] == newest_first[3:]
            assert other.count_logbooks() == 5
            assert other.count_logbooks(name="a") == 3
            assert other.count_logbooks(name="a", updated_since=books[2].updated_at) == 2
            assert other.count_logbooks(name="zzz") == 0
        with pytest.raises(ValueError):
            conn.list_logbooks(limit=-1)
        with pytest.raises(TypeError):
            conn.list_logbooks(updated_since="yesterday")

    def test_list_flow_details_filters_and_pages_newest_first(self, backend, conn):
        first, fd_first = flow_book(1, "first", flow_state=states.SUCCESS)
        conn.save_logbook(first)
        second, fd_second = flow_book(1, "second", flow_state=states.RUNNING)
        extra = FlowDetail("second-extra", new_uuid())
        extra.state = states.FAILURE
        second.add(extra)
        conn.save_logbook(second)
        _next_tick(now())
        fd_first.state = states.FAILURE     # now the most recently written flow
        conn.update_flow_details(fd_first)
        with reopen(backend) as other:
            listed = other.list_flow_details()
            assert {f.uuid for f in listed} == {fd_first.uuid, fd_second.uuid, extra.uuid}
            assert listed[0].uuid == fd_first.uuid
            assert all(len(f) == 0 for f in listed)   # no atom details loaded
            same_flow(listed[0], fd_first, atoms=False)
            failed = other.list_flow_details(state=states.FAILURE)
            assert {f.uuid for f in failed} == {fd_first.uuid, extra.uuid}
            assert failed[0].uuid == fd_first.uuid
            assert {f.uuid for f in other.list_flow_details(
                state=[states.RUNNING, states.SUCCESS])} == {fd_second.uuid}
            assert {f.uuid for f in other.list_flow_details(logbook=second.uuid)} == {
                fd_second.uuid, extra.uuid}
            assert [f.uuid for f in other.list_flow_details(
                logbook=second.uuid, state=states.FAILURE)] == [extra.uuid]
            assert [f.uuid for f in other.list_flow_details(limit=1)] == [fd_first.uuid]
            assert len(other.list_flow_details(offset=1)) == 2
            with pytest.raises(NotFound):
                other.list_flow_details(logbook=new_uuid())
            with pytest.raises(ValueError):
                other.list_flow_details(state="DONE")

    # -- retention ---------------------------------------------------------------------
    def test_purge_deletes_old_finished_logbooks_in_batches(self, backend, conn):
        old = [_finished_book(conn, f"old-{i}", state)
               for i, state in enumerate([states.SUCCESS, states.FAILURE, states.REVERTED,
                                          states.SUCCESS, states.SUCCESS])]
        running, _ = flow_book(1, "running")
        conn.save_logbook(running)
        empty = LogBook("empty")
        conn.save_logbook(empty)
        snap = (conn.snapshot_flow(next(iter(old[0])).uuid) if backend.supports_snapshots
                else None)
        cutoff = now()
        _next_tick(cutoff)
        recent = _finished_book(conn, "recent")
        doomed = {b.uuid for b in old} | {empty.uuid}
        dry = conn.purge(finished_before=cutoff, dry_run=True)
        assert dry.dry_run and set(dry.logbooks) == doomed
        assert (dry.flow_details, dry.atom_details) == (5, 10)
        assert conn.count_logbooks() == 8
        report = conn.purge(finished_before=cutoff, batch_size=2)
        assert not report.dry_run and set(report.logbooks) == doomed
        assert (report.flow_details, report.atom_details) == (5, 10)
        assert report.batches == 3
        with reopen(backend) as other:
            assert {b.uuid for b in other.list_logbooks()} == {running.uuid, recent.uuid}
            for book in old:
                assert_not_stored(other, book)
                if backend.supports_history:
                    assert all(other.get_history(flow_uuid=fd.uuid) == [] for fd in book)
            if snap is not None:
                with pytest.raises(NotFound):
                    other.get_snapshot(snap.id)
        again = conn.purge(finished_before=cutoff)
        assert again.logbooks == [] and again.atom_details == 0
        # Only the states asked for: the running flow's book goes with RUNNING included.
        later = conn.purge(finished_before=now() + datetime.timedelta(seconds=5),
                           states=[states.RUNNING])
        assert later.logbooks == [running.uuid]

    def test_purge_checks_its_arguments(self, conn):
        for kwargs in ({"states": []}, {"states": ["DONE"]}, {"batch_size": 0}):
            with pytest.raises(ValueError):
                conn.purge(finished_before=now(), **kwargs)
        with pytest.raises(TypeError):
            conn.purge(finished_before="2020-01-01")
        naive = datetime.datetime.utcnow() + datetime.timedelta(hours=1)
        assert conn.purge(finished_before=naive, dry_run=True).logbooks == []
