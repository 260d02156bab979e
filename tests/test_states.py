"""State constants and the transition tables for flows, tasks and retries."""

from __future__ import annotations

import functools
import itertools

import pytest

from persistence import states
from persistence.exceptions import InvalidState

_retry = functools.partial(states.check_atom_transition, retry=True)

P, RUN, OK, FAIL = states.PENDING, states.RUNNING, states.SUCCESS, states.FAILURE
REVERTING, REVERTED, REVERT_FAILURE = states.REVERTING, states.REVERTED, states.REVERT_FAILURE
RETRYING, IGNORE = states.RETRYING, states.IGNORE
SUSPENDING, SUSPENDED, RESUMING = states.SUSPENDING, states.SUSPENDED, states.RESUMING

# The flow state machine of TaskFlow 6.5's engine, written out pair by pair.
FLOW_ALLOWED = {
    (P, RUN),
    (RUN, OK), (RUN, FAIL), (RUN, REVERTED), (RUN, SUSPENDING), (RUN, RESUMING),
    (OK, RUN), (OK, P), (FAIL, RUN), (REVERTED, P),
    (SUSPENDING, SUSPENDED), (SUSPENDING, OK), (SUSPENDING, FAIL), (SUSPENDING, REVERTED),
    (SUSPENDING, RESUMING),
    (SUSPENDED, RUN),
    (RESUMING, SUSPENDED),
}
# Suspend/resume requests to a flow that is not running are harmless no-ops.
FLOW_IGNORED = {(a, b) for a in (P, OK, FAIL, SUSPENDED, REVERTED)
                for b in (SUSPENDING, SUSPENDED, RESUMING) if a != b}

# What a task must be able to do (the documented atom state diagram) ...
ATOM_REQUIRED = {
    (P, RUN), (P, IGNORE), (RUN, OK), (RUN, FAIL), (OK, REVERTING), (FAIL, REVERTING),
    (REVERTING, REVERTED), (REVERTING, REVERT_FAILURE), (REVERTED, P), (IGNORE, P),
}
# ... and what no atom may ever do.
ATOM_FORBIDDEN = {
    (P, OK), (P, FAIL), (P, REVERTED), (RUN, P), (RUN, REVERTED), (RUN, IGNORE),
    (OK, FAIL), (FAIL, OK), (REVERTING, OK), (REVERTING, RUN), (REVERTED, OK),
    (REVERTED, FAIL), (IGNORE, RUN), (IGNORE, OK), (REVERT_FAILURE, OK),
}


def test_constants_are_their_names():
    for name in ("PENDING", "RUNNING", "SUCCESS", "FAILURE", "REVERTING", "REVERTED",
                 "REVERT_FAILURE", "RETRYING", "IGNORE", "SUSPENDING", "SUSPENDED",
                 "RESUMING", "EXECUTE", "REVERT", "RETRY"):
        assert getattr(states, name) == name
    assert set(states.INTENTIONS) == {"EXECUTE", "REVERT", "RETRY", "IGNORE"}
    assert states.ATOM_STATES == {P, RUN, OK, FAIL, REVERTING, REVERTED, REVERT_FAILURE,
                                  RETRYING, IGNORE}
    assert states.FLOW_STATES == {P, RUN, OK, FAIL, REVERTED, SUSPENDING, SUSPENDED, RESUMING}
    assert states.FINISHED_ATOM_STATES <= states.ATOM_STATES
    assert RUN not in states.FINISHED_ATOM_STATES and OK in states.FINISHED_ATOM_STATES


def _outcome(check, old, new):
    try:
        return check(old, new)
    except InvalidState as err:
        assert old in str(err) and new in str(err)
        return "invalid"


def test_flow_table_is_exactly_the_documented_one():
    for old, new in itertools.product(sorted(states.FLOW_STATES), repeat=2):
        got = _outcome(states.check_flow_transition, old, new)
        if (old, new) in FLOW_ALLOWED:
            assert got is True, (old, new)
        elif old == new or (old, new) in FLOW_IGNORED:
            assert got is False, (old, new)
        else:
            assert got == "invalid", (old, new)


@pytest.mark.parametrize("check", [states.check_atom_transition, _retry],
                         ids=["task", "retry"])
