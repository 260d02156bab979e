"""What every record shares: uuid, name, meta, revision and change tracking.

:class:`_Record` is the base of :class:`~.logbook.LogBook`,
:class:`~.logbook.FlowDetail` and :class:`~.atoms.AtomDetail`.  Two pieces of
bookkeeping ride along with every record and are not part of its data:
``revision`` (the stored revision this object was last read or written at,
``None`` if it never came from a backend) and a *changed* flag, set by any
attribute assignment, ``put``/``reset`` and changes to ``meta``, so that
``update_flow_details`` writes only the atoms that changed since they were
last saved (a flow knows which of its atoms those are without looking at
each: see :func:`~.bookkeeping.atoms_to_check`).  Mutating a nested value in
place (``detail.results["a"] = 1``) is not seen; call ``touch()`` afterwards in that case.
"""

from __future__ import annotations

import copy as _copy
import datetime
import uuid as _uuid
from collections.abc import Iterable, Mapping
from typing import Any

from . import fields
from .bookkeeping import Bookkeeping


def _new_uuid() -> str:
    return str(_uuid.uuid4())


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _format_time(value: datetime.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _what(kind: str, data: Mapping[str, Any]) -> str:
    """How an error names the record being read (its uuid when it has a usable one)."""
    uuid = data.get("uuid")
    return f"{kind} {uuid}" if isinstance(uuid, str) and uuid else kind


class _TrackedDict(dict):
    """A dict that marks its owning record as changed when it is modified."""

    __slots__ = ("_owner",)

    def __init__(self, owner: _Record, data: Mapping | None = None) -> None:
        super().__init__(data or ())
        self._owner = owner

    def _changed(self) -> None:
        bk = self._owner.__dict__["_bk"]
        if not bk.changed:
            bk.touch()

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        self._changed()

    def __delitem__(self, key):
        super().__delitem__(key)
        self._changed()

    def update(self, *args, **kwargs):
        super().update(*args, **kwargs)
        self._changed()

    def pop(self, *args):
        self._changed()
        return super().pop(*args)

    def popitem(self):
        self._changed()
        return super().popitem()

    def setdefault(self, key, default=None):
        self._changed()
        return super().setdefault(key, default)

    def clear(self):
        super().clear()
        self._changed()

    def __ior__(self, other):
        self.update(other)
        return self

    def __copy__(self):
        return dict(self)

    def __deepcopy__(self, memo):
        return _copy.deepcopy(dict(self), memo)

    def __reduce__(self):
        return (dict, (dict(self),))


def _tracked(owner: _Record, data: dict) -> _TrackedDict:
    """``_TrackedDict(owner, data)`` without the Python-level ``__init__`` (loads
    build one per record)."""
    tracked = _new_dict(_TrackedDict)
    if data:
        _fill(tracked, data)
    tracked._owner = owner
    return tracked


_new_dict, _fill, _new_object = dict.__new__, dict.update, object.__new__


class _Record:
    """Base of every model: uuid, name, meta, revision and change tracking."""

    def __init__(self, name: str, uuid: str | None = None) -> None:
        d = self.__dict__
        d["_bk"] = Bookkeeping()
        d["uuid"] = uuid if uuid is not None else _new_uuid()
        d["name"] = name
        d["meta"] = _TrackedDict(self)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "meta":
            value = _TrackedDict(self, value)
        d = self.__dict__
        d[name] = value
        if name[0] != "_":
            bk = d["_bk"]
            if not bk.changed:    # a changed record is already pending in its flows
                bk.touch()

    @property
    def revision(self) -> int | None:
        """Stored revision last read or written; None if never saved or loaded."""
        return self.__dict__["_bk"].revision

    @property
    def changed(self) -> bool:
        """True if this record changed since it was last saved or loaded."""
        return self.__dict__["_bk"].changed

    def touch(self) -> None:
        """Mark as changed (after mutating a nested value in place)."""
        self.__dict__["_bk"].touch()

    def _mark_saved(self, revision: int | None) -> None:
        """Called by backends after a successful write or a load."""
        self.__dict__["_bk"].mark_saved(revision)

    def _assign(self, other: _Record, fields: tuple[str, ...], deep_copy: bool) -> None:
        for field in fields:
            theirs = getattr(other, field)
            if getattr(self, field) != theirs:
                setattr(self, field, _copy.deepcopy(theirs) if deep_copy else theirs)

    def _clone(self, children: str | None = None, retain_children: bool = True) -> Any:
        """The start of every ``copy``: a shallow copy with its own bookkeeping and
        meta, and its own dict of ``children`` (the same child objects, or none)."""
        clone = _copy.copy(self)
        d = clone.__dict__
        d["_bk"] = self.__dict__["_bk"].copy()
        d["meta"] = _TrackedDict(clone, self.meta)
        if children is not None:
            d[children] = dict(self.__dict__[children]) if retain_children else {}
        return clone

    @classmethod
    def _start_from(cls, data: Any, kind: str) -> tuple[Any, Mapping[str, Any], str]:
        """The start of every ``from_dict``: ``data`` checked to be a record, the
        record it names (name and uuid), and how errors name it."""
        data = fields.record(data, f"a {kind}")
        what = _what(kind, data)
        record = cls(fields.text(data, "name", what),
                     uuid=fields.text(data, "uuid", what, non_empty=True))
        return record, data, what

    @classmethod
    def _stored(cls, bk: Bookkeeping, uuid: Any, name: Any, meta: Any) -> Any:
        """The start of every ``from_stored``: a record of this class with ``bk``, uuid,
        name and meta, or None when these are not as this library stores them (the
        caller then builds it with ``from_dict``, which says what is wrong).  Nothing
        else is set: the caller sets every other field, in ``__init__``'s order."""
        if (type(uuid) is not str or not uuid or type(name) is not str
                or (meta is not None and type(meta) is not dict)):
            return None
        record = _new_object(cls)
        d = record.__dict__
        d["_bk"] = bk
        d["uuid"] = uuid
        d["name"] = name
        d["meta"] = _tracked(record, meta)
        return record

    def _take_meta(self, data: Mapping[str, Any], what: str) -> None:
        """Set ``meta`` from a record dict (part of ``from_dict``)."""
        self.__dict__["meta"] = _TrackedDict(self, fields.mapping(data, "meta", what))

    def _pformat(self, title: str, details: Iterable[tuple[str, Any]],
                 children: Iterable[_Record], indent: int, linesep: str) -> str:
        """The text of every ``pformat``: a title line, the uuid, ``details``
        (name, value as shown), meta if any, then each child one level deeper."""
        pad = " " * indent
        lines = [f"{pad}{title}: {self.name!r}", f"{pad} - uuid = {self.uuid}"]
        lines.extend(f"{pad} - {name} = {value}" for name, value in details)
        if self.meta:
            lines.append(f"{pad} - meta = {dict(self.meta)!r}")
        lines.extend(child.pformat(indent + 1, linesep) for child in children)
        return linesep.join(lines)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} uuid={self.uuid}>"
