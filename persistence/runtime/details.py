"""The flow detail a :class:`~.storage.Storage` keeps, its atom details by name,
and the small checks and mutations every part of Storage shares.

Every part of Storage finds atom details here, so "unknown atom" and "wrong
kind of atom" read the same wherever they are raised.  Callers hold Storage's
lock (see :mod:`.locking`).
"""

from __future__ import annotations

import uuid as _uuid
from collections.abc import Callable, Iterable
from typing import Any

from ..exceptions import Duplicate, InvalidState, NotFound
from ..models import records as models
from ..models import states
from ..models.bookkeeping import take_bookkeeping
from .atom import is_retry, version_string
from .write_policy import WritePolicy

__all__ = ["Details", "INJECTOR_NAME", "check", "same", "assign", "meta_update"]

#: Name of the atom detail holding persistent flow-scoped injections (as TaskFlow).
INJECTOR_NAME = "_TaskFlow_INJECTOR"


def check(value: str, allowed: frozenset, what: str) -> None:
    """InvalidState unless ``value`` is one of ``allowed`` (a state, an intention)."""
    if value not in allowed:
        raise InvalidState(f"{value!r} is not a valid {what}; valid: {', '.join(sorted(allowed))}")


def same(old: Any, new: Any) -> bool:
    """Whether ``new`` is ``old`` or equal to it and of the same type (writing it is a no-op)."""
    try:
        return old is new or bool(type(old) is type(new) and old == new)
    except Exception:  # odd __eq__: count as different
        return False


def assign(record: Any, field: str, value: Any) -> bool:
    """Set ``record.field`` unless it already holds ``value``; return whether it changed."""
    if same(getattr(record, field), value):
        return False
    setattr(record, field, value)
    return True


def meta_update(update_with: Any) -> Callable[[models._Record], bool]:
    """A mutation merging ``update_with`` into a record's meta (False if nothing new;
    ``None`` or empty: nothing to merge)."""
    update = dict(update_with or ())

    def mutate(r: models._Record) -> bool:
        if all(k in r.meta and same(r.meta[k], v) for k, v in update.items()):
            return False
        r.meta.update(update)
        return True
    return mutate


class Details:
    """A flow detail and its atom details by name: what Storage's parts look atoms up in."""

    def __init__(self, flow: models.FlowDetail, writes: WritePolicy) -> None:
        self.flow = flow
        self._writes = writes
        self._by_name: dict[str, models.AtomDetail] = {ad.name: ad for ad in flow}

    def get(self, name: str, expected: type | None = None) -> models.AtomDetail:
        """The atom detail named ``name``: NotFound if there is none, TypeError if it is
        not an ``expected`` (a TaskDetail or a RetryDetail)."""
        try:
            ad = self._by_name[name]
        except KeyError:
            raise NotFound(f"Unknown atom {name!r} in flow {self.flow.name!r}") from None
        if expected is not None and not isinstance(ad, expected):
            raise TypeError(f"atom {name!r} has a {type(ad).__name__}, "
                            f"not a {expected.__name__}")
        return ad

    def find(self, name: str) -> models.AtomDetail | None:
        """The atom detail named ``name``, or None."""
        return self._by_name.get(name)

    def state_of(self, name: str) -> str | None:
        """An atom's state; None for an unknown atom."""
        ad = self._by_name.get(name)
        return ad.state if ad is not None else None

    def ensure(self, atoms: Iterable[Any]) -> None:
        """Give every atom without one a PENDING atom detail of its kind, all in one write."""
        new: dict[str, models.AtomDetail] = {}
        for atom in atoms:
            name = atom.name
            cls = models.RetryDetail if is_retry(atom) else models.TaskDetail
            if name == INJECTOR_NAME:
                raise Duplicate(f"atom name {name!r} is reserved for flow injections")
            existing = self._by_name.get(name, new.get(name))
            if existing is None:
                ad = cls(name, str(_uuid.uuid4()))
                ad.state = states.PENDING
                ad.version = version_string(atom)
                new[name] = ad
            elif type(existing) is not cls:
                raise Duplicate(f"Atom detail {name!r} already exists in flow "
                                f"{self.flow.name!r} as a {type(existing).__name__}; "
                                f"it cannot become a {cls.__name__}")
        if new:
            self.add(*new.values())

    def add(self, *details: models.AtomDetail) -> None:
        """Add new atom details to the flow detail (one write, as the policy says)."""
        def mutate(fd: models.FlowDetail) -> bool:
            for ad in details:
                fd.add(ad)
            return True
        self._writes.change_flow(self.flow, mutate)
        self._by_name.update((ad.name, ad) for ad in details)

    def reload(self) -> models.FlowDetail:
        """Take the flow detail and its atom details as the backend has them, in place."""
        fresh = self._writes.connection().get_flow_details(self.flow.uuid)
        flow = self.flow.update(fresh)
        take_bookkeeping(flow, fresh)   # revision, "changed", token: as loaded
        self._by_name = {ad.name: ad for ad in flow}
        self._writes.pending = False
        return flow
