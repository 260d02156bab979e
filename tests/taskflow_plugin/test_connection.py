"""The plugin's TaskFlow connection on every backend: TaskFlow's semantics, our checks.

Every field of TaskFlow's models survives the trip to our records and back,
missing records raise TaskFlow's ``NotFound``, writes merge into what is
stored and return the merged object as TaskFlow's backends do, and a write
from an object older than the store is refused with a ``StorageFailure``
caused by our ``Conflict`` (see ``persistence.integrations.taskflow.lineage``).
"""

from __future__ import annotations

import contextlib
import copy
import pickle
import types

import pytest
from taskflow import exceptions as tf_exc
from taskflow import states as tf_states
from taskflow.persistence import models as tf_models
from taskflow.types import failure as tf_failure

from persistence import exceptions, states


def _captured(exc: BaseException) -> tf_failure.Failure:
    try:
        raise exc
    except BaseException:
        return tf_failure.Failure()


def _chained() -> tf_failure.Failure:
    try:
        try:
            try:
                raise OSError(5, "disk gone")
            except OSError as err:
                raise KeyError("row") from err
        except KeyError as err:
            raise ValueError("import failed", 42) from err
    except ValueError:
        return tf_failure.Failure()


def _shape(failure: tf_failure.Failure) -> tuple:
    """Everything TaskFlow compares of a failure but its live exception, causes included."""
    return (list(failure), failure.exception_str, failure.traceback_str,
            failure.exception_args,
            [_shape(cause) for cause in failure.causes])


def _saved_book(conn, *, atoms: int = 2):
    book = tf_models.LogBook("book")
    flow = tf_models.FlowDetail("flow", uuid=f"{book.uuid}-f")
    for i in range(atoms):
        detail = tf_models.TaskDetail(f"t{i}", uuid=f"{book.uuid}-t{i}")
        detail.state = tf_states.PENDING
        flow.add(detail)
    book.add(flow)
    conn.save_logbook(book)
    return book, flow


def test_missing_records_raise_taskflow_not_found_caused_by_ours(tf_conn):
    calls = [lambda: tf_conn.get_logbook("no-such-book"),
             lambda: tf_conn.get_logbook("no-such-book", lazy=True),
             lambda: tf_conn.get_flow_details("no-such-flow"),
             lambda: tf_conn.get_atom_details("no-such-atom"),
             lambda: tf_conn.get_flows_for_book("no-such-book"),
             lambda: tf_conn.get_atoms_for_flow("no-such-flow"),
             lambda: tf_conn.destroy_logbook("no-such-book")]
    for call in calls:
        with pytest.raises(tf_exc.NotFound) as caught:
            call()
        assert isinstance(caught.value.__cause__, exceptions.NotFound)
        assert caught.value.cause is caught.value.__cause__


def test_details_of_an_unsaved_logbook_cannot_be_updated(tf_conn):
    book = tf_models.LogBook("never saved")
    flow = tf_models.FlowDetail("flow", uuid=f"{book.uuid}-f")
    detail = tf_models.TaskDetail("t", uuid=f"{book.uuid}-t")
    flow.add(detail)
    book.add(flow)
    for call in (tf_conn.update_flow_details, tf_conn.update_atom_details):
        with pytest.raises(tf_exc.NotFound, match="never saved"):
            call(flow if call == tf_conn.update_flow_details else detail)
    assert list(tf_conn.get_logbooks()) == []


