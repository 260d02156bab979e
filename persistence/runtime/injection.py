"""Values given to a flow's atoms from outside (injections), and where they are kept.

Injected for the whole flow or for one atom, each either *persistent* —
stored with the flow (the injector atom detail :data:`~.details.INJECTOR_NAME`
for the flow, an atom detail's meta under :data:`~.lookup.META_INJECTED` for
one atom) — or *transient*: kept in memory by this :class:`~.storage.Storage`
only, for values that must not or cannot be stored (connections, clients).
The order in which they are looked at is :mod:`.lookup`'s.  Callers hold
Storage's lock.
"""

from __future__ import annotations

import uuid as _uuid
from collections.abc import Mapping
from typing import Any

from ..models import records as models
from ..models import states
from .details import INJECTOR_NAME, Details, assign
from .lookup import META_INJECTED
from .write_policy import WritePolicy

__all__ = ["Injections"]


class Injections:
    """The injected values of one Storage: transient ones here, persistent ones stored."""

    def __init__(self, details: Details, writes: WritePolicy) -> None:
        self._details = details
        self._writes = writes
        self._transients: dict[str, Any] = {}
        self._atom_transients: dict[str, dict[str, Any]] = {}

    def inject_atom(self, name: str, pairs: dict[str, Any], transient: bool) -> None:
        """Give values to atom ``name`` only."""
        ad = self._details.get(name)
        if transient:
            self._atom_transients.setdefault(name, {}).update(pairs)
            return

        def mutate(d: models.AtomDetail) -> bool:
            injected = dict(d.meta.get(META_INJECTED) or {})
            injected.update(pairs)
            d.meta[META_INJECTED] = injected
            return True
        self._writes.change_atom(ad, mutate)

    def inject(self, pairs: dict[str, Any], transient: bool) -> None:
        """Give values to every atom of the flow."""
        if transient:
            self._transients.update(pairs)
            return
        injector = self._details.find(INJECTOR_NAME)
        if injector is not None:
            self._writes.change_atom(injector, lambda d: assign(d, "results",
                                                                {**(d.results or {}), **pairs}))
            return
        injector = models.TaskDetail(INJECTOR_NAME, str(_uuid.uuid4()))
        injector.state = states.SUCCESS
        injector.results = pairs
        self._details.add(injector)

    def flow_sources(self) -> list[Mapping[str, Any]]:
        """The flow's injected values, in lookup order (transient, then persistent)."""
        injector = self._details.find(INJECTOR_NAME)
        return [self._transients, (injector.results or {}) if injector is not None else {}]

    def atom_sources(self, name: str) -> list[Mapping[str, Any]]:
        """Atom ``name``'s own injected values, in lookup order; NotFound for an unknown atom."""
        ad = self._details.get(name)
        return [self._atom_transients.get(name, {}), ad.meta.get(META_INJECTED) or {}]

    def transient_args(self, args_mapping: Mapping[str, str], name: str) -> set[str]:
        """Arguments of atom ``name`` whose value comes from a transient injection."""
        if not self._transients and not self._atom_transients:
            return set()
        own = self._atom_transients.get(name, {})
        ad = self._details.find(name)
        stored = (ad.meta.get(META_INJECTED) or {}) if ad is not None else {}
        return {arg for arg, value_name in args_mapping.items()
                if value_name in own or (value_name not in stored
                                         and value_name in self._transients)}
