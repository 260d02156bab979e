"""Where a record came from and where it stands in its store: one small object per record.

Every :class:`~.records.LogBook`, :class:`~.records.FlowDetail` and
:class:`~.records.AtomDetail` carries a :class:`Bookkeeping` (reach it with
:func:`bookkeeping`).  Backends stamp it when they load or save a record;
:class:`~persistence.runtime.storage.Storage` copies it to undo a failed
write.  Nothing outside this package writes a record's bookkeeping any other
way, so what "came from store X" means is decided here once.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Bookkeeping", "bookkeeping", "undo_point", "roll_back", "take_bookkeeping"]

_CONTAINERS = ("_atomdetails_by_id", "_flowdetails_by_id")


class Bookkeeping:
    """Token of the store a record was last loaded from or saved to, the
    revision stored there, the state stored there (history entries record the
    transition), whether the record changed since, and backend extras."""

    __slots__ = ("token", "revision", "stored_state", "changed", "extras")

    def __init__(self) -> None:
        self.token: object | None = None
        self.revision: int | None = None
        self.stored_state: str | None = None
        self.changed = True
        #: What one backend keeps about the stored form (e.g. which SQL fields
        #: are chunked), keyed by that backend; None when nothing is kept.
        self.extras: dict[str, Any] | None = None

    def came_from(self, token: object) -> bool:
        """Whether the record was last loaded from or saved to the store ``token`` names."""
        return self.token is token

    def mark_saved(self, revision: int | None) -> None:
        """The record is as stored, at ``revision`` (after a load or a write)."""
        self.revision = revision
        self.changed = False

    def mark_stored(self, token: object, state: str | None) -> None:
        """The record was loaded from or saved to the store ``token`` names, with ``state``."""
        self.token = token
        self.stored_state = state

    def mark_loaded(self, token: object, revision: int | None, state: str | None) -> None:
        """The record now stands for what the store ``token`` names holds at ``revision``."""
        self.token = token
        self.revision = revision
        self.stored_state = state

    def forget_store(self) -> None:
        """The record is no longer tied to a store (its next write creates)."""
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
        """An independent copy (what an undo snapshot keeps)."""
        clone = Bookkeeping.__new__(Bookkeeping)
        clone.token = self.token
        clone.revision = self.revision
        clone.stored_state = self.stored_state
        clone.changed = self.changed
        clone.extras = None if self.extras is None else dict(self.extras)
        return clone

    def __repr__(self) -> str:
        return (f"<Bookkeeping revision={self.revision} changed={self.changed} "
                f"stored_state={self.stored_state!r}>")


def bookkeeping(record: Any) -> Bookkeeping:
    """The bookkeeping of ``record`` (a logbook, flow detail or atom detail)."""
    return record.__dict__["_bk"]


def undo_point(record: Any) -> tuple[dict, dict, dict, Bookkeeping]:
    """What :func:`roll_back` needs to undo a change to ``record``.

    Shallow on purpose: callers assign new values (new lists, new dicts)
    instead of changing nested ones in place.  The bookkeeping is copied, as
    a write that fails half-way may already have stamped it.
    """
    attrs = record.__dict__
    return (dict(attrs), dict(attrs["meta"]),
            {key: dict(attrs[key]) for key in _CONTAINERS if key in attrs},
            attrs["_bk"].copy())


def roll_back(record: Any, point: tuple[dict, dict, dict, Bookkeeping]) -> None:
    """Put ``record`` back as it was at ``point``, bookkeeping included."""
    attrs, meta, containers, bk = point
    for key, content in containers.items():
        attrs[key].clear()
        attrs[key].update(content)
    attrs["meta"].clear()          # the original meta object, with its original content
    attrs["meta"].update(meta)
    record.__dict__.clear()
    record.__dict__.update(attrs)
    record.__dict__["_bk"] = bk.copy()


def take_bookkeeping(record: Any, loaded: Any) -> None:
    """Give ``record`` the bookkeeping (and other private state but its
    children) of ``loaded``, a fresh load of the same record."""
    attrs, fresh = record.__dict__, loaded.__dict__
    for key in [k for k in attrs if k[0] == "_" and k not in fresh]:
        del attrs[key]
    attrs.update((key, value) for key, value in fresh.items()
                 if key[0] == "_" and key not in _CONTAINERS)
    attrs["_bk"] = fresh["_bk"].copy()
