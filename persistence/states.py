"""States of flows and atoms, intentions, and the transitions between them.

The names and values match TaskFlow's ``taskflow.states`` so stored records
are interchangeable.
"""

from __future__ import annotations

from .exceptions import InvalidState

__all__ = [
    "PENDING", "RUNNING", "SUCCESS", "FAILURE", "REVERTING", "REVERTED",
    "REVERT_FAILURE", "RETRYING", "IGNORE", "SUSPENDING", "SUSPENDED", "RESUMING",
    "EXECUTE", "REVERT", "RETRY",
    "ATOM_STATES", "FLOW_STATES", "INTENTIONS", "FINISHED_ATOM_STATES",
    "check_flow_transition", "check_atom_transition", "check_retry_transition",
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
INTENTIONS = frozenset((EXECUTE, IGNORE, REVERT, RETRY))

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
    (RUNNING, RESUMING),
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
    (SUSPENDED, RESUMING),
    (RESUMING, RUNNING),
    (RESUMING, SUSPENDED),
))

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


def check_atom_transition(old: str, new: str) -> bool:
    """True if a task atom may go from ``old`` to ``new``; False if ``old == new``."""
    return _check(_ATOM_TRANSITIONS, old, new, "atom")


def check_retry_transition(old: str, new: str) -> bool:
    """Like :func:`check_atom_transition`, for retry atoms (which may also retry)."""
    return _check(_RETRY_TRANSITIONS, old, new, "retry atom")
