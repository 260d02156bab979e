"""Storage: the engine's interface to persistence, on every backend."""

from __future__ import annotations

import contextlib
import uuid

import pytest

from persistence import models, states
from persistence.atom import Retry, Task
from persistence.backends.memory import MemoryBackend
from persistence.exceptions import (
    ConfigurationError,
    Duplicate,
    InvalidState,
    NotFound,
    StorageFailure,
)
from persistence.failure import Failure
from persistence.storage import AmbiguousName, DisallowedAccess, Storage


def saved_flow(backend, name: str = "flow") -> models.FlowDetail:
    """A flow detail saved (in a logbook) in ``backend``."""
    book = models.LogBook("book")
    flow = models.FlowDetail(name, uuid=str(uuid.uuid4()))
    book.add(flow)
    with contextlib.closing(backend.get_connection()) as conn:
        conn.save_logbook(book)
    return flow


def make_storage(backend, policy: str = "always", **kwargs) -> Storage:
    return Storage(saved_flow(backend), backend, policy=policy, **kwargs)


def reload(backend, flow_uuid: str) -> models.FlowDetail:
    """The flow detail as the backend has it (what a resuming process would see)."""
    with contextlib.closing(backend.get_connection()) as conn:
        return conn.get_flow_details(flow_uuid)


def stored_atom(backend, flow_uuid: str, name: str) -> models.AtomDetail:
    return {ad.name: ad for ad in reload(backend, flow_uuid)}[name]


def boom(message: str = "boom") -> Failure:
    try:
        raise ValueError(message)
    except ValueError:
        return Failure()


# -- atom details -------------------------------------------------------------

def test_ensure_atoms_creates_pending_details_of_the_right_type(backend):
    s = make_storage(backend)
    uuids = s.ensure_atoms([Task("fetch", version=(2, 1)), Retry("again")])
    assert uuids == [s.get_atom_uuid("fetch"), s.get_atom_uuid("again")]
    stored = {ad.name: ad for ad in reload(backend, s.flow_uuid)}
    assert type(stored["fetch"]) is models.TaskDetail
    assert type(stored["again"]) is models.RetryDetail
    assert stored["fetch"].state == states.PENDING
    assert stored["fetch"].version == "2.1"


def test_ensure_atom_is_idempotent_and_reuses_stored_details(backend):
    s = make_storage(backend)
    first = s.ensure_atom(Task("fetch", provides="rows"))
    assert s.ensure_atom(Task("fetch", provides="rows")) == first
    s.save("fetch", [1, 2])
    resumed = Storage(reload(backend, s.flow_uuid), backend)
    assert resumed.ensure_atom(Task("fetch", provides="rows")) == first
    assert resumed.get_atom_state("fetch") == states.SUCCESS
    assert resumed.fetch("rows") == [1, 2]


def test_ensure_atom_rejects_the_injector_name_and_type_changes(backend):
    s = make_storage(backend)
    with pytest.raises(Duplicate, match="reserved"):
        s.ensure_atom(Task(Storage.injector_name))
    s.ensure_atom(Task("a"))
    with pytest.raises(Duplicate, match="TaskDetail"):
        s.ensure_atom(Retry("a"))


def test_without_a_backend_the_flow_lives_in_memory_inside_a_logbook():
    flow = models.FlowDetail("flow", uuid="f-1")
    s = Storage(flow)
    assert isinstance(s.backend, MemoryBackend)
    s.ensure_atom(Task("a"))
    s.save("a", 1)
    with contextlib.closing(s.backend.get_connection()) as conn:
        (book,) = conn.get_logbooks()
        stored = book.find("f-1")
    assert [ad.results for ad in stored] == [1]
    s.close()


def test_properties_describe_the_flow(backend):
    s = make_storage(backend)
    assert s.flow_name == "flow"
    assert s.flow_uuid == s.flow_detail.uuid
    assert s.backend is backend
    assert s.policy == "always"
    assert s.flow_meta == {}
    with s.lock.read_lock():
        assert s.get_flow_state() == states.PENDING
    assert "policy=always" in repr(s)


def test_unknown_policy_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="sometimes"):
        Storage(models.FlowDetail("f", uuid="u"), policy="sometimes")


# -- states and intentions ----------------------------------------------------

def test_states_and_intentions_round_trip_and_persist(backend):
    s = make_storage(backend)
    s.ensure_atoms([Task("a"), Task("b")])
    s.set_atom_state("a", states.RUNNING)
    s.set_atom_intention("b", states.REVERT)
    assert s.get_atom_state("a") == states.RUNNING
    assert s.get_atom_intention("b") == states.REVERT
    assert s.get_atoms_states(["a", "b"]) == {"a": (states.RUNNING, states.EXECUTE),
                                             "b": (states.PENDING, states.REVERT)}
    assert stored_atom(backend, s.flow_uuid, "a").state == states.RUNNING
    assert stored_atom(backend, s.flow_uuid, "b").intention == states.REVERT


