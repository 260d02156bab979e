"""Contract part: history, snapshots, forks, summaries, listings and purge, and
Storage's fingerprints and listeners over the backend."""

from __future__ import annotations

import datetime
import time

import pytest

from ..backends.shared import FORKED_FROM
from ..exceptions import Conflict, NotFound, SerializationError
from ..models import states
from ..models.history import FORK, RESTORE, WRITE
from ..models.records import FlowDetail, LogBook, RetryDetail, TaskDetail
from ..runtime.atom import Task
from ..runtime.storage import Storage
from ._support import needs, reopen, same_flow
from .samples import make_failure, new_uuid

UTC = datetime.timezone.utc


def _now() -> datetime.datetime:
    return datetime.datetime.now(UTC)


def _flow_book(atoms: int = 2, name: str = "book", flow_state: str = states.RUNNING,
               atom_state: str = states.PENDING) -> tuple[LogBook, FlowDetail]:
    book = LogBook(name)
    fd = FlowDetail(f"{name}-flow", new_uuid())
    fd.state = flow_state
    for i in range(atoms):
        ad = TaskDetail(f"t{i}", new_uuid())
        ad.state = atom_state
        fd.add(ad)
    book.add(fd)
    return book, fd


def _by_name(fd: FlowDetail) -> dict:
    return {ad.name: ad for ad in fd}


def _finished_book(conn, name: str, state: str = states.SUCCESS) -> LogBook:
    book, fd = _flow_book(2, name, flow_state=state, atom_state=states.SUCCESS)
    conn.save_logbook(book)
    return book


def _next_tick(after: datetime.datetime) -> None:
    """Wait until the clock has passed ``after`` by a whole second (coarse store clocks)."""
    time.sleep(max(0.0, 1.05 - (_now() - after).total_seconds()))