def test_every_field_survives_our_store_both_ways(plugin_store, tf_conn):
    book = tf_models.LogBook("fields")
    book.meta = {"owner": "ops", "n": [1, 2]}
    flow = tf_models.FlowDetail("flow", uuid=f"{book.uuid}-f")
    flow.state, flow.meta = tf_states.FAILURE, {"progress": 0.5}
    task = tf_models.TaskDetail("task", uuid=f"{book.uuid}-t")
    task.state, task.intention, task.version = tf_states.REVERT_FAILURE, tf_states.REVERT, "2.1"
    task.results = {"rows": [1, 2, 3], "ok": True}
    task.failure, task.revert_failure = _chained(), _captured(RuntimeError("undo failed"))
    task.revert_results = {"undone": 2}
    task.meta = {"injected": {"limit": 10}}
    retry = tf_models.RetryDetail("retry", uuid=f"{book.uuid}-r")
    retry.state = tf_states.SUCCESS
    retry.results = [(1, {"task": _captured(TimeoutError("slow"))}), (2, {})]
    flow.add(task)
    flow.add(retry)
    book.add(flow)
    assert tf_conn.save_logbook(book) is book       # a new book comes back as itself

    # Our API sees TaskFlow's fields in our records.
    with contextlib.closing(plugin_store.backend.get_connection()) as conn:
        ours = conn.get_logbook(book.uuid)
    assert (ours.name, dict(ours.meta)) == ("fields", {"owner": "ops", "n": [1, 2]})
    assert ours.created_at.utcoffset() is not None
    assert ours.created_at.replace(tzinfo=None) == book.created_at
    our_flow = ours.find(flow.uuid)
    assert (our_flow.state, dict(our_flow.meta)) == (states.FAILURE, {"progress": 0.5})
    our_task = our_flow.find(task.uuid)
    assert (our_task.state, our_task.intention, our_task.version) == (
        states.REVERT_FAILURE, states.REVERT, "2.1")
    assert our_task.results == {"rows": [1, 2, 3], "ok": True}
    assert our_task.revert_results == {"undone": 2}
    assert dict(our_task.meta) == {"injected": {"limit": 10}}
    chain = [our_task.failure, our_task.failure.cause, our_task.failure.cause.cause]
    assert [f.exception_str for f in chain] == [str(ValueError("import failed", 42)),
                                                "'row'", "[Errno 5] disk gone"]
    assert chain[0].check(ValueError) and chain[1].check(KeyError) and chain[2].check(OSError)
    assert chain[2].cause is None
    assert our_task.revert_failure.check(RuntimeError)
    our_retry = our_flow.find(retry.uuid)
    assert [data for data, _ in our_retry.results] == [1, 2]
    assert our_retry.results[0][1]["task"].check(TimeoutError)

    # ... and TaskFlow gets back what it stored.
    got = tf_conn.get_logbook(book.uuid)
    assert (got.name, got.meta, got.created_at) == (book.name, book.meta, book.created_at)
    got_task = got.find(flow.uuid).find(task.uuid)
    assert isinstance(got_task, tf_models.TaskDetail)
    for field in ("state", "intention", "version", "results", "revert_results", "meta"):
        assert getattr(got_task, field) == getattr(task, field), field
    for mine, theirs in ((got_task.failure, task.failure),
                         (got_task.revert_failure, task.revert_failure)):
        assert _shape(mine) == _shape(theirs)
    assert len(_shape(got_task.failure)[-1]) == 2      # the whole chain, as TaskFlow shapes it
    # TaskFlow's matches() compares causes with their live exceptions, so (as with
    # its own backends) only a failure without causes matches once reloaded.
    assert got_task.revert_failure.matches(task.revert_failure)
    got_retry = got.find(flow.uuid).find(retry.uuid)
    assert isinstance(got_retry, tf_models.RetryDetail)
    assert [data for data, _ in got_retry.results] == [1, 2]
    assert got_retry.results[0][1]["task"].check(TimeoutError)


def test_writes_merge_into_the_store_and_return_the_merged_object(tf_conn):
    book, flow = _saved_book(tf_conn)
    # A flow object of the application's own, holding one of the two atoms.
    partial = tf_models.FlowDetail("renamed", uuid=flow.uuid)
    partial.state = tf_states.RUNNING
    only = tf_models.TaskDetail("also renamed", uuid=f"{book.uuid}-t0")
    only.state = tf_states.RUNNING
    partial.add(only)
    merged = tf_conn.update_flow_details(partial)
    assert merged is not partial
    assert (merged.name, merged.state) == ("flow", tf_states.RUNNING)   # names stay
    assert sorted(ad.name for ad in merged) == ["t0", "t1"]              # stored atoms stay
    assert merged.find(only.uuid).state == tf_states.RUNNING

    again = tf_models.LogBook("other name", uuid=book.uuid)
    extra = tf_models.FlowDetail("second", uuid=f"{book.uuid}-f2")
    again.add(extra)
    saved = tf_conn.save_logbook(again)
    assert saved is not again and saved.name == "book"
    assert sorted(fd.name for fd in saved) == ["flow", "second"]
    assert saved.find(extra.uuid) is extra     # a new flow is the one handed in, as TaskFlow's

    detail = tf_models.TaskDetail("whatever", uuid=f"{book.uuid}-t1")
    detail.state, detail.results = tf_states.SUCCESS, 7
    returned = tf_conn.update_atom_details(detail)
    assert returned is not detail and (returned.name, returned.results) == ("t1", 7)
    stored = tf_conn.get_logbook(book.uuid)
    assert stored.find(flow.uuid).find(detail.uuid).results == 7
    assert isinstance(tf_conn.get_logbooks(), types.GeneratorType)


def test_taskflow_storage_copies_stay_in_one_lineage(tf_conn):
    """Storage's pattern: copy, change the copy, save it, take the result over.
    The original and every copy share the revision: no false conflicts."""
    book, flow = _saved_book(tf_conn)
    source = flow.find(f"{book.uuid}-t0")
    for state in (tf_states.RUNNING, tf_states.SUCCESS, tf_states.REVERTING):
        clone = source.copy()
        clone.state = state
        source.update(tf_conn.update_atom_details(clone))
    flow_clone = flow.copy()
    added = tf_models.TaskDetail("t9", uuid=f"{book.uuid}-t9")
    flow_clone.add(added)
    flow.update(tf_conn.update_flow_details(flow_clone))
    for detail in flow:      # the atoms the returned flow holds are linked too
        clone = detail.copy()
        clone.meta["seen"] = True
        detail.update(tf_conn.update_atom_details(clone))
    stored = tf_conn.get_flow_details(flow.uuid)
    assert stored.find(source.uuid).state == tf_states.REVERTING
    assert sorted(ad.name for ad in stored if ad.meta.get("seen")) == ["t0", "t1", "t9"]


