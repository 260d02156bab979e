"""Contract part: history (one entry per write), snapshots and restore, and forks."""

from __future__ import annotations

import datetime

import pytest

from ..backends.shared import FORKED_FROM
from ..exceptions import Conflict, NotFound, SerializationError
from ..models import states
from ..models.history import FORK, RESTORE, WRITE
from ..models.records import RetryDetail
from ._support import by_name, flow_book, needs, now, reopen, same_flow, two_writers
from .samples import make_failure, new_uuid


class HistoryContract:
    """History, snapshots/restore and fork through the Connection."""

    # -- history -------------------------------------------------------------------
    @needs("history")
    def test_every_write_appends_a_history_entry_oldest_first(self, backend, conn):
        start = now()
        book, fd = flow_book(2)
        conn.save_logbook(book)
        a, b = by_name(fd)["t0"], by_name(fd)["t1"]
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
        book, fd = flow_book(1)
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
        book, fd = flow_book(1)
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
        assert conn.get_history(uuid=ad.uuid, since=now() + datetime.timedelta(hours=1)) == []
        assert conn.get_history(flow_uuid=fd.uuid, limit=0) == []
        with pytest.raises(ValueError):
            conn.get_history(limit=-1)

    @needs("history")
    def test_failed_writes_append_no_entry(self, backend, conn):
        book, fd = flow_book(1)
        conn.save_logbook(book)
        (ad,) = fd
        before = len(conn.get_history(flow_uuid=fd.uuid))
        with two_writers(backend, ad.uuid) as (a, first, b, second):
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
        book, fd = flow_book(2)
        conn.save_logbook(book)
        kept, kept_fd = flow_book(1, "kept")
        conn.save_logbook(kept)
        conn.destroy_logbook(book.uuid)
        assert conn.get_history(flow_uuid=fd.uuid) == []
        assert {e.uuid for e in conn.get_history()} == {kept_fd.uuid} | {
            ad.uuid for ad in kept_fd}

    # -- snapshots -----------------------------------------------------------------
    @needs("snapshots")
    def test_snapshot_then_restore_puts_the_flow_back(self, backend, conn):
        book, fd = flow_book(3)
        t0, t1, t2 = (by_name(fd)[n] for n in ("t0", "t1", "t2"))
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
        book, fd = flow_book(1)
        other_book, other_fd = flow_book(1, "other")
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
        book, fd = flow_book(1)
        conn.save_logbook(book)
        snap = conn.snapshot_flow(fd.uuid)
        conn.destroy_logbook(book.uuid)
        assert conn.list_snapshots() == []
        with pytest.raises(NotFound):
            conn.get_snapshot(snap.id)

    # -- fork ------------------------------------------------------------------------
    @needs("history")
    def test_fork_keeps_named_atoms_and_resets_the_rest(self, backend, conn):
        book, fd = flow_book(3)
        t0, t1, t2 = (by_name(fd)[n] for n in ("t0", "t1", "t2"))
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
            new = by_name(got)
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
        by_name(fork)["t1"].put(states.SUCCESS, "again")
        conn.update_flow_details(fork)
        assert conn.get_atom_details(by_name(fork)["t1"].uuid).results == "again"

    def test_fork_of_unknown_atom_or_flow_writes_nothing(self, backend, conn):
        book, fd = flow_book(1)
        conn.save_logbook(book)
        with pytest.raises(NotFound, match="nope"):
            conn.fork_flow(fd.uuid, from_atoms=["t0", "nope"])
        with pytest.raises(NotFound):
            conn.fork_flow(new_uuid(), from_atoms=[])
        with reopen(backend) as other:
            assert len(other.get_logbook(book.uuid)) == 1
