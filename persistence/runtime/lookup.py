"""Finding the value an atom asks for by name: injections first, then atom results.

Kept out of :mod:`persistence.storage` so the rules live in one place.  For an
argument of atom ``A`` fetched from value name ``n`` the sources are, in order:

1. values injected for ``A`` only (transient, then persistent);
2. values injected for the whole flow (transient, then persistent — the
   injector atom detail);
3. the results of atoms whose ``save_as`` provides ``n``.

When several atoms provide ``n`` the *scope* decides: an iterable of levels,
nearest first, each an iterable of the atom names visible at that level (the
``scope_walker`` an engine passes, or what ``scope_lookup(A)`` returns; a bare
name counts as a level of one).  The first level holding a provider wins, and
within a level the order given.  Atoms outside the scope are not visible.
Without a scope every provider is visible and more than one is reported as
:class:`AmbiguousName`.  Atoms in state ``IGNORE`` never provide anything.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..exceptions import AmbiguousName, DisallowedAccess, NotFound
from ..models import states

__all__ = ["Provider", "Lookup", "DisallowedAccess", "AmbiguousName", "META_INJECTED",
           "extract", "normalize_scope"]

# Key of an atom detail's meta under which persistent atom-scoped injections live.
META_INJECTED = "injected"

Sources = list[Mapping[str, Any]]
Scope = list[list[str]] | None


@dataclasses.dataclass(frozen=True)
class Provider:
    """Atom ``atom`` provides a value: its result, or ``result[index]`` if index is not None."""

    atom: str
    index: Any = None


_EXTRACTION_ERRORS = (KeyError, IndexError, TypeError, ValueError)


def extract(result: Any, index: Any) -> Any:
    """``result`` itself (index None) or ``result[index]``; NotFound if that fails."""
    if index is None:
        return result
    try:
        return result[index]
    except _EXTRACTION_ERRORS as err:
        raise NotFound(f"result has no item {index!r} ({type(err).__name__}: {err})") from err


def normalize_scope(scope: Any) -> Scope:
    """A scope as a list of levels (lists of atom names); None stays None."""
    if scope is None:
        return None
    levels = []
    for level in scope:
        levels.append([level] if isinstance(level, str) else list(level))
    return levels


def _first(name: str, sources: Sources) -> tuple[bool, Any]:
    for source in sources:
        if source and name in source:
            return True, source[name]
    return False, None


class Lookup:
    """Which atoms provide which names, and the resolution rules above.

    ``result_of(atom)`` returns an atom's execute result (raising
    :class:`DisallowedAccess` when it has none); ``state_of(atom)`` its state.
    The caller (``Storage``) holds its lock around every call.
    """

    def __init__(self, result_of: Callable[[str], Any],
                 state_of: Callable[[str], str | None]) -> None:
        self._result_of = result_of
        self._state_of = state_of
        self._providers: dict[str, list[Provider]] = {}
        self._save_as: dict[str, dict[str, Any]] = {}

    # -- registry ----------------------------------------------------------
    def register(self, atom_name: str, save_as: Mapping[str, Any]) -> None:
        """Record that ``atom_name``'s result provides the names in ``save_as``."""
        mapping = self._save_as.setdefault(atom_name, {})
        mapping.update(save_as)
        for name, index in mapping.items():
            entries = self._providers.setdefault(name, [])
            entries[:] = [p for p in entries if p.atom != atom_name]
            entries.append(Provider(atom_name, index))

    def providers(self, name: str) -> list[Provider]:
        """Every atom registered as providing ``name`` (in registration order)."""
        return list(self._providers.get(name, ()))

    def names(self) -> list[str]:
        return list(self._providers)

    def missing_outputs(self, atom_name: str, result: Any) -> list[str]:
        """Names ``atom_name`` should provide that ``result`` does not contain."""
        missing = []
        for name, index in self._save_as.get(atom_name, {}).items():
            try:
                extract(result, index)
            except NotFound:
                missing.append(name)
        return missing

    # -- resolution --------------------------------------------------------
    def _live(self, candidates: list[Provider]) -> list[Provider]:
        return [p for p in candidates if self._state_of(p.atom) != states.IGNORE]

    def _pick(self, name: str, scope: Scope,
              needed_by: str = "") -> tuple[Provider | None, list[Provider]]:
        """The provider of ``name`` visible in ``scope`` (None if none) and all candidates."""
        candidates = self._live(self._providers.get(name, []))
        if scope is None:
            if len(candidates) > 1:
                atoms = [p.atom for p in candidates]
                raise AmbiguousName(
                    f"value {name!r}{needed_by} is provided by several atoms "
                    f"({', '.join(atoms)}) and no scope says which one is meant: "
                    f"rename a result, or pass "
                    f"scope_walker/scope_lookup", name, atoms)
            return (candidates[0] if candidates else None), candidates
        by_atom = {p.atom: p for p in candidates}
        for level in scope:
            for atom in level:
                if atom in by_atom:
                    return by_atom[atom], candidates
        return None, candidates

    def _value(self, provider: Provider, name: str, needed_by: str) -> Any:
        try:
            result = self._result_of(provider.atom)
        except DisallowedAccess as err:
            raise NotFound(f"value {name!r}{needed_by} comes from atom {provider.atom!r}, "
                           f"which has no result yet (state {err.state})") from err
        try:
            return extract(result, provider.index)
        except NotFound as err:
            raise NotFound(f"Unable to find result {name!r}{needed_by}: it should be item "
                           f"{provider.index!r} of atom {provider.atom!r}'s result, which "
                           f"has no such item") from err

    def fetch(self, name: str, flow_sources: Sources,
              many_handler: Callable[[list], Any] | None = None) -> Any:
        """A value by name: injected for the flow, else the one atom providing it.

        With ``many_handler`` every available value (injected ones first) is
        passed to it as a list instead.
        """
        if many_handler is not None:
            values = [src[name] for src in flow_sources if src and name in src]
            for provider in self._live(self._providers.get(name, [])):
                try:
                    values.append(self._value(provider, name, ""))
                except NotFound:
                    continue
            if not values:
                raise NotFound(f"no value named {name!r}: nothing injected it and no atom "
                               f"that provides it has a result")
            return many_handler(values)
        found, value = _first(name, flow_sources)
        if found:
            return value
        provider, _ = self._pick(name, None)
        if provider is None:
            raise NotFound(f"Name {name!r} is not mapped to any value: nothing injected "
                           f"it and no atom provides it")
        return self._value(provider, name, "")

    def fetch_all(self, flow_sources: Sources,
                  many_handler: Callable[[list], Any] | None = None) -> dict[str, Any]:
        """Every name that has a value; several values of a name come as a list."""
        if many_handler is None:
            def many_handler(values: list) -> Any:
                return values if len(values) > 1 else values[0]
        names = dict.fromkeys(n for src in flow_sources for n in src)
        names.update(dict.fromkeys(self._providers))
        results = {}
        for name in names:
            try:
                results[name] = self.fetch(name, flow_sources, many_handler)
            except NotFound:
                pass
        return results

    def fetch_mapped_args(self, args_mapping: Mapping[str, str], atom_name: str | None,
                          atom_sources: Sources, flow_sources: Sources, scope: Scope,
                          optional_args: Iterable[str] = ()) -> dict[str, Any]:
        """{argument: value} for ``args_mapping`` ({argument: value name})."""
        optional = set(optional_args)
        who = f" needed by atom {atom_name!r}" if atom_name else ""
        mapped = {}
        for arg, name in args_mapping.items():
            found, value = _first(name, atom_sources)
            if not found:
                found, value = _first(name, flow_sources)
            if found:
                mapped[arg] = value
                continue
            provider, candidates = self._pick(name, scope, f" (argument {arg!r}){who}")
            if provider is None:
                if arg in optional:
                    continue
                if candidates:
                    atoms = ", ".join(p.atom for p in candidates)
                    raise NotFound(f"value {name!r} (argument {arg!r}){who} is provided by "
                                   f"{atoms}, none of which is in its scope")
                raise NotFound(f"value {name!r} (argument {arg!r}){who} is not provided by "
                               f"any atom and was not injected")
            mapped[arg] = self._value(provider, name, f" (argument {arg!r}){who}")
        return mapped

    def fetch_unsatisfied_args(self, args_mapping: Mapping[str, str], atom_sources: Sources,
                               flow_sources: Sources, scope: Scope,
                               optional_args: Iterable[str] = ()) -> set[str]:
        """Arguments that nothing injected and no visible atom is registered to provide.

        Whether the providers have produced their results yet is not checked.
        """
        optional = set(optional_args)
        visible = None if scope is None else {atom for level in scope for atom in level}
        missing = set()
        for arg, name in args_mapping.items():
            if arg in optional:
                continue
            if _first(name, atom_sources)[0] or _first(name, flow_sources)[0]:
                continue
            providers = self._live(self._providers.get(name, []))
            if not any(visible is None or p.atom in visible for p in providers):
                missing.add(arg)
        return missing
