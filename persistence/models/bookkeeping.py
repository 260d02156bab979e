"""Where a record came from and where it stands in its store: one small object per record.

Every :class:`~.records.LogBook`, :class:`~.records.FlowDetail` and
:class:`~.records.AtomDetail` carries a :class:`Bookkeeping` (reach it with
:func:`bookkeeping`).  Backends stamp it when they load or save a record;
:class:`~persistence.runtime.storage.Storage` copies it to undo a failed
write.  Nothing outside this package writes a record's bookkeeping any other
way, so what "came from store X" means is decided here once.
"""

from __future__ import annotations

import weakref
from typing import Any

__all__ = ["Bookkeeping", "bookkeeping", "undo_point", "roll_back", "take_bookkeeping",
           "atoms_to_check", "flow_written", "loaded"]

_CONTAINERS = ("_atomdetails_by_id", "_flowdetails_by_id")


class _Pending:
    """The atoms of one flow that may differ from what the store ``token`` names
    holds: the keys (in the flow's atom dict) of those changed, added or
    stamped by another store since the flow was last written there.  Every
    other atom of the flow is clean, from that store, and watches this object,
    so its next change lands here (see :meth:`Bookkeeping.touch`)."""

    __slots__ = ("token", "keys", "ref", "__weakref__")

    def __init__(self, token: object) -> None:
        self.token = token
        self.keys: dict[str, None] = {}   # an ordered set: writes keep the order of changes
        # One weak reference shared by every atom watching: a flow that is dropped
        # is not kept alive by its atoms.
        self.ref = weakref.ref(self)


class Bookkeeping:
    """Token of the store a record was last loaded from or saved to, the
    revision stored there, the state stored there (history entries record the
    transition), whether the record changed since, and backend extras."""

    __slots__ = ("token", "revision", "stored_state", "changed", "extras", "watchers",
                 "pending")

    def __init__(self) -> None:
        self.token: object | None = None
        self.revision: int | None = None
        self.stored_state: str | None = None
        self.changed = True
        #: What one backend keeps about the stored form (e.g. which SQL fields
        #: are chunked), keyed by that backend; None when nothing is kept.
        self.extras: dict[str, Any] | None = None
        #: An atom's: (weak reference to a flow's _Pending, key in that flow) of
        #: each flow to tell when it stops being clean in that flow's store.
        self.watchers: list[tuple[weakref.ref, str]] | None = None
        #: A flow's: which of its atoms may need writing (None: not known, so all).
        self.pending: _Pending | None = None

    def touch(self) -> None:
        """The record changed: set the flag and tell the flows that hold it."""
        self.changed = True
        if self.watchers:
            self._tell_watchers()

    def _tell_watchers(self) -> None:
        """Put this atom into the pending set of every flow watching it.  The
        watch ends there: the flow's next write checks the atom and watches it
        again (which also drops the flows that are gone)."""
        for ref, key in self.watchers or ():
            pending = ref()
            if pending is not None:
                pending.keys[key] = None
        self.watchers = None

    def watch(self, ref: weakref.ref, key: str) -> None:
        """Tell the flow ``ref`` names (which holds this atom as ``key``) of its next change."""
        watchers = self.watchers
        if watchers is None:
            self.watchers = [(ref, key)]
        elif (ref, key) not in watchers:
            watchers.append((ref, key))

    def came_from(self, token: object) -> bool:
        """Whether the record was last loaded from or saved to the store ``token`` names."""
        return self.token is token

    def mark_saved(self, revision: int | None) -> None:
        """The record is as stored, at ``revision`` (after a load or a write)."""
        self.revision = revision
        self.changed = False

    def lost_write(self, revision: int) -> None:
        """A write this record counted on never reached the store (a commit that did
        not wait for the disk, lost in a server crash): the store holds ``revision``."""
        self.revision = revision

    def mark_stored(self, token: object, state: str | None) -> None:
        """The record was loaded from or saved to the store ``token`` names, with ``state``."""
        if token is not self.token and self.watchers:
            self._tell_watchers()   # no longer as stored where its flows were written
        self.token = token
        self.stored_state = state

    def mark_loaded(self, token: object, revision: int | None, state: str | None) -> None:
        """The record now stands for what the store ``token`` names holds at ``revision``."""
        if self.watchers:
            self._tell_watchers()
        self.token = token
        self.revision = revision
        self.stored_state = state

    def forget_store(self) -> None:
        """The record is no longer tied to a store (its next write creates)."""
        if self.watchers:
            self._tell_watchers()
        self.token = None

    def stored_state_in(self, token: object) -> str | None:
        """The state stored in the store ``token`` names; None if it did not come from there."""
        return self.stored_state if self.token is token else None

    def extra(self, key: str) -> Any:
        """The backend extra ``key`` (None if unset)."""
        return None if self.extras is None else self.extras.get(key)

    def set_extra(self, key: str, value: Any) -> None:
        """Keep ``value`` as the backend extra ``key`` (None removes it)."""
        if value is None:
            if self.extras is not None:
                self.extras.pop(key, None)
            return
        if self.extras is None:
            self.extras = {}
        self.extras[key] = value

    def copy(self) -> Bookkeeping:
        """An independent copy (what an undo snapshot keeps).  It watches for no
        flow and, as a flow's, knows nothing of which atoms need writing."""
        clone = Bookkeeping.__new__(Bookkeeping)
        clone.token = self.token
        clone.revision = self.revision
        clone.stored_state = self.stored_state
        clone.changed = self.changed
        clone.extras = None if self.extras is None else dict(self.extras)
        clone.watchers = clone.pending = None
        return clone

    def __getstate__(self) -> tuple:
        # Pickles and copy.copy/deepcopy of a record: what was stored, not who watches.
        return (self.token, self.revision, self.stored_state, self.changed, self.extras)

    def __setstate__(self, state: tuple) -> None:
        self.token, self.revision, self.stored_state, self.changed, self.extras = state
        self.watchers = self.pending = None

    def __repr__(self) -> str:
        return (f"<Bookkeeping revision={self.revision} changed={self.changed} "
                f"stored_state={self.stored_state!r}>")