def test_stale_objects_get_conflict_and_nothing_is_written(plugin_store, tf_conn):
    book, flow = _saved_book(tf_conn)
    first, second = tf_conn.get_logbook(book.uuid), tf_conn.get_logbook(book.uuid)
    mine = first.find(flow.uuid).find(f"{book.uuid}-t0")
    theirs = second.find(flow.uuid).find(f"{book.uuid}-t0")
    mine.state, mine.results = tf_states.SUCCESS, "mine"
    tf_conn.update_atom_details(mine)

    theirs.state, theirs.results = tf_states.SUCCESS, "theirs"
    for write, obj in ((tf_conn.update_atom_details, theirs),
                       (tf_conn.update_flow_details, second.find(flow.uuid)),
                       (tf_conn.save_logbook, second)):
        with pytest.raises(tf_exc.StorageFailure) as caught:
            write(obj)
        assert isinstance(caught.value.__cause__, exceptions.Conflict), write
    # Another backend instance on the same store sees the same records as stale.
    with contextlib.closing(plugin_store.taskflow_backend()) as other:
        with contextlib.closing(other.get_connection()) as conn:
            with pytest.raises(tf_exc.StorageFailure):
                conn.update_atom_details(theirs)
            assert conn.get_atom_details(mine.uuid).results == "mine"
    # Loading again gives a fresh object, whose write goes through.
    fresh = tf_conn.get_atom_details(mine.uuid)
    fresh.results = "theirs, redone"
    tf_conn.update_atom_details(fresh)
    assert tf_conn.get_atom_details(mine.uuid).results == "theirs, redone"


def test_a_linked_atom_is_written_without_reading_it_first(tf_conn, monkeypatch):
    book, flow = _saved_book(tf_conn)
    inner = tf_conn.persistence_connection
    reads = []
    original = inner.get_atom_details
    monkeypatch.setattr(inner, "get_atom_details",
                        lambda uuid: reads.append(uuid) or original(uuid))
    linked = flow.find(f"{book.uuid}-t0")
    linked.state = tf_states.RUNNING
    tf_conn.update_atom_details(linked)
    assert reads == []
    unlinked = tf_models.TaskDetail("t1", uuid=f"{book.uuid}-t1")
    tf_conn.update_atom_details(unlinked)
    assert reads == [unlinked.uuid]


def test_deep_copies_and_unpickled_objects_start_their_own_lineage(tf_conn):
    book, flow = _saved_book(tf_conn)
    detail = flow.find(f"{book.uuid}-t0")
    deep, unpickled = copy.deepcopy(detail), pickle.loads(pickle.dumps(detail))
    deep.results = "from the deep copy"          # same revision as the store: goes through
    tf_conn.update_atom_details(deep)
    with pytest.raises(tf_exc.StorageFailure) as caught:
        tf_conn.update_atom_details(detail)     # the original is now behind the store
    assert isinstance(caught.value.__cause__, exceptions.Conflict)
    unpickled.results = "from another process"  # no expectation: merges, as TaskFlow's
    tf_conn.update_atom_details(unpickled)
    assert tf_conn.get_atom_details(detail.uuid).results == "from another process"


def test_processes_sharing_a_logbook_can_each_add_flows(plugin_store, tf_conn):
    """Each adds a flow to its own (older) copy of the logbook: nothing another wrote
    is overwritten, so both saves go through; a changed meta of an old copy does not."""
    book, _ = _saved_book(tf_conn)
    with contextlib.closing(plugin_store.taskflow_backend()) as other:
        with contextlib.closing(other.get_connection()) as elsewhere:
            theirs = elsewhere.get_logbook(book.uuid, lazy=True)
            theirs.add(tf_models.FlowDetail("theirs", uuid=f"{book.uuid}-theirs"))
            elsewhere.save_logbook(theirs)
    book.add(tf_models.FlowDetail("mine", uuid=f"{book.uuid}-mine"))
    tf_conn.save_logbook(book)
    assert sorted(fd.name for fd in tf_conn.get_logbook(book.uuid)) == [
        "flow", "mine", "theirs"]
    theirs.meta["owner"] = "them"               # theirs is now behind the store
    with pytest.raises(tf_exc.StorageFailure) as caught:
        tf_conn.save_logbook(theirs)
    assert isinstance(caught.value.__cause__, exceptions.Conflict)
    assert tf_conn.get_logbook(book.uuid, lazy=True).meta == {}
