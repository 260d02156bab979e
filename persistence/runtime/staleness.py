"""Fingerprints of what produced an atom's result, and which stored results went stale.

When an atom succeeds, :class:`~persistence.storage.Storage` stores in its
atom detail's meta (key ``"fingerprint"``) the atom's version and a SHA-256
digest of the arguments it was given.  Later, with the same flow, an atom's
stored result is *stale* when its version changed, when the arguments it
would be given now differ (an injected value changed, a predecessor's result
changed), or when an atom it depends on is stale.

Arguments are digested as canonical JSON (sorted keys, tuples as lists), so
the digest is the same in every process and on every machine.  Values given
as *transient* injections are left out (only their argument names count):
they are not stored, and are often resources (connections, clients) that
have no stable value.  Any other argument that is not JSON-serializable
raises :class:`~persistence.exceptions.FingerprintError` naming it.

:class:`Staleness` applies this to one Storage's atoms: the fingerprint a
successful ``save`` stores, ``stale_atoms`` and ``invalidate_stale``.

>>> from persistence.runtime.staleness import digest
>>> digest({"n": 1, "items": (1, 2)}, "sum") == digest({"items": [1, 2], "n": 1}, "sum")
True
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from ..exceptions import FingerprintError, NotFound
from ..models import records as models
from ..models import states
from ..models.encoding import text_encoder
from ..models.failure import Failure
from .arguments import Arguments
from .atom import version_string
from .details import Details
from .write_policy import NEVER, WritePolicy

__all__ = ["META_FINGERPRINT", "digest", "fingerprint", "dependencies", "in_order",
           "downstream", "Staleness"]

#: Atom detail meta key holding the fingerprint of its stored result.
META_FINGERPRINT = "fingerprint"

_canonical = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                              allow_nan=True)
_EMPTY = hashlib.sha256(b"{}|").hexdigest()


#: ``_canonical.encode``, set up once.
_encode = text_encoder(_canonical)


def digest(args: Mapping[str, Any], atom_name: str,
           transient: Iterable[str] = ()) -> str:
    """SHA-256 of ``args`` as canonical JSON; the names in ``transient`` count by name only."""
    skip = set(transient)
    if not args and not skip:
        return _EMPTY
    kept = {k: v for k, v in args.items() if k not in skip}
    try:
        text = _encode(kept)
    except (TypeError, ValueError, RecursionError):
        for name in sorted(kept, key=str):
            try:
                _encode(kept[name])
            except (TypeError, ValueError, RecursionError) as err:
                raise FingerprintError(
                    f"cannot fingerprint argument {name!r} of atom {atom_name!r}: its value "
                    f"({type(kept[name]).__name__}) is not JSON-serializable ({err}); give it "
                    f"as a transient injection (inject(..., transient=True)) to leave it "
                    f"out of the fingerprint", argument=name, atom=atom_name) from err
        raise FingerprintError(f"cannot fingerprint the arguments of atom {atom_name!r}: "
                               f"their names cannot be sorted", atom=atom_name) from None
    names = ",".join(sorted(skip & set(args)))
    return hashlib.sha256(f"{text}|{names}".encode()).hexdigest()


def fingerprint(atom_version: Any, args: Mapping[str, Any], atom_name: str,
                transient: Iterable[str] = ()) -> dict[str, Any]:
    """The stored fingerprint: {"version": ..., "args": digest}."""
    return {"version": atom_version, "args": digest(args, atom_name, transient)}


def _requires(atom: Any) -> set[str]:
    rebind = getattr(atom, "rebind", None)
    if isinstance(rebind, Mapping):
        return set(rebind.values())
    return set(getattr(atom, "requires", ())) | set(getattr(atom, "optional", ()))


def _provides(atom: Any) -> set[str]:
    save_as = getattr(atom, "save_as", None)
    if isinstance(save_as, Mapping):
        return set(save_as)
    return set(getattr(atom, "provides", ()) or ())


def dependencies(atoms: list[Any]) -> dict[str, set[str]]:
    """{atom name: names of the atoms providing a value it requires}."""
    providers: dict[str, set[str]] = {}
    for atom in atoms:
        for value in _provides(atom):
            providers.setdefault(value, set()).add(atom.name)
    return {atom.name: {p for value in _requires(atom) for p in providers.get(value, ())
                        if p != atom.name} for atom in atoms}


def in_order(atoms: list[Any], preds: dict[str, set[str]]) -> list[Any]:
    """``atoms`` with every atom after those it depends on: each time, the first
    atom in the given order whose dependencies are placed (atoms caught in a
    cycle keep their given order at the end)."""
    done: set[str] = set()
    order, pending = [], list(atoms)
    while pending:
        ready = next((a for a in pending if preds[a.name] <= done), None)
        if ready is None:
            return order + pending
        pending.remove(ready)
        order.append(ready)
        done.add(ready.name)
    return order


def downstream(names: Iterable[str], preds: dict[str, set[str]]) -> set[str]:
    """``names`` and every atom depending on them, directly or not."""
    found = set(names)
    changed = True
    while changed:
        changed = False
        for atom, before in preds.items():
            if atom not in found and before & found:
                found.add(atom)
                changed = True
    return found


def current_version(atom: Any) -> str | None:
    return version_string(atom)


def _forget(d: models.AtomDetail) -> bool:
    """Back to PENDING with no result, failure or fingerprint (False if already so)."""
    if (d.state == states.PENDING and not d.results and d.failure is None
            and META_FINGERPRINT not in d.meta):
        return False
    d.reset(states.PENDING)
    d.meta.pop(META_FINGERPRINT, None)
    return True


class Staleness:
    """Fingerprints of one Storage's results, and which of them went stale.

    Callers hold Storage's lock (the write lock for :meth:`invalidate`).
    """

    def __init__(self, details: Details, writes: WritePolicy, arguments: Arguments) -> None:
        self._details = details
        self._writes = writes
        self._arguments = arguments

    def mark(self, ad: models.AtomDetail, state: str, result: Any) -> dict | None:
        """The fingerprint to store with a successful result (None: nothing to record)."""
        if (self._writes.policy == NEVER or state != states.SUCCESS
                or isinstance(result, Failure) or ad.intention != states.EXECUTE):
            return None
        atom = self._arguments.atom(ad.name)
        given = self._arguments.take_given(ad.name)
        if given is None:
            if atom is None:
                return None
            try:
                given = self._arguments.now(atom)
            except NotFound:
                return None
        version = version_string(atom) if atom is not None else ad.version
        return fingerprint(version, given[0], ad.name, given[1])

    def stale(self, atoms: list[Any]) -> list[str]:
        """Names of ``atoms`` whose stored result is stale, in dependency order."""
        preds = dependencies(atoms)
        stale: list[str] = []
        for atom in in_order(atoms, preds):
            ad = self._details.find(atom.name)
            if ad is None or ad.state != states.SUCCESS:
                continue
            mark = ad.meta.get(META_FINGERPRINT)
            if preds[atom.name] & set(stale):
                stale.append(atom.name)
                continue
            if not isinstance(mark, dict):
                continue
            if mark.get("version") != version_string(atom):
                stale.append(atom.name)
                continue
            try:
                args, transient = self._arguments.now(atom)
            except NotFound:
                stale.append(atom.name)
                continue
            if fingerprint(None, args, atom.name, transient)["args"] != mark.get("args"):
                stale.append(atom.name)
        return stale

    def invalidate(self, atoms: list[Any]) -> list[str]:
        """Reset the stale atoms and all downstream of them to PENDING, in one batch;
        their names, in dependency order."""
        preds = dependencies(atoms)
        doomed = downstream(self.stale(atoms), preds)
        names = [a.name for a in in_order(atoms, preds) if a.name in doomed]
        with self._writes.batched(self._details.flow):
            for name in names:
                ad = self._details.find(name)
                if ad is not None:
                    self._writes.change_atom(ad, _forget)
        return names
