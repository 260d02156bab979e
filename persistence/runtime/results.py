"""Atoms' results and failures, as :class:`~.storage.Storage` saves and reads them.

A result and the state it leaves the atom in are one write (with the
fingerprint of what produced it, see :mod:`.staleness`).  An atom has an
execute result while SUCCESS, FAILURE or REVERTING, and a revert result while
REVERTED, REVERT_FAILURE or REVERTING; asked for one in another state it
raises :class:`~persistence.exceptions.DisallowedAccess`.  A stored Failure
is returned whatever the state.  Callers hold Storage's lock.
"""

from __future__ import annotations

import logging
from typing import Any

from ..exceptions import DisallowedAccess
from ..models import records as models
from ..models import states
from ..models.failure import Failure
from .details import INJECTOR_NAME, Details, check
from .lookup import Lookup
from .staleness import META_FINGERPRINT, Staleness
from .write_policy import WritePolicy

__all__ = ["Results", "last_result", "STATES_WITH_RESULTS"]

# Storage's logger: the warning below is Storage's, as it was before this module existed.
LOG = logging.getLogger(__package__ + ".storage")

# While an atom is REVERTING its execute result is still there (the revert is
# handed it), and so is a revert result being replaced.
_EXECUTE_RESULT_STATES = frozenset((states.SUCCESS, states.FAILURE, states.REVERTING))
_REVERT_RESULT_STATES = frozenset((states.REVERTED, states.REVERT_FAILURE, states.REVERTING))
#: Atom states in which an atom may have a result (execute or revert).
STATES_WITH_RESULTS = tuple(sorted(_EXECUTE_RESULT_STATES | _REVERT_RESULT_STATES))
# A Failure saved with a state of success is recorded with the failed state.
_FAILED = {states.SUCCESS: states.FAILURE, states.REVERTED: states.REVERT_FAILURE}


def _result(ad: models.AtomDetail, results: str, failure: str, allowed: frozenset) -> Any:
    found = getattr(ad, failure)
    if found is not None:
        return found
    if ad.state not in allowed:
        raise DisallowedAccess(
            f"atom {ad.name!r} has no result in state {ad.state} (results exist in "
            f"states {', '.join(sorted(allowed))})", state=ad.state)
    return getattr(ad, results)


def last_result(details: Details, name: str) -> Any:
    """Atom ``name``'s execute result as its consumers see it (a retry's: its last
    attempt's), or its Failure; DisallowedAccess if it has neither."""
    return _result(details.get(name), "last_results", "failure", _EXECUTE_RESULT_STATES)


class Results:
    """Saves and reads the results and failures of one Storage's atoms."""

    def __init__(self, details: Details, writes: WritePolicy, lookup: Lookup,
                 staleness: Staleness) -> None:
        self._details = details
        self._writes = writes
        self._lookup = lookup
        self._staleness = staleness

    def save(self, name: str, result: Any, state: str) -> None:
        """Store an atom's result (or Failure) and its new state in one write."""
        if isinstance(result, Failure):
            state = _FAILED.get(state, state)
        check(state, states.ATOM_STATES, "atom state")
        ad = self._details.get(name)
        mark = self._staleness.mark(ad, state, result)  # FingerprintError: nothing written

        def mutate(d: models.AtomDetail) -> bool:
            changed = d.put(state, result)
            if mark is not None and d.meta.get(META_FINGERPRINT) != mark:
                d.meta[META_FINGERPRINT] = mark
                changed = True
            return changed
        self._writes.change_atom(ad, mutate)
        if state == states.SUCCESS and ad.intention == states.EXECUTE:
            missing = self._lookup.missing_outputs(name, result)
            if missing:
                LOG.warning("Atom %r saved a result without the item(s) it should "
                            "provide as %s", name, ", ".join(map(repr, missing)))

    def execute_result(self, name: str) -> Any:
        """The atom's result (a retry's: its whole history) or its Failure."""
        return _result(self._details.get(name), "results", "failure", _EXECUTE_RESULT_STATES)

    def revert_result(self, name: str) -> Any:
        """The atom's revert result or its revert Failure."""
        return _result(self._details.get(name), "revert_results", "revert_failure",
                       _REVERT_RESULT_STATES)

    def failures(self, field: str) -> dict[str, Failure]:
        """{atom name: Failure} of the atoms with one in ``field`` (``failure`` or
        ``revert_failure``)."""
        return {ad.name: getattr(ad, field) for ad in self._details.flow
                if getattr(ad, field) is not None}

    def reset(self, name: str, state: str) -> None:
        """Forget an atom's results and failures and put it in ``state`` (the
        injector's values are never forgotten)."""
        if name == INJECTOR_NAME:
            return
        check(state, states.ATOM_STATES, "atom state")
        ad = self._details.get(name)
        if ad.state != state:
            self._writes.change_atom(ad, lambda d: d.reset(state) or True)