def test_bad_states_and_unknown_atoms_raise_typed_errors(backend):
    s = make_storage(backend)
    s.ensure_atom(Task("a"))
    with pytest.raises(InvalidState, match="SLEEPING"):
        s.set_atom_state("a", "SLEEPING")
    with pytest.raises(InvalidState):
        s.set_atom_intention("a", "PONDER")
    with pytest.raises(NotFound, match="'nope'"):
        s.get_atom_state("nope")
    with pytest.raises(NotFound):
        s.save("nope", 1)


# -- results and failures -----------------------------------------------------

def test_save_and_get_results(backend):
    s = make_storage(backend)
    s.ensure_atom(Task("a"))
    with pytest.raises(DisallowedAccess, match="PENDING") as err:
        s.get("a")
    assert err.value.state == states.PENDING
    s.save("a", {"rows": 3})
    assert s.get("a") == s.get_execute_result("a") == {"rows": 3}
    stored = stored_atom(backend, s.flow_uuid, "a")
    assert (stored.state, stored.results) == (states.SUCCESS, {"rows": 3})


def test_a_failure_is_recorded_as_a_failure(backend):
    s = make_storage(backend)
    s.ensure_atoms([Task("a"), Task("b")])
    failure = boom()
    s.save("a", failure)
    assert s.get_atom_state("a") == states.FAILURE
    assert s.get("a") is failure            # the live failure, traceback and all
    assert s.get_execute_failures() == {"a": failure}
    assert s.has_failures()
    stored = stored_atom(backend, s.flow_uuid, "a")
    assert stored.state == states.FAILURE and stored.failure.matches(failure)
    # A new Storage over the reloaded flow sees the stored failure too.
    resumed = Storage(reload(backend, s.flow_uuid), backend)
    assert resumed.get_execute_failures()["a"].check(ValueError)


def test_revert_results_and_failures(backend):
    s = make_storage(backend)
    s.ensure_atoms([Task("a"), Task("b")])
    s.save("a", 1)
    s.save("a", "undone", states.REVERTED)
    assert s.get_revert_result("a") == "undone"
    failure = boom("revert broke")
    s.save("b", failure, states.REVERTED)
    assert s.get_atom_state("b") == states.REVERT_FAILURE
    assert s.get_revert_failures() == {"b": failure}
    assert s.get_execute_failures() == {}


def test_reset_forgets_results_and_failures(backend):
    s = make_storage(backend)
    s.ensure_atom(Task("a", provides="x"))
    s.save("a", boom())
    s.reset("a")
    assert s.get_atom_state("a") == states.PENDING
    assert not s.has_failures()
    with pytest.raises(NotFound):
        s.fetch("x")
    stored = stored_atom(backend, s.flow_uuid, "a")
    assert (stored.state, stored.failure, stored.results) == (states.PENDING, None, None)
    s.reset(Storage.injector_name)   # a no-op, as in TaskFlow


# -- retries ------------------------------------------------------------------

def test_retry_history(backend):
    s = make_storage(backend)
    s.ensure_atoms([Retry("again", provides="attempt"), Task("work")])
    s.save("again", 1)
    failure = boom()
    s.save_retry_failure("again", "work", failure)
    s.save_retry_failure("again", "work", boom("ignored: already recorded"))
    s.save("again", 2)
    history = s.get_retry_history("again")
    assert list(history.provided_iter()) == [1, 2]
    assert history[0][1] == {"work": failure}
    assert history.caused_by(ValueError)
    assert s.fetch("attempt") == 2
    stored = stored_atom(backend, s.flow_uuid, "again")
    assert [data for data, _ in stored.results] == [1, 2]
    assert stored.results[0][1]["work"].matches(failure)
    ((name, hist),) = s.get_retry_histories()
    assert name == "again" and len(hist) == 2
    s.cleanup_retry_history("again", states.PENDING)
    assert len(s.get_retry_history("again")) == 0
    assert stored_atom(backend, s.flow_uuid, "again").results == []


def test_retry_failure_needs_an_attempt_and_a_retry(backend):
    s = make_storage(backend)
    s.ensure_atoms([Retry("again"), Task("work")])
    with pytest.raises(StorageFailure, match="no attempt"):
        s.save_retry_failure("again", "work", boom())
    with pytest.raises(TypeError, match="RetryDetail"):
        s.get_retry_history("work")


# -- progress and metadata ----------------------------------------------------

