"""The values and arguments an atom is given: :mod:`.lookup`'s rules over this
:class:`~.storage.Storage`'s injections, atoms and scopes.

It also remembers what each atom was last given (the arguments
``fetch_mapped_args`` returned for it) and the atom objects themselves:
what :mod:`.staleness` fingerprints a result by.  Callers hold Storage's lock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .injection import Injections
from .lookup import Lookup, Scope, normalize_scope

__all__ = ["Arguments", "Given"]

#: What an atom was given: {argument: value} and the arguments that came from
#: transient injections.
Given = tuple[dict[str, Any], set[str]]


class Arguments:
    """Finds values by name and arguments by an atom's mapping, as :mod:`.lookup` says."""

    def __init__(self, lookup: Lookup, injections: Injections,
                 scope_lookup: Callable[[str], Any] | None) -> None:
        self._lookup = lookup
        self._injections = injections
        self._scope_lookup = scope_lookup
        self._atoms: dict[str, Any] = {}
        self._given: dict[str, Given] = {}

    def register(self, atoms: Iterable[Any]) -> None:
        """Remember ``atoms`` and the names their results provide."""
        for atom in atoms:
            self._lookup.register(atom.name, getattr(atom, "save_as", None) or {})
            self._atoms[atom.name] = atom

    def atom(self, name: str) -> Any:
        """The atom object registered under ``name``, or None."""
        return self._atoms.get(name)

    def take_given(self, name: str) -> Given | None:
        """What atom ``name`` was last given, forgotten once taken (None if nothing)."""
        return self._given.pop(name, None)

    def _scope(self, atom_name: str | None, scope_walker: Any) -> Scope:
        if scope_walker is None and atom_name is not None and self._scope_lookup is not None:
            scope_walker = self._scope_lookup(atom_name)
        return normalize_scope(scope_walker)

    def fetch(self, name: str, many_handler: Callable[[list], Any] | None) -> Any:
        """The value named ``name``."""
        return self._lookup.fetch(name, self._injections.flow_sources(), many_handler)

    def fetch_all(self, many_handler: Callable[[list], Any] | None) -> dict[str, Any]:
        """Every value available by name."""
        return self._lookup.fetch_all(self._injections.flow_sources(), many_handler)

    def mapped(self, args_mapping: Mapping[str, str], atom_name: str | None,
               scope_walker: Any, optional_args: Iterable[str] | None) -> dict[str, Any]:
        """{argument: value} for ``args_mapping``, remembered as what ``atom_name`` is given."""
        injections = self._injections
        atom_sources = injections.atom_sources(atom_name) if atom_name is not None else []
        mapped = self._lookup.fetch_mapped_args(
            args_mapping, atom_name, atom_sources, injections.flow_sources(),
            self._scope(atom_name, scope_walker), optional_args or ())
        if atom_name is not None:   # what the atom is given: its result's fingerprint
            # A copy: the caller may add to the dict it gets (TaskFlow's retries do).
            self._given[atom_name] = (dict(mapped),
                                      injections.transient_args(args_mapping, atom_name))
        return mapped

    def unsatisfied(self, atom_name: str, args_mapping: Mapping[str, str], scope_walker: Any,
                    optional_args: Iterable[str] | None) -> set[str]:
        """Arguments of ``atom_name`` nothing injected and no atom in scope will provide."""
        return self._lookup.fetch_unsatisfied_args(
            args_mapping, self._injections.atom_sources(atom_name),
            self._injections.flow_sources(), self._scope(atom_name, scope_walker),
            optional_args or ())

    def now(self, atom: Any) -> Given:
        """The arguments ``atom`` would be given now (NotFound if one is missing)."""
        rebind = getattr(atom, "rebind", None) or {}
        if not rebind:   # takes no arguments: nothing to look up
            return {}, set()
        mapped = self._lookup.fetch_mapped_args(
            rebind, atom.name, self._injections.atom_sources(atom.name),
            self._injections.flow_sources(), self._scope(atom.name, None),
            getattr(atom, "optional", None) or ())
        return mapped, self._injections.transient_args(rebind, atom.name)