def test_atom_tables_allow_the_documented_and_forbid_the_absurd(check):
    for pair in ATOM_REQUIRED:
        assert check(*pair) is True, pair
    for pair in ATOM_FORBIDDEN:
        with pytest.raises(InvalidState):
            check(*pair)
    for state in states.ATOM_STATES:
        assert check(state, state) is False


@pytest.mark.parametrize("check", [states.check_atom_transition, _retry,
                                   states.check_flow_transition])
def test_every_pair_is_allowed_ignored_or_invalid(check):
    """No pair of states crashes the check, unknown states included."""
    names = sorted(states.ATOM_STATES | states.FLOW_STATES) + ["BOGUS"]
    for old, new in itertools.product(names, repeat=2):
        assert _outcome(check, old, new) in (True, False, "invalid")
    with pytest.raises(InvalidState):
        check("BOGUS", RUN)


def test_only_retries_may_retry():
    assert _retry(OK, RETRYING) is True
    assert _retry(RETRYING, RUN) is True
    with pytest.raises(InvalidState):
        states.check_atom_transition(OK, RETRYING)
    with pytest.raises(InvalidState):
        states.check_atom_transition(RETRYING, RUN)


@pytest.mark.parametrize("check", [states.check_atom_transition, _retry],
                         ids=["task", "retry"])
def test_every_atom_state_is_reachable_from_pending_and_can_be_reset(check):
    def allowed(old, new):
        return _outcome(check, old, new) is True

    universe = states.ATOM_STATES - ({RETRYING} if check is states.check_atom_transition
                                     else set())
    reachable, frontier = {P}, [P]
    while frontier:
        old = frontier.pop()
        for new in universe - reachable:
            if allowed(old, new):
                reachable.add(new)
                frontier.append(new)
    assert reachable == universe
    # From every state an atom can get back to PENDING (to run again).
    for start in universe:
        seen, frontier = {start}, [start]
        while frontier and P not in seen:
            old = frontier.pop()
            for new in universe - seen:
                if allowed(old, new):
                    seen.add(new)
                    frontier.append(new)
        assert P in seen, start


def test_flow_can_always_get_back_to_running():
    for start in states.FLOW_STATES:
        seen, frontier = {start}, [start]
        while frontier and RUN not in seen:
            old = frontier.pop()
            for new in states.FLOW_STATES - seen:
                if _outcome(states.check_flow_transition, old, new) is True:
                    seen.add(new)
                    frontier.append(new)
        assert RUN in seen, start


def test_engine_checks_answer_as_taskflow_does():
    """TaskFlow's names keep TaskFlow's semantics: task/retry checks never raise."""
    assert states.check_task_transition(P, RUN) is True
    assert states.check_task_transition(OK, RETRYING) is False
    assert states.check_task_transition("BOGUS", RUN) is False
    assert states.check_retry_transition(OK, RETRYING) is True
    assert states.check_retry_transition(RETRYING, RUN) is True
    assert states.check_retry_transition(RUN, P) is False
    assert states.check_job_transition(states.UNCLAIMED, states.CLAIMED) is True
    assert states.check_job_transition(states.CLAIMED, states.CLAIMED) is False
    with pytest.raises(InvalidState):
        states.check_job_transition(states.COMPLETE, states.CLAIMED)
    assert states.INTENTIONS == ("EXECUTE", "IGNORE", "REVERT", "RETRY")


def test_every_taskflow_state_name_and_check_exists_here():
    taskflow_states = pytest.importorskip("taskflow.states")
    for name in dir(taskflow_states):
        value = getattr(taskflow_states, name)
        if name.isupper() and not name.startswith("_"):
            assert getattr(states, name) == value, name
    for old, new in itertools.product(sorted(states.ATOM_STATES | states.FLOW_STATES),
                                      repeat=2):
        assert states.check_task_transition(old, new) == \
            taskflow_states.check_task_transition(old, new)
        assert states.check_retry_transition(old, new) == \
            taskflow_states.check_retry_transition(old, new)
    for old, new in itertools.product(sorted(states.FLOW_STATES), repeat=2):
        try:
            theirs = taskflow_states.check_flow_transition(old, new)
        except Exception:
            theirs = "invalid"
        assert _outcome(states.check_flow_transition, old, new) == theirs, (old, new)
