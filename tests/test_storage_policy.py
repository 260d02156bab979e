"""Persistence policies: how many backend writes each change costs, and when.

Writes are counted by wrapping the backend's connections (deterministic: no
timing involved).  A "write" is one call of save_logbook,
update_flow_details or update_atom_details — one backend transaction.
"""

from __future__ import annotations

import pytest

from persistence import models, states
from persistence.atom import Retry, Task
from persistence.exceptions import Conflict, NotFound
from persistence.storage import Storage
from tests.test_storage import boom, reload, saved_flow, stored_atom

WRITES = ("save_logbook", "update_flow_details", "update_atom_details",
          "update_atom_details_nowait")


class CountingConnection:
    """Delegates to a real connection, logging every write call by name."""

    def __init__(self, conn, log: list[str]) -> None:
        self._conn = conn
        self._log = log

    def __getattr__(self, name):
        attr = getattr(self._conn, name)
        if name not in WRITES:
            return attr

        def write(*args, **kwargs):
            self._log.append(name)
            return attr(*args, **kwargs)
        return write


@pytest.fixture
def writes(backend, monkeypatch):
    """The list of writes made to ``backend`` from now on."""
    log: list[str] = []
    real = backend.get_connection
    monkeypatch.setattr(backend, "get_connection", lambda: CountingConnection(real(), log))
    return log


def counted(writes, action) -> list[str]:
    before = len(writes)
    action()
    return writes[before:]


def test_always_one_logical_change_is_one_write(backend, writes):
    flow = saved_flow(backend)
    del writes[:]
    s = Storage(flow, backend)
    task = Task("a", provides="x")
    one_flow_write = ["update_flow_details"]
    one_atom_write = ["update_atom_details"]
    one_mark = ["update_atom_details_nowait"]   # RUNNING: durable with the next write
    assert counted(writes, lambda: s.ensure_atoms([task, Task("b"), Retry("r")])) \
        == one_flow_write
    assert counted(writes, lambda: s.ensure_atom(task)) == []
    assert counted(writes, lambda: s.set_atom_state("a", states.RUNNING)) == one_mark
    assert counted(writes, lambda: s.set_atom_state("a", states.RUNNING)) == []
    assert counted(writes, lambda: s.set_atom_intention("a", states.EXECUTE)) == []
    assert counted(writes, lambda: s.set_atom_intention("a", states.REVERT)) == one_atom_write
    assert counted(writes, lambda: s.save("a", 42)) == one_atom_write
    stored = stored_atom(backend, flow.uuid, "a")
    assert (stored.state, stored.results) == (states.SUCCESS, 42)   # state and result: 1 write
    assert counted(writes, lambda: s.save("a", 42)) == []           # nothing new
    assert counted(writes, lambda: s.save("b", boom())) == one_atom_write
    assert counted(writes, lambda: s.set_task_progress("b", 0.5)) == one_atom_write
    assert counted(writes, lambda: s.set_task_progress("b", 0.5)) == []
    assert counted(writes, lambda: s.update_atom_metadata("b", {"k": 1})) == one_atom_write
    assert counted(writes, lambda: s.update_flow_metadata({"k": 1})) == one_flow_write
    assert counted(writes, lambda: s.update_flow_metadata({"k": 1})) == []
    assert counted(writes, lambda: s.inject({"n": 1})) == one_flow_write   # creates injector
    assert counted(writes, lambda: s.inject({"m": 2})) == one_atom_write
    assert counted(writes, lambda: s.inject({"t": object()}, transient=True)) == []
    assert counted(writes, lambda: s.inject_atom_args("a", {"t": 1})) == []
    assert counted(writes, lambda: s.inject_atom_args("a", {"p": 1}, transient=False)) \
        == one_atom_write
    assert counted(writes, lambda: s.save("r", "attempt-1")) == one_atom_write
    assert counted(writes, lambda: s.save_retry_failure("r", "b", boom())) == one_atom_write
    assert counted(writes, lambda: s.reset("b")) == one_atom_write
    assert counted(writes, lambda: s.reset("b")) == []
    assert counted(writes, lambda: s.change_flow_state(states.RUNNING)) == one_flow_write
    assert counted(writes, lambda: s.change_flow_state(states.RUNNING)) == []
    assert counted(writes, lambda: s.fetch_all()) == []
    assert counted(writes, s.flush) == []
    assert not s.has_pending


def test_batch_writes_everything_in_one_transaction_on_flush(backend, writes):
    flow = saved_flow(backend)
    s = Storage(flow, backend, policy="batch")
    del writes[:]
    s.ensure_atoms([Task("a"), Task("b")])
    s.save("a", 1)
    s.save("b", 2)
    s.inject({"n": 3})
    s.update_flow_metadata({"k": "v"})
    assert writes == []
    assert s.has_pending
    assert len(reload(backend, flow.uuid)) == 0        # nothing durable yet
    s.flush()
    assert writes == ["update_flow_details"]
    assert not s.has_pending
    stored = reload(backend, flow.uuid)
    assert {ad.name: ad.results for ad in stored} == {"a": 1, "b": 2,
                                                       Storage.injector_name: {"n": 3}}
    assert stored.meta == {"k": "v"}
    assert counted(writes, s.flush) == []              # nothing pending: nothing written


