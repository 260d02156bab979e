"""An atom's state, intention, metadata and progress, as :class:`~.storage.Storage`
reads and writes them.

Setting a value an atom already has writes nothing.  Progress lives in the
atom detail's metadata under TaskFlow's keys (:data:`META_PROGRESS`,
:data:`META_PROGRESS_DETAILS`).  Callers hold Storage's lock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..models import records as models
from ..models import states
from .details import Details, assign, check, meta_update
from .write_policy import WritePolicy

__all__ = ["AtomStates", "META_PROGRESS", "META_PROGRESS_DETAILS", "IN_FLIGHT"]

#: States that mark an atom as started, not finished: written without waiting for
#: the disk unless the Storage is ``at_most_once`` (see :mod:`.write_policy`).
IN_FLIGHT = frozenset((states.RUNNING, states.REVERTING))

#: Atom metadata keys of a task's progress (as TaskFlow).
META_PROGRESS, META_PROGRESS_DETAILS = "progress", "progress_details"


class AtomStates:
    """Reads and writes the per-atom fields an engine steers a run by."""

    def __init__(self, details: Details, writes: WritePolicy) -> None:
        self._details = details
        self._writes = writes

    def set_state(self, name: str, state: str) -> None:
        """Put the atom in ``state`` (InvalidState for a state that does not exist)."""
        check(state, states.ATOM_STATES, "atom state")
        self._writes.change_atom(self._details.get(name), lambda d: assign(d, "state", state),
                                 mark=state in IN_FLIGHT)

    def state(self, name: str) -> str | None:
        """The atom's state as stored."""
        return self._details.get(name).state

    def set_intention(self, name: str, intention: str) -> None:
        """Record what the engine means to do with the atom next."""
        check(intention, states.INTENTIONS, "intention")
        self._writes.change_atom(self._details.get(name),
                                 lambda d: assign(d, "intention", intention))

    def intention(self, name: str) -> str:
        """What the engine meant to do with the atom next."""
        return self._details.get(name).intention

    def states(self, names: Iterable[str]) -> dict[str, tuple[str | None, str]]:
        """{atom name: (state, intention)}; NotFound if any name is unknown."""
        found = [self._details.get(name) for name in names]
        return {ad.name: (ad.state, ad.intention) for ad in found}

    def update_meta(self, name: str, update_with: Any) -> None:
        """Merge ``update_with`` into the atom detail's metadata."""
        self._writes.change_atom(self._details.get(name), meta_update(update_with))

    def set_progress(self, name: str, progress: float,
                     details: Mapping[str, Any] | None = None) -> None:
        """Record a task's progress and, when given, details about it (empty: none)."""
        update: dict[str, Any] = {META_PROGRESS: progress}
        if details is not None:
            update[META_PROGRESS_DETAILS] = ({"at_progress": progress, "details": details}
                                             if details else None)
        ad = self._details.get(name, models.TaskDetail)
        self._writes.change_atom(ad, meta_update(update))

    def progress(self, name: str) -> float:
        """A task's last recorded progress (0.0 if none was recorded)."""
        return self._details.get(name, models.TaskDetail).meta.get(META_PROGRESS, 0.0)

    def progress_details(self, name: str) -> dict[str, Any] | None:
        """A task's last recorded progress details, or None."""
        return self._details.get(name, models.TaskDetail).meta.get(META_PROGRESS_DETAILS)