def test_progress_and_metadata_persist(backend):
    s = make_storage(backend)
    s.ensure_atom(Task("a"))
    assert s.get_task_progress("a") == 0.0
    assert s.get_task_progress_details("a") is None
    s.set_task_progress("a", 0.5, {"rows": 10})
    assert s.get_task_progress("a") == 0.5
    assert s.get_task_progress_details("a") == {"at_progress": 0.5, "details": {"rows": 10}}
    s.update_atom_metadata("a", [("owner", "ops")])
    s.update_flow_metadata({"run": 7})
    assert s.flow_meta == {"run": 7}
    stored = reload(backend, s.flow_uuid)
    assert stored.meta == {"run": 7}
    (ad,) = stored
    assert ad.meta["progress"] == 0.5 and ad.meta["owner"] == "ops"
    s.set_task_progress("a", 0.75, {})
    assert s.get_task_progress_details("a") is None


# -- injection ----------------------------------------------------------------

def test_persistent_flow_injections_live_in_the_injector_detail(backend):
    s = make_storage(backend)
    s.inject({"region": "eu"})
    s.inject({"size": 3})
    injector = stored_atom(backend, s.flow_uuid, "_TaskFlow_INJECTOR")
    assert isinstance(injector, models.TaskDetail)
    assert injector.results == {"region": "eu", "size": 3}
    assert injector.state == states.SUCCESS
    resumed = Storage(reload(backend, s.flow_uuid), backend)
    assert resumed.fetch("region") == "eu"


def test_transient_injections_never_reach_the_backend(backend):
    s = make_storage(backend)
    s.ensure_atom(Task("a", requires=["lock", "conn"]))
    lock, conn = object(), object()          # not serializable: cannot be stored
    s.inject({"lock": lock}, transient=True)
    s.inject_atom_args("a", {"conn": conn})  # transient by default
    assert s.fetch_mapped_args({"lock": "lock", "conn": "conn"}, atom_name="a") == {
        "lock": lock, "conn": conn}
    assert s.fetch("lock") is lock
    stored = reload(backend, s.flow_uuid)
    assert [ad.name for ad in stored] == ["a"]          # no injector detail written
    assert "injected" not in stored.find(s.get_atom_uuid("a")).meta


def test_persistent_atom_injections_live_in_the_atom_meta(backend):
    s = make_storage(backend)
    s.ensure_atom(Task("a"))
    s.inject_atom_args("a", {"limit": 5}, transient=False)
    s.inject_atom_args("a", {"offset": 1}, transient=False)
    assert stored_atom(backend, s.flow_uuid, "a").meta["injected"] == {"limit": 5, "offset": 1}
    with pytest.raises(NotFound):
        s.inject_atom_args("nope", {"x": 1})


def test_precedence_atom_injection_then_flow_injection_then_results(backend):
    s = make_storage(backend)
    s.ensure_atoms([Task("producer", provides="x"), Task("consumer", requires="x"),
                    Task("other", requires="x")])
    s.save("producer", "from result")
    assert s.fetch_mapped_args({"x": "x"}, atom_name="consumer") == {"x": "from result"}
    s.inject({"x": "from flow"})
    assert s.fetch_mapped_args({"x": "x"}, atom_name="consumer") == {"x": "from flow"}
    s.inject_atom_args("consumer", {"x": "from atom"}, transient=False)
    assert s.fetch_mapped_args({"x": "x"}, atom_name="consumer") == {"x": "from atom"}
    s.inject_atom_args("consumer", {"x": "transient atom"})
    assert s.fetch_mapped_args({"x": "x"}, atom_name="consumer") == {"x": "transient atom"}
    assert s.fetch_mapped_args({"x": "x"}, atom_name="other") == {"x": "from flow"}
    s.inject({"x": "transient flow"}, transient=True)
    assert s.fetch("x") == "transient flow"


# -- lookup -------------------------------------------------------------------

def test_results_are_found_by_name_and_index(backend):
    s = make_storage(backend)
    s.ensure_atoms([Task("split", provides=["low", "high"]),
                    Task("keys", provides={"a"}), Task("whole", provides="all")])
    s.save("split", [1, 9])
    s.save("keys", {"a": "A", "b": "B"})
    s.save("whole", {"k": 1})
    assert s.fetch("low") == 1 and s.fetch("high") == 9
    assert s.fetch_all() == {"low": 1, "high": 9, "a": "A", "all": {"k": 1}}
    assert s.fetch_mapped_args({"lo": "low", "hi": "high"}) == {"lo": 1, "hi": 9}


