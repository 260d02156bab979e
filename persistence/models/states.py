"""States of flows and atoms, intentions, and the transitions between them.

The names, values and checks match TaskFlow's ``taskflow.states`` (6.5), so
stored records are interchangeable and an engine written against TaskFlow's
module behaves the same on this one: :func:`check_flow_transition` and
:func:`check_job_transition` return True (go), False (ignore) or raise
:class:`~persistence.exceptions.InvalidState`; :func:`check_task_transition`
and :func:`check_retry_transition` answer True or False.
:func:`check_atom_transition` is this library's own stricter check: a wider
table (resets, reverts of atoms that never finished) and an error for anything
else.
"""

from __future__ import annotations

from ..exceptions import InvalidState

__all__ = [
    "PENDING", "RUNNING", "SUCCESS", "FAILURE", "REVERTING", "REVERTED",
    "REVERT_FAILURE", "RETRYING", "IGNORE", "SUSPENDING", "SUSPENDED", "RESUMING",
    "EXECUTE", "REVERT", "RETRY", "CLAIMED", "COMPLETE", "UNCLAIMED",
    "SCHEDULING", "WAITING", "ANALYZING",
    "ATOM_STATES", "FLOW_STATES", "INTENTIONS", "FINISHED_ATOM_STATES",
    "check_flow_transition", "check_atom_transition", "check_task_transition",
    "check_retry_transition", "check_job_transition",
]

# Shared by flows and atoms.
PENDING = "PENDING"
RUNNING = "RUNNING"
SUCCESS = "SUCCESS"
FAILURE = "FAILURE"
REVERTED = "REVERTED"

# Atoms only.
REVERTING = "REVERTING"
REVERT_FAILURE = "REVERT_FAILURE"
RETRYING = "RETRYING"
IGNORE = "IGNORE"

# Flows only.
SUSPENDING = "SUSPENDING"
SUSPENDED = "SUSPENDED"
RESUMING = "RESUMING"

# Intentions: what the engine means to do next with an atom.
EXECUTE = "EXECUTE"
REVERT = "REVERT"
RETRY = "RETRY"
INTENTIONS = (EXECUTE, IGNORE, REVERT, RETRY)

# Jobs (a job board's view of a unit of work).
CLAIMED = "CLAIMED"
COMPLETE = "COMPLETE"
UNCLAIMED = "UNCLAIMED"

# What an engine's own state machine goes through while it runs a flow.
SCHEDULING = "SCHEDULING"
WAITING = "WAITING"
ANALYZING = "ANALYZING"

ATOM_STATES = frozenset((PENDING, RUNNING, SUCCESS, FAILURE, REVERTING, REVERTED,
                         REVERT_FAILURE, RETRYING, IGNORE))
FLOW_STATES = frozenset((PENDING, RUNNING, SUCCESS, FAILURE, REVERTED,
                         SUSPENDING, SUSPENDED, RESUMING))
# An atom in one of these states has nothing left to do on resumption.
FINISHED_ATOM_STATES = frozenset((SUCCESS, FAILURE, REVERTED, REVERT_FAILURE, IGNORE))

_FLOW_TRANSITIONS = frozenset((
    (PENDING, RUNNING),
    (RUNNING, SUCCESS),
    (RUNNING, FAILURE),
    (RUNNING, REVERTED),
    (RUNNING, SUSPENDING),
    (RUNNING, RESUMING),     # an engine takes over a flow whose last run died
    (SUCCESS, RUNNING),      # a finished flow may be run again (new atoms added)
    (SUCCESS, PENDING),
    (FAILURE, RUNNING),
    (REVERTED, PENDING),
    (SUSPENDING, SUSPENDED),
    (SUSPENDING, SUCCESS),
    (SUSPENDING, FAILURE),
    (SUSPENDING, REVERTED),
    (SUSPENDING, RESUMING),
    (SUSPENDED, RUNNING),
    (RESUMING, SUSPENDED),   # resumed: parked until run (RESUMING -> SUSPENDED -> RUNNING)
))