class LifecycleContract:
    """History, snapshots/restore/fork, summaries, listings and purge through the Connection."""

    # -- history -------------------------------------------------------------------
    @needs("history")
    def test_every_write_appends_a_history_entry_oldest_first(self, backend, conn):
        start = _now()
        book, fd = _flow_book(2)
        conn.save_logbook(book)
        a, b = _by_name(fd)["t0"], _by_name(fd)["t1"]
        a.state = states.RUNNING
        conn.update_atom_details(a)
        a.put(states.SUCCESS, {"n": 1})
        conn.update_atom_details(a)
        fd.state = states.SUCCESS
        conn.update_flow_details(fd)
        with reopen(backend) as other:
            mine = other.get_history(uuid=a.uuid)
            assert [(e.old_state, e.new_state) for e in mine] == [
                (None, states.PENDING), (states.PENDING, states.RUNNING),
                (states.RUNNING, states.SUCCESS)]
            assert [e.revision for e in mine] == sorted({e.revision for e in mine})
            assert mine[-1].revision == a.revision
            assert all(e.kind == "atom" and e.uuid == a.uuid and e.name == "t0"
                       and e.intention == states.EXECUTE and e.event == WRITE for e in mine)
            times = [e.at for e in mine]
            assert times == sorted(times) and times[0] >= start - datetime.timedelta(seconds=1)
            assert all(e.at.tzinfo is not None for e in mine)
            flow_entries = other.get_history(uuid=fd.uuid)
            assert [(e.kind, e.old_state, e.new_state) for e in flow_entries] == [
                ("flow", None, states.RUNNING), ("flow", states.RUNNING, states.SUCCESS)]
            whole = other.get_history(flow_uuid=fd.uuid)
            assert {e.uuid for e in whole} == {fd.uuid, a.uuid, b.uuid}
            assert len(whole) == len(mine) + len(flow_entries) + 1
            assert all(e.flow_uuid == fd.uuid for e in whole)
            assert [e.at for e in whole] == sorted(e.at for e in whole)
            assert len(other.get_history()) == len(whole)
            assert other.get_history(uuid=new_uuid()) == []

    @needs("history")
    def test_history_records_owner_and_intention(self, backend, conn):
        book, fd = _flow_book(1)
        conn.save_logbook(book)
        (ad,) = fd
        conn.owner = "worker-7"
        ad.intention = states.REVERT
        ad.put(states.FAILURE, make_failure("disk full"))
        conn.update_atom_details(ad)
        with reopen(backend) as other:
            last = other.get_history(uuid=ad.uuid)[-1]
            assert last.owner == "worker-7"
            assert last.intention == states.REVERT and last.new_state == states.FAILURE
            assert other.get_history(uuid=ad.uuid)[0].owner is None
            assert last.to_dict()["owner"] == "worker-7"

    @needs("history")
    def test_since_and_limit(self, conn):
        book, fd = _flow_book(1)
        conn.save_logbook(book)
        (ad,) = fd
        for i in range(4):
            ad.put(states.SUCCESS, i)
            conn.update_atom_details(ad)
        entries = conn.get_history(uuid=ad.uuid)
        assert len(entries) == 5
        assert conn.get_history(uuid=ad.uuid, limit=2) == entries[:2]
        assert conn.get_history(uuid=ad.uuid, since=entries[3].at)[0].revision \
            <= entries[3].revision
        assert conn.get_history(uuid=ad.uuid, since=_now() + datetime.timedelta(hours=1)) == []
        assert conn.get_history(flow_uuid=fd.uuid, limit=0) == []
        with pytest.raises(ValueError):
            conn.get_history(limit=-1)

    @needs("history")
    def test_failed_writes_append_no_entry(self, backend, conn):
        book, fd = _flow_book(1)
        conn.save_logbook(book)
        (ad,) = fd
        before = len(conn.get_history(flow_uuid=fd.uuid))
        with reopen(backend) as a, reopen(backend) as b:
            first, second = a.get_atom_details(ad.uuid), b.get_atom_details(ad.uuid)
            first.put(states.SUCCESS, 1)
            a.update_atom_details(first)
            second.put(states.SUCCESS, 2)
            with pytest.raises(Conflict):
                b.update_atom_details(second)
            first.put(states.SUCCESS, {1, 2})
            with pytest.raises(SerializationError):
                a.update_atom_details(first)
        assert len(conn.get_history(flow_uuid=fd.uuid)) == before + 1

    @needs("history")
    def test_history_goes_with_its_logbook(self, conn):
        book, fd = _flow_book(2)
        conn.save_logbook(book)
        kept, kept_fd = _flow_book(1, "kept")
        conn.save_logbook(kept)
        conn.destroy_logbook(book.uuid)
        assert conn.get_history(flow_uuid=fd.uuid) == []
        assert {e.uuid for e in conn.get_history()} == {kept_fd.uuid} | {
            ad.uuid for ad in kept_fd}

    # -- snapshots -----------------------------------------------------------------
    @needs("snapshots")
    def test_snapshot_then_restore_puts_the_flow_back(self, backend, conn):
        book, fd = _flow_book(3)
        t0, t1, t2 = (_by_name(fd)[n] for n in ("t0", "t1", "t2"))
        t0.put(states.SUCCESS, {"rows": [1, 2]})
        t0.meta["progress"] = 1.0
        fd.meta["run"] = 1
        conn.save_logbook(book)
        snap = conn.snapshot_flow(fd.uuid, label="before step 2")
        assert (snap.flow_uuid, snap.label, snap.atoms) == (fd.uuid, "before step 2", 3)
        with reopen(backend) as other:
            expected = other.get_flow_details(fd.uuid)
        # Change everything: results, states, a new atom, the flow's state and meta.
        t0.put(states.FAILURE, make_failure())
        t1.put(states.SUCCESS, "later")
        fd.state = states.FAILURE
        fd.meta["run"] = 2
        extra = RetryDetail("added later", new_uuid())
        fd.add(extra)
        conn.update_flow_details(fd)
        revision_before = conn.get_atom_details(t0.uuid).revision
        restored = conn.restore_flow(snap.id)
        same_flow(restored, expected)
        with reopen(backend) as other:
            got = other.get_flow_details(fd.uuid)
            same_flow(got, expected)
            with pytest.raises(NotFound):
                other.get_atom_details(extra.uuid)
            assert got.find(t0.uuid).revision > revision_before
            events = [e for e in other.get_history(flow_uuid=fd.uuid) if e.event == RESTORE]
            assert {e.uuid for e in events} == {fd.uuid, t0.uuid, t1.uuid, t2.uuid}
            back = [e for e in events if e.uuid == t0.uuid][0]
            assert (back.old_state, back.new_state) == (states.FAILURE, states.SUCCESS)
            # The snapshot itself is immutable and listed.
            (listed,) = other.list_snapshots(fd.uuid)
            assert listed.id == snap.id and listed.flow is None
            again = other.get_snapshot(snap.id)
            same_flow(again.flow, expected)
        # The restored flow works like any other: a loaded copy writes conditionally.
        fresh = conn.get_flow_details(fd.uuid)
        fresh.find(t1.uuid).put(states.SUCCESS, "after restore")
        conn.update_flow_details(fresh)
        assert conn.get_atom_details(t1.uuid).results == "after restore"

    @needs("snapshots")
    def test_snapshots_are_listed_per_flow_oldest_first(self, conn):
        book, fd = _flow_book(1)
        other_book, other_fd = _flow_book(1, "other")
        conn.save_logbook(book)
        conn.save_logbook(other_book)
        first = conn.snapshot_flow(fd.uuid)
        (ad,) = fd
        ad.put(states.SUCCESS, 1)
        conn.update_atom_details(ad)
        second = conn.snapshot_flow(fd.uuid, "second")
        third = conn.snapshot_flow(other_fd.uuid)
        assert [s.id for s in conn.list_snapshots(fd.uuid)] == [first.id, second.id]
        assert {s.id for s in conn.list_snapshots()} == {first.id, second.id, third.id}
        assert conn.get_snapshot(first.id).flow.find(ad.uuid).results is None
        assert conn.get_snapshot(second.id).flow.find(ad.uuid).results == 1
        assert conn.list_snapshots(new_uuid()) == []

    @needs("snapshots")
    def test_snapshot_errors(self, conn):
        with pytest.raises(NotFound):
            conn.snapshot_flow(new_uuid())
        with pytest.raises(NotFound):
            conn.get_snapshot("no-such-snapshot")
        with pytest.raises(NotFound):
            conn.restore_flow("no-such-snapshot")

    @needs("snapshots")
    def test_snapshots_go_with_their_logbook(self, conn):
        book, fd = _flow_book(1)
        conn.save_logbook(book)
        snap = conn.snapshot_flow(fd.uuid)
        conn.destroy_logbook(book.uuid)
        assert conn.list_snapshots() == []
        with pytest.raises(NotFound):
            conn.get_snapshot(snap.id)

    # -- fork ------------------------------------------------------------------------
    @needs("history")
    def test_fork_keeps_named_atoms_and_resets_the_rest(self, backend, conn):
        book, fd = _flow_book(3)
        t0, t1, t2 = (_by_name(fd)[n] for n in ("t0", "t1", "t2"))
        t0.put(states.SUCCESS, {"kept": True})
        t0.meta["progress"] = 1.0
        t1.put(states.SUCCESS, "recomputed")
        t1.meta.update({"progress": 1.0, "injected": {"x": 1}})
        t2.put(states.FAILURE, make_failure())
        fd.state = states.FAILURE
        conn.save_logbook(book)
        fork = conn.fork_flow(fd.uuid, from_atoms=["t0"], name="second try")
        assert fork.uuid != fd.uuid and fork.name == "second try"
        with reopen(backend) as other:
            stored_book = other.get_logbook(book.uuid)
            assert {f.uuid for f in stored_book} == {fd.uuid, fork.uuid}
            got = stored_book.find(fork.uuid)
            same_flow(got, fork)
            assert got.state == states.PENDING
            assert got.meta[FORKED_FROM]["flow_uuid"] == fd.uuid
            new = _by_name(got)
            assert {ad.uuid for ad in got}.isdisjoint({t0.uuid, t1.uuid, t2.uuid})
            assert (new["t0"].state, new["t0"].results) == (states.SUCCESS, {"kept": True})
            assert new["t0"].meta["progress"] == 1.0
            for name in ("t1", "t2"):
                assert new[name].state == states.PENDING
                assert new[name].results is None and new[name].failure is None
            assert "progress" not in new["t1"].meta and new["t1"].meta["injected"] == {"x": 1}
            same_flow(other.get_flow_details(fd.uuid), fd)   # the source is untouched
            forked = other.get_history(flow_uuid=fork.uuid)
            assert forked and all(e.event == FORK for e in forked)
        # The fork is an ordinary flow detail: update it through the object returned.
        _by_name(fork)["t1"].put(states.SUCCESS, "again")
        conn.update_flow_details(fork)
        assert conn.get_atom_details(_by_name(fork)["t1"].uuid).results == "again"

    def test_fork_of_unknown_atom_or_flow_writes_nothing(self, backend, conn):
        book, fd = _flow_book(1)
        conn.save_logbook(book)
        with pytest.raises(NotFound, match="nope"):
            conn.fork_flow(fd.uuid, from_atoms=["t0", "nope"])
        with pytest.raises(NotFound):
            conn.fork_flow(new_uuid(), from_atoms=[])
        with reopen(backend) as other:
            assert len(other.get_logbook(book.uuid)) == 1

    # -- summaries and counts ----------------------------------------------------------
    def test_summary_and_counts(self, conn):
        start = _now() - datetime.timedelta(seconds=1)
        book, fd = _flow_book(5)
        names = _by_name(fd)
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
        assert summary.last_change is None or start <= summary.last_change <= _now()
        assert summary.to_dict()["atoms"] == 5
        assert conn.count_atoms(fd.uuid) == 5
        assert conn.count_atoms(fd.uuid, states=states.SUCCESS) == 2
        assert conn.count_atoms(fd.uuid, states=[states.SUCCESS, states.FAILURE]) == 3
        assert conn.count_atoms(fd.uuid, states=[]) == 0
        empty_book, empty = _flow_book(0, "empty")
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
            book, _ = _flow_book(1, name)
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
        first, fd_first = _flow_book(1, "first", flow_state=states.SUCCESS)
        conn.save_logbook(first)
        second, fd_second = _flow_book(1, "second", flow_state=states.RUNNING)
        extra = FlowDetail("second-extra", new_uuid())
        extra.state = states.FAILURE
        second.add(extra)
        conn.save_logbook(second)
        _next_tick(_now())
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

    # -- retention ---------------------------------------------------------------------
    def test_purge_deletes_old_finished_logbooks_in_batches(self, backend, conn):
        old = [_finished_book(conn, f"old-{i}", state)
               for i, state in enumerate([states.SUCCESS, states.FAILURE, states.REVERTED,
                                          states.SUCCESS, states.SUCCESS])]
        running, _ = _flow_book(1, "running")
        conn.save_logbook(running)
        empty = LogBook("empty")
        conn.save_logbook(empty)
        snap = (conn.snapshot_flow(next(iter(old[0])).uuid) if backend.supports_snapshots
                else None)
        cutoff = _now()
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
                with pytest.raises(NotFound):
                    other.get_logbook(book.uuid)
                for fd in book:
                    if backend.supports_history:
                        assert other.get_history(flow_uuid=fd.uuid) == []
                    for ad in fd:
                        with pytest.raises(NotFound):
                            other.get_atom_details(ad.uuid)
            if snap is not None:
                with pytest.raises(NotFound):
                    other.get_snapshot(snap.id)
        again = conn.purge(finished_before=cutoff)
        assert again.logbooks == [] and again.atom_details == 0
        # Only the states asked for: the running flow's book goes with RUNNING included.
        later = conn.purge(finished_before=_now() + datetime.timedelta(seconds=5),
                           states=[states.RUNNING])
        assert later.logbooks == [running.uuid]

    def test_purge_checks_its_arguments(self, conn):
        for kwargs in ({"states": []}, {"states": ["DONE"]}, {"batch_size": 0}):
            with pytest.raises(ValueError):
                conn.purge(finished_before=_now(), **kwargs)
        with pytest.raises(TypeError):
            conn.purge(finished_before="2020-01-01")
        naive = datetime.datetime.utcnow() + datetime.timedelta(hours=1)
        assert conn.purge(finished_before=naive, dry_run=True).logbooks == []