def test_missing_values_name_the_value_and_the_atom(backend):
    s = make_storage(backend)
    s.ensure_atoms([Task("producer", provides="x"), Task("consumer", requires=["x", "y"])])
    with pytest.raises(NotFound, match=r"'y' \(argument 'y'\) needed by atom 'consumer'"):
        s.fetch_mapped_args({"y": "y"}, atom_name="consumer")
    with pytest.raises(NotFound, match=r"'x'.*'consumer'.*'producer'.*PENDING"):
        s.fetch_mapped_args({"x": "x"}, atom_name="consumer")
    with pytest.raises(NotFound, match="'y'"):
        s.fetch("y")


def test_optional_arguments_are_skipped_when_nothing_provides_them(backend):
    s = make_storage(backend)
    s.ensure_atoms([Task("producer", provides="x"), Task("consumer")])
    s.save("producer", 1)
    assert s.fetch_mapped_args({"x": "x", "y": "y"}, atom_name="consumer",
                               optional_args=["y"]) == {"x": 1}


def test_a_result_without_the_provided_item_is_not_found(backend):
    s = make_storage(backend)
    s.ensure_atoms([Task("split", provides=["low", "high"]), Task("c")])
    s.save("split", [1])                 # logs a warning: 'high' is missing
    with pytest.raises(NotFound, match="item 1"):
        s.fetch_mapped_args({"h": "high"}, atom_name="c")


def test_several_providers_need_a_scope(backend):
    s = make_storage(backend)
    s.ensure_atoms([Task("left", provides="x"), Task("right", provides="x"),
                    Task("join", requires="x")])
    s.save("left", "L")
    s.save("right", "R")
    with pytest.raises(AmbiguousName, match="left, right") as err:
        s.fetch_mapped_args({"x": "x"}, atom_name="join")
    assert err.value.providers == ["left", "right"]
    with pytest.raises(AmbiguousName):
        s.fetch("x")
    assert s.fetch("x", many_handler=sorted) == ["L", "R"]
    assert s.fetch_all()["x"] == ["L", "R"]
    assert s.fetch_mapped_args({"x": "x"}, atom_name="join",
                               scope_walker=[["right"], ["left"]]) == {"x": "R"}
    assert s.fetch_mapped_args({"x": "x"}, atom_name="join",
                               scope_walker=["left", "right"]) == {"x": "L"}
    with pytest.raises(NotFound, match="none of which is in its scope"):
        s.fetch_mapped_args({"x": "x"}, atom_name="join", scope_walker=[["other"]])


def test_scope_lookup_from_the_constructor_resolves_providers(backend):
    scopes = {"join": [["right"], ["left"]]}
    s = make_storage(backend, scope_lookup=scopes.get)
    s.ensure_atoms([Task("left", provides="x"), Task("right", provides="x"),
                    Task("join", requires="x")])
    s.save("left", "L")
    s.save("right", "R")
    assert s.fetch_mapped_args({"x": "x"}, atom_name="join") == {"x": "R"}
    with pytest.raises(TypeError):
        Storage(s.flow_detail, backend, scope_lookup=scopes.get, scope_fetcher=scopes.get)


def test_ignored_providers_provide_nothing(backend):
    s = make_storage(backend)
    s.ensure_atoms([Task("left", provides="x"), Task("right", provides="x"), Task("join")])
    s.set_atom_state("left", states.IGNORE)
    s.save("right", "R")
    assert s.fetch_mapped_args({"x": "x"}, atom_name="join") == {"x": "R"}


def test_fetch_unsatisfied_args(backend):
    s = make_storage(backend)
    s.ensure_atoms([Task("producer", provides="x"), Task("consumer")])
    mapping = {"x": "x", "y": "y", "z": "z", "w": "w"}
    s.inject({"y": 1})
    s.inject_atom_args("consumer", {"z": 2})
    assert s.fetch_unsatisfied_args("consumer", mapping) == {"w"}
    assert s.fetch_unsatisfied_args("consumer", mapping, optional_args=["w"]) == set()
    assert s.fetch_unsatisfied_args("consumer", mapping, scope_walker=[]) == {"x", "w"}


# -- flow state ---------------------------------------------------------------

def test_change_flow_state(backend):
    s = make_storage(backend)
    assert s.get_flow_state() == states.PENDING
    assert s.change_flow_state(states.RUNNING) == (True, states.PENDING)
    assert s.change_flow_state(states.RUNNING) == (False, states.RUNNING)
    assert reload(backend, s.flow_uuid).state == states.RUNNING
    with pytest.raises(InvalidState):
        s.change_flow_state(states.PENDING)
    assert s.change_flow_state(states.SUCCESS) == (True, states.RUNNING)
    assert s.change_flow_state(states.SUSPENDING) == (False, states.SUCCESS)
    with pytest.raises(InvalidState):
        s.set_flow_state("DONE")