def test_batch_writes_only_changed_atoms_on_flush(backend, writes):
    flow = saved_flow(backend)
    s = Storage(flow, backend, policy="batch")
    s.ensure_atoms([Task(f"t{i}") for i in range(5)])
    s.flush()
    s.save("t3", "done")
    revisions = {ad.name: ad.revision for ad in reload(backend, flow.uuid)}
    s.flush()
    after = {ad.name: ad.revision for ad in reload(backend, flow.uuid)}
    assert [name for name in after if after[name] != revisions[name]] == ["t3"]


def test_batch_flushes_on_every_flow_state_change(backend, writes):
    s = Storage(saved_flow(backend), backend, policy="batch")
    del writes[:]
    s.ensure_atom(Task("a"))
    s.save("a", 1)
    assert writes == []
    assert s.change_flow_state(states.RUNNING) == (True, states.PENDING)
    assert writes == ["update_flow_details"]
    stored = reload(backend, s.flow_uuid)
    assert stored.state == states.RUNNING and [ad.results for ad in stored] == [1]
    s.set_flow_state(states.RUNNING)                   # same state, nothing pending
    assert writes == ["update_flow_details"]


def test_batch_block_groups_writes_under_always(backend, writes):
    s = Storage(saved_flow(backend), backend)
    s.ensure_atoms([Task("a"), Task("b")])
    del writes[:]
    with s.batch():
        s.save("a", 1)
        s.save("b", 2)
        with s.batch():                                # nested: flushed by the outer one
            s.set_atom_state("a", states.IGNORE)
        assert writes == [] and s.has_pending
    assert writes == ["update_flow_details"]
    assert not s.has_pending
    s.save("b", 3)                                     # back to one write per change
    assert writes == ["update_flow_details", "update_atom_details"]


def test_never_writes_nothing(backend, writes):
    flow = saved_flow(backend)
    s = Storage(flow, backend, policy="never")
    del writes[:]
    s.ensure_atom(Task("a", provides="x"))
    s.save("a", 1)
    s.inject({"n": 2})
    s.change_flow_state(states.RUNNING)
    with s.batch():
        s.save("a", 5)
    s.flush()
    assert writes == []
    assert not s.has_pending
    assert s.fetch("x") == 5 and s.fetch("n") == 2
    assert len(reload(backend, flow.uuid)) == 0


def test_never_without_backend_accepts_unserializable_results():
    s = Storage(models.FlowDetail("f", uuid="u"), policy="never")
    s.ensure_atom(Task("a", provides="x"))
    handle = object()
    s.save("a", handle)
    assert s.fetch("x") is handle


def test_storage_context_manager_flushes_and_closes(backend, writes):
    flow = saved_flow(backend)
    del writes[:]
    with Storage(flow, backend, policy="batch") as s:
        s.ensure_atom(Task("a"))
        s.save("a", 1)
    assert writes == ["update_flow_details"]
    assert [ad.results for ad in reload(backend, flow.uuid)] == [1]


def test_conflicts_surface_and_leave_memory_untouched(backend):
    flow = saved_flow(backend)
    first = Storage(flow, backend)
    first.ensure_atom(Task("a"))
    second = Storage(reload(backend, flow.uuid), backend)   # e.g. a second engine
    second.save("a", "second")
    with pytest.raises(Conflict):
        first.save("a", "first")
    assert first.get_atom_state("a") == states.PENDING       # failed write: no change
    assert stored_atom(backend, flow.uuid, "a").results == "second"
    with pytest.raises(Conflict):
        first.set_atom_state("a", states.RUNNING)
        # A store that checks the mark's answer before its next write (ZooKeeper)
        # raises the mark's Conflict there.
        first.save("a", "first")
    assert stored_atom(backend, flow.uuid, "a").results == "second"


def test_at_most_once_a_conflicting_mark_raises_at_once(backend):
    flow = saved_flow(backend)
    first = Storage(flow, backend, at_most_once=True)
    first.ensure_atom(Task("a"))
    Storage(reload(backend, flow.uuid), backend).save("a", "second")
    with pytest.raises(Conflict):
        first.set_atom_state("a", states.RUNNING)
    assert first.get_atom_state("a") == states.PENDING        # failed write: no change


def test_a_failed_flush_keeps_changes_pending(backend):
    flow = saved_flow(backend)
    first = Storage(flow, backend, policy="batch")
    first.ensure_atom(Task("a"))
    first.flush()
    other = Storage(reload(backend, flow.uuid), backend)
    other.update_flow_metadata({"owner": "other"})
    first.save("a", 1)
    with pytest.raises(Conflict):
        first.flush()
    assert first.has_pending
    assert first.get("a") == 1


def test_a_failed_flow_write_leaves_the_flow_as_it_was(backend):
    unsaved = models.FlowDetail("never saved", uuid="unsaved")
    s = Storage(unsaved, backend)
    with pytest.raises(NotFound, match="never saved"):
        s.ensure_atoms([Task("a"), Task("b")])
    assert len(unsaved) == 0
    with pytest.raises(NotFound):
        s.get_atom_uuid("a")
    with pytest.raises(NotFound):
        s.set_flow_state(states.RUNNING)
    assert s.get_flow_state() == states.PENDING
    with pytest.raises(NotFound):
        s.update_flow_metadata({"k": 1})
    assert s.flow_meta == {}
