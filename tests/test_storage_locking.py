"""Every Storage call is a locked section: it waits while another thread writes.

Storage's parts (details, results, retries...) never take the lock; the
facade's methods do.  These tests hold the write lock in one thread and check
that each public call made from another thread waits for it, and that reads
share the lock with each other.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from persistence import FlowDetail, states
from persistence.atom import Retry, Task
from persistence.failure import Failure
from persistence.storage import Storage

#: Public members that are values fixed at construction (no lock needed to read them).
UNLOCKED = {"lock", "backend", "policy", "flow_detail", "flow_name", "flow_uuid", "flow_meta",
            "owner", "claim", "injector_name"}


def _storage() -> Storage:
    s = Storage(FlowDetail("flow", "flow-uuid"))
    s.ensure_atoms([Task("a", provides="x"), Task("b", requires=["x"]), Task("undone"),
                    Retry("r")])
    s.save("a", 1)
    s.save("undone", "put back", states.REVERTED)
    s.save("r", [(None, {})])
    return s


def _failure() -> Failure:
    try:
        raise ValueError("boom")
    except ValueError:
        return Failure()


def _listener(change: Any) -> None:
    pass


#: {public member: a call of it}.  Writes first, reads after.
CALLS: dict[str, Callable[[Storage], Any]] = {
    "ensure_atoms": lambda s: s.ensure_atoms([Task("c")]),
    "ensure_atom": lambda s: s.ensure_atom(Task("d")),
    "set_atom_state": lambda s: s.set_atom_state("b", states.RUNNING),
    "set_atom_intention": lambda s: s.set_atom_intention("b", states.REVERT),
    "update_atom_metadata": lambda s: s.update_atom_metadata("b", {"k": 1}),
    "update_flow_metadata": lambda s: s.update_flow_metadata({"k": 1}),
    "set_task_progress": lambda s: s.set_task_progress("b", 0.5),
    "save": lambda s: s.save("b", 2),
    "reset": lambda s: s.reset("a"),
    "save_retry_failure": lambda s: s.save_retry_failure("r", "b", _failure()),
    "cleanup_retry_history": lambda s: s.cleanup_retry_history("r", states.PENDING),
    "inject": lambda s: s.inject({"y": 1}),
    "inject_atom_args": lambda s: s.inject_atom_args("b", {"y": 2}),
    "set_flow_state": lambda s: s.set_flow_state(states.RUNNING),
    "change_flow_state": lambda s: s.change_flow_state(states.RUNNING),
    "add_listener": lambda s: s.add_listener(_listener),
    "remove_listener": lambda s: (s.add_listener(_listener), s.remove_listener(_listener)),
    "invalidate_stale": lambda s: s.invalidate_stale([Task("a", provides="x")]),
    "flush": lambda s: s.flush(),
    "batch": lambda s: s.batch().__enter__(),
    "refresh": lambda s: s.refresh(),
    "close": lambda s: s.close(),
    "has_pending": lambda s: s.has_pending,
    "get_atom_uuid": lambda s: s.get_atom_uuid("a"),
    "get_atom_state": lambda s: s.get_atom_state("a"),
    "get_atom_intention": lambda s: s.get_atom_intention("a"),
    "get_atoms_states": lambda s: s.get_atoms_states(["a", "b"]),
    "get_task_progress": lambda s: s.get_task_progress("a"),
    "get_task_progress_details": lambda s: s.get_task_progress_details("a"),
    "get_execute_result": lambda s: s.get_execute_result("a"),
    "get": lambda s: s.get("a"),
    "get_revert_result": lambda s: s.get_revert_result("undone"),
    "get_execute_failures": lambda s: s.get_execute_failures(),
    "get_failures": lambda s: s.get_failures(),
    "get_revert_failures": lambda s: s.get_revert_failures(),
    "has_failures": lambda s: s.has_failures(),
    "get_retry_history": lambda s: s.get_retry_history("r"),
    "get_retry_histories": lambda s: s.get_retry_histories(),
    "fetch": lambda s: s.fetch("x"),
    "fetch_all": lambda s: s.fetch_all(),
    "fetch_mapped_args": lambda s: s.fetch_mapped_args({"x": "x"}, atom_name="b"),
    "fetch_unsatisfied_args": lambda s: s.fetch_unsatisfied_args("b", {"x": "x"}),
    "get_flow_state": lambda s: s.get_flow_state(),
    "stale_atoms": lambda s: s.stale_atoms([Task("a", provides="x")]),
}
READS = {name for name in CALLS if name.startswith(("get", "has_", "fetch", "stale_"))}


def test_every_public_member_is_covered():
    public = {name for name in dir(Storage) if not name.startswith("_")}
    assert public - UNLOCKED == set(CALLS)


def _in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, threading.Event, list]:
    done, errors = threading.Event(), []

    def run() -> None:
        try:
            call()
        except BaseException as err:  # reported by the test
            errors.append(err)
        finally:
            done.set()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, done, errors


@pytest.mark.parametrize("name", sorted(CALLS))
def test_a_call_waits_while_another_thread_writes(name):
    s = _storage()
    with s.lock.write_lock():
        thread, done, errors = _in_thread(lambda: CALLS[name](s))
        # Unlocked, the call would be done in microseconds; locked, it cannot be.
        assert not done.wait(0.2), f"{name} ran while another thread held the write lock"
    assert done.wait(30), f"{name} did not finish once the lock was free"
    thread.join(30)
    assert not errors, errors


@pytest.mark.parametrize("name", sorted(READS))
def test_reads_share_the_lock(name):
    s = _storage()
    with s.lock.read_lock():
        thread, done, errors = _in_thread(lambda: CALLS[name](s))
        assert done.wait(30), f"{name} waited for a reader"
    thread.join(30)
    assert not errors, errors