_JOB_TRANSITIONS = frozenset(((UNCLAIMED, CLAIMED), (CLAIMED, UNCLAIMED), (CLAIMED, COMPLETE)))

# TaskFlow's task and retry tables (the engine's view: no resets here).
_TASK_TRANSITIONS = frozenset((
    (PENDING, RUNNING), (PENDING, IGNORE), (RUNNING, SUCCESS), (RUNNING, FAILURE),
    (FAILURE, REVERTING), (SUCCESS, REVERTING), (REVERTING, REVERTED),
    (REVERTING, REVERT_FAILURE), (REVERTED, PENDING), (IGNORE, PENDING),
))
_RETRY_ENGINE_TRANSITIONS = _TASK_TRANSITIONS | {(SUCCESS, RETRYING), (RETRYING, RUNNING)}

# Requests that are harmless no-ops: asking a flow that is not running to
# suspend or resume, or "changing" to the state it already has.
_IGNORED_FLOW_TRANSITIONS = frozenset(
    [(a, b) for a in (PENDING, SUCCESS, FAILURE, SUSPENDED, REVERTED)
     for b in (SUSPENDING, SUSPENDED, RESUMING) if a != b]
    + [(s, s) for s in FLOW_STATES]
)

_ATOM_TRANSITIONS = frozenset((
    (PENDING, RUNNING),
    (PENDING, IGNORE),
    (PENDING, REVERTING),    # revert of an atom that never ran
    (RUNNING, SUCCESS),
    (RUNNING, FAILURE),
    (RUNNING, REVERTING),    # revert requested while running
    (SUCCESS, REVERTING),
    (SUCCESS, PENDING),      # reset for a re-run
    (FAILURE, REVERTING),
    (FAILURE, PENDING),
    (REVERTING, REVERTED),
    (REVERTING, REVERT_FAILURE),
    (REVERTED, PENDING),
    (REVERT_FAILURE, REVERTING),
    (REVERT_FAILURE, PENDING),
    (IGNORE, PENDING),
))

_RETRY_TRANSITIONS = _ATOM_TRANSITIONS | frozenset((
    (SUCCESS, RETRYING),
    (RETRYING, RUNNING),
    (RETRYING, PENDING),
))


def _check(table: frozenset, old: str, new: str, kind: str) -> bool:
    if old == new:
        return False
    if (old, new) in table:
        return True
    raise InvalidState(f"{kind} cannot go from {old} to {new}")


def check_flow_transition(old: str, new: str) -> bool:
    """True if a flow may go from ``old`` to ``new``; False if the change is a no-op.

    Raises :class:`InvalidState` for a transition the table forbids.
    """
    # Allowed pairs win over ignored ones: SUSPENDED -> RESUMING is in both.
    if (old, new) in _FLOW_TRANSITIONS:
        return True
    if (old, new) in _IGNORED_FLOW_TRANSITIONS:
        return False
    return _check(_FLOW_TRANSITIONS, old, new, "flow")


def check_atom_transition(old: str, new: str, retry: bool = False) -> bool:
    """True if an atom may go from ``old`` to ``new``; False if ``old == new``;
    :class:`InvalidState` otherwise.  ``retry=True``: a retry atom (which may
    also retry)."""
    if retry:
        return _check(_RETRY_TRANSITIONS, old, new, "retry atom")
    return _check(_ATOM_TRANSITIONS, old, new, "atom")


def check_task_transition(old: str, new: str) -> bool:
    """Whether an engine may move a task from ``old`` to ``new`` (as TaskFlow: never raises)."""
    return (old, new) in _TASK_TRANSITIONS


def check_retry_transition(old: str, new: str) -> bool:
    """Whether an engine may move a retry from ``old`` to ``new`` (as TaskFlow: never raises)."""
    return (old, new) in _RETRY_ENGINE_TRANSITIONS


def check_job_transition(old: str, new: str) -> bool:
    """True if a job may go from ``old`` to ``new``; False if unchanged;
    :class:`InvalidState` otherwise."""
    return _check(_JOB_TRANSITIONS, old, new, "job")