def loaded(token: object | None, revision: int | None, state: str | None,
           extras: dict[str, Any] | None = None) -> Bookkeeping:
    """The bookkeeping of a record just built from what the store ``token`` names
    (None: no store yet) holds at ``revision``, with ``state``: unchanged, watched
    by no flow (what ``mark_saved`` then ``mark_stored`` make of a new one)."""
    bk = _new_bookkeeping(Bookkeeping)
    bk.token = token
    bk.revision = revision
    bk.stored_state = state
    bk.changed = False
    bk.extras = extras
    bk.watchers = bk.pending = None
    return bk


_new_bookkeeping = object.__new__


def bookkeeping(record: Any) -> Bookkeeping:
    """The bookkeeping of ``record`` (a logbook, flow detail or atom detail)."""
    return record.__dict__["_bk"]


def undo_point(record: Any) -> tuple[dict, dict, dict | None, tuple]:
    """What :func:`roll_back` needs to undo a change to ``record``.

    Shallow on purpose: callers assign new values (new lists, new dicts)
    instead of changing nested ones in place.  The bookkeeping's stored
    fields are kept, as a write that fails half-way may already have stamped
    it.  Taken before every write, so it copies only what a roll back puts back.
    """
    attrs = record.__dict__
    containers = None
    for key in _CONTAINERS:   # a logbook's flows, a flow's atoms; an atom has none
        if key in attrs:
            if containers is None:
                containers = {}
            containers[key] = dict(attrs[key])
    bk = attrs["_bk"]
    extras = bk.extras
    return (dict(attrs), dict(attrs["meta"]), containers,
            (bk.token, bk.revision, bk.stored_state, bk.changed,
             None if extras is None else dict(extras)))


def roll_back(record: Any, point: tuple[dict, dict, dict | None, tuple]) -> None:
    """Put ``record`` back as it was at ``point``, bookkeeping included."""
    attrs, meta, containers, stored = point
    for key, content in (containers or {}).items():
        attrs[key].clear()
        attrs[key].update(content)
    attrs["meta"].clear()          # the original meta object, with its original content
    attrs["meta"].update(meta)
    live = record.__dict__["_bk"]
    record.__dict__.clear()
    record.__dict__.update(attrs)
    record.__dict__["_bk"] = live
    bk = Bookkeeping.__new__(Bookkeeping)
    bk.__setstate__(stored)
    _replace_bookkeeping(record, bk)


def take_bookkeeping(record: Any, loaded: Any) -> None:
    """Give ``record`` the bookkeeping (and other private state but its
    children) of ``loaded``, a fresh load of the same record."""
    attrs, fresh = record.__dict__, loaded.__dict__
    for key in [k for k in attrs if k[0] == "_" and k not in fresh]:
        del attrs[key]
    live = attrs["_bk"]
    attrs.update((key, value) for key, value in fresh.items()
                 if key[0] == "_" and key not in _CONTAINERS)
    attrs["_bk"] = live
    _replace_bookkeeping(record, fresh["_bk"])


def _replace_bookkeeping(record: Any, bk: Bookkeeping) -> None:
    """Give ``record`` a copy of ``bk``.  The flows holding it (as an atom) get it
    into their pending sets, as it may no longer be what they last wrote; as a
    flow it forgets which atoms need writing, so its next write checks all."""
    live = record.__dict__["_bk"]
    new = bk.copy()
    new.watchers = live.watchers
    new._tell_watchers()
    record.__dict__["_bk"] = new


def atoms_to_check(flow: Any, token: object) -> list:
    """The atoms of ``flow`` a write to the store ``token`` names must check: those
    changed, added, or stamped by another store since the flow was last written
    there, or every atom when that is not known (the flow's first write there,
    a copy, a reload, a rollback)."""
    d = flow.__dict__
    atoms = d["_atomdetails_by_id"]
    pending = d["_bk"].pending
    if pending is None or pending.token is not token:
        return list(atoms.values())
    return [atoms[key] for key in list(pending.keys) if key in atoms]


def flow_written(flow: Any, token: object) -> None:
    """``flow`` was written to the store ``token`` names, with the atoms
    :func:`atoms_to_check` gave: every atom now clean and stamped by that store
    leaves the pending set and watches the flow; any other stays pending."""
    d = flow.__dict__
    bk, atoms = d["_bk"], d["_atomdetails_by_id"]
    pending = bk.pending
    if pending is None or pending.token is not token:
        pending = bk.pending = _Pending(token)
        keys = list(atoms)
        pending.keys = dict.fromkeys(keys)
    else:
        keys = list(pending.keys)
    ref, left = pending.ref, pending.keys
    for key in keys:
        ad = atoms.get(key)
        if ad is None:
            left.pop(key, None)    # no longer in the flow
            continue
        abk = ad.__dict__["_bk"]
        if abk.token is token and not abk.changed:
            abk.watch(ref, key)
            left.pop(key, None)
