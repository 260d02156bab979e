"""Retry histories: each attempt of a retry and the failures seen during it.

A retry's atom detail keeps, as its results, one ``(result, {atom name:
Failure})`` per attempt; the engine records each failure against the latest
attempt and hands the whole :class:`~.atom.History` to the retry controller
to decide.  Callers hold :class:`~.storage.Storage`'s lock.
"""

from __future__ import annotations

from ..exceptions import StorageFailure
from ..models import records as models
from ..models import states
from ..models.failure import Failure
from .atom import History
from .details import Details, assign, check
from .write_policy import WritePolicy

__all__ = ["Retries"]


class Retries:
    """Records and reads the attempts of one Storage's retries."""

    def __init__(self, details: Details, writes: WritePolicy) -> None:
        self._details = details
        self._writes = writes

    def save_failure(self, retry_name: str, failed_atom_name: str, failure: Failure) -> None:
        """Record ``failure`` of ``failed_atom_name`` against the latest attempt."""
        def mutate(d: models.AtomDetail) -> bool:
            if not d.results:
                raise StorageFailure(f"retry {retry_name!r} has no attempt to record the "
                                     f"failure of {failed_atom_name!r} against")
            data, failures = d.results[-1]
            if failed_atom_name in failures:
                return False
            d.results = d.results[:-1] + [(data, {**failures, failed_atom_name: failure})]
            return True
        self._writes.change_atom(self._details.get(retry_name, models.RetryDetail), mutate)

    def cleanup(self, retry_name: str, state: str) -> None:
        """Forget the retry's attempts and put it in ``state``."""
        check(state, states.ATOM_STATES, "atom state")

        def mutate(d: models.AtomDetail) -> bool:
            changed = assign(d, "state", state)
            return assign(d, "results", []) or changed
        self._writes.change_atom(self._details.get(retry_name, models.RetryDetail), mutate)

    def history(self, retry_name: str) -> History:
        """The attempts of the retry."""
        ad = self._details.get(retry_name, models.RetryDetail)
        return History(list(ad.results), failure=ad.failure)

    def histories(self) -> list[tuple[str, History]]:
        """``(retry name, History)`` of every retry of the flow, in flow order."""
        return [(ad.name, History(list(ad.results), failure=ad.failure))
                for ad in self._details.flow if isinstance(ad, models.RetryDetail)]
