"""Logbooks, flow details and atom details: the records engines persist.

A :class:`LogBook` holds :class:`FlowDetail` objects, which hold
:class:`AtomDetail` objects (:class:`TaskDetail` or :class:`RetryDetail`).
None of these talk to a backend; a backend ``Connection`` saves and loads them.

Two pieces of bookkeeping ride along with every record and are not part of its
data: ``revision`` (the stored revision this object was last read or written
at, ``None`` if it never came from a backend) and a *changed* flag, set by any
attribute assignment, ``put``/``reset`` and changes to ``meta``, so that
``update_flow_details`` writes only the atoms that changed since they were
last saved.  Mutating a nested value in place (``detail.results["a"] = 1``)
is not seen; call :meth:`AtomDetail.touch` afterwards in that case.
"""

from __future__ import annotations

import copy as _copy
import datetime
import uuid as _uuid
from collections.abc import Iterator, Mapping
from typing import Any

from ..exceptions import InvalidFormat
from . import fields, states
from .bookkeeping import Bookkeeping
from .failure import Failure

__all__ = [
    "LogBook", "FlowDetail", "AtomDetail", "TaskDetail", "RetryDetail",
    "atom_detail_class", "atom_detail_type", "ATOM_TYPES",
]


def _new_uuid() -> str:
    return str(_uuid.uuid4())


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _format_time(value: datetime.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class _TrackedDict(dict):
    """A dict that marks its owning record as changed when it is modified."""

    __slots__ = ("_owner",)

    def __init__(self, owner: _Record, data: Mapping | None = None) -> None:
        super().__init__(data or ())
        self._owner = owner

    def _changed(self) -> None:
        self._owner.__dict__["_bk"].changed = True

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


class _Record:
    """Base of every model: uuid, name, meta, revision and change tracking."""

    _DATA_FIELDS: tuple[str, ...] = ()

    def __init__(self, name: str, uuid: str | None = None) -> None:
        d = self.__dict__
        d["_bk"] = Bookkeeping()
        d["uuid"] = uuid if uuid is not None else _new_uuid()
        d["name"] = name
        d["meta"] = _TrackedDict(self)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "meta":
            value = _TrackedDict(self, value)
        self.__dict__[name] = value
        if name[0] != "_":
            self.__dict__["_bk"].changed = True

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
        self.__dict__["_bk"].changed = True

    def _mark_saved(self, revision: int | None) -> None:
        """Called by backends after a successful write or a load."""
        self.__dict__["_bk"].mark_saved(revision)

    def _assign(self, other: _Record, fields: tuple[str, ...], deep_copy: bool) -> None:
        for field in fields:
            theirs = getattr(other, field)
            if getattr(self, field) != theirs:
                setattr(self, field, _copy.deepcopy(theirs) if deep_copy else theirs)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} uuid={self.uuid}>"


class LogBook(_Record):
    """A collection of flow details for one engine or job, plus metadata."""

    def __init__(self, name: str, uuid: str | None = None) -> None:
        super().__init__(name, uuid)
        d = self.__dict__
        d["created_at"] = _utcnow()
        d["updated_at"] = None
        d["_flowdetails_by_id"] = {}

    def add(self, fd: FlowDetail) -> None:
        """Add (or replace, by uuid) a flow detail; saving is the backend's job."""
        self._flowdetails_by_id[fd.uuid] = fd
        self.__dict__["_bk"].changed = True

    def find(self, flow_uuid: str) -> FlowDetail | None:
        return self._flowdetails_by_id.get(flow_uuid)

    def merge(self, lb: LogBook, deep_copy: bool = False) -> LogBook:
        """Take ``lb``'s name, meta and timestamps where they differ (not its flows)."""
        if lb is not self:
            self._assign(lb, ("name", "meta", "created_at", "updated_at"), deep_copy)
        return self

    def copy(self, retain_contents: bool = True) -> LogBook:
        clone = _copy.copy(self)
        clone.__dict__["_bk"] = self.__dict__["_bk"].copy()
        clone.__dict__["meta"] = _TrackedDict(clone, self.meta)
        clone.__dict__["_flowdetails_by_id"] = (
            dict(self._flowdetails_by_id) if retain_contents else {})
        return clone

    def to_dict(self, marshal_time: bool = False) -> dict[str, Any]:
        """This logbook as a dict (without its flow details); ``marshal_time=True``
        turns its times into ISO 8601 strings (JSON-ready)."""
        fmt = _format_time if marshal_time else (lambda v: v)
        return {"name": self.name, "meta": dict(self.meta), "uuid": self.uuid,
                "created_at": fmt(self.created_at), "updated_at": fmt(self.updated_at)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], unmarshal_time: bool = False) -> LogBook:
        """A logbook from :meth:`to_dict`'s form (times as datetimes or ISO strings)."""
        data = fields.record(data, "a logbook")
        what = _what("logbook", data)
        lb = cls(fields.text(data, "name", what), uuid=fields.text(data, "uuid", what,
                                                                   non_empty=True))
        d = lb.__dict__
        d["meta"] = _TrackedDict(lb, fields.mapping(data, "meta", what))
        d["created_at"] = fields.timestamp(data, "created_at", what)
        d["updated_at"] = fields.timestamp(data, "updated_at", what)
        return lb

    def pformat(self, indent: int = 0, linesep: str = "\n") -> str:
        pad = " " * indent
        lines = [f"{pad}LogBook: {self.name!r}",
                 f"{pad} - uuid = {self.uuid}",
                 f"{pad} - created_at = {_format_time(self.created_at)}"]
        if self.updated_at is not None:
            lines.append(f"{pad} - updated_at = {_format_time(self.updated_at)}")
        if self.meta:
            lines.append(f"{pad} - meta = {dict(self.meta)!r}")
        lines.extend(fd.pformat(indent + 1, linesep) for fd in self)
        return linesep.join(lines)

    def __iter__(self) -> Iterator[FlowDetail]:
        return iter(list(self._flowdetails_by_id.values()))

    def __len__(self) -> int:
        return len(self._flowdetails_by_id)

    def __contains__(self, fd: object) -> bool:
        return getattr(fd, "uuid", None) in self._flowdetails_by_id


class FlowDetail(_Record):
    """The atom details of one flow, the flow's state and metadata."""

    def __init__(self, name: str, uuid: str | None = None) -> None:
        super().__init__(name, uuid)
        d = self.__dict__
        d["state"] = None
        d["_atomdetails_by_id"] = {}

    def update(self, fd: FlowDetail) -> FlowDetail:
        """Become ``fd``: take every attribute of it, atom details included."""
        if fd is not self:
            d = self.__dict__
            d["name"], d["state"] = fd.name, fd.state
            d["meta"] = _TrackedDict(self, fd.meta)  # tracked for this record, not fd
            d["_atomdetails_by_id"] = fd._atomdetails_by_id
            d["_bk"].changed = True
        return self

    def merge(self, fd: FlowDetail, deep_copy: bool = False) -> FlowDetail:
        """Take ``fd``'s name, state and meta where they differ (not its atoms)."""
        if fd is not self:
            self._assign(fd, ("name", "state", "meta"), deep_copy)
        return self

    def copy(self, retain_contents: bool = True) -> FlowDetail:
        clone = _copy.copy(self)
        clone.__dict__["_bk"] = self.__dict__["_bk"].copy()
        clone.__dict__["meta"] = _TrackedDict(clone, self.meta)
        clone.__dict__["_atomdetails_by_id"] = (
            dict(self._atomdetails_by_id) if retain_contents else {})
        return clone

    def to_dict(self) -> dict[str, Any]:
        """This flow detail as a dict (without its atom details)."""
        return {"name": self.name, "meta": dict(self.meta), "state": self.state,
                "uuid": self.uuid}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FlowDetail:
        data = fields.record(data, "a flow detail")
        what = _what("flow detail", data)
        fd = cls(fields.text(data, "name", what), fields.text(data, "uuid", what, non_empty=True))
        d = fd.__dict__
        d["state"] = fields.state(data, "state", what, states.FLOW_STATES)
        d["meta"] = _TrackedDict(fd, fields.mapping(data, "meta", what))
        return fd

    def add(self, ad: AtomDetail) -> None:
        """Add (or replace, by uuid) an atom detail; saving is the backend's job."""
        self._atomdetails_by_id[ad.uuid] = ad
        self.__dict__["_bk"].changed = True

    def find(self, ad_uuid: str) -> AtomDetail | None:
        return self._atomdetails_by_id.get(ad_uuid)

    def pformat(self, indent: int = 0, linesep: str = "\n") -> str:
        pad = " " * indent
        lines = [f"{pad}FlowDetail: {self.name!r}",
                 f"{pad} - uuid = {self.uuid}",
                 f"{pad} - state = {self.state}"]
        if self.meta:
            lines.append(f"{pad} - meta = {dict(self.meta)!r}")
        lines.extend(ad.pformat(indent + 1, linesep) for ad in self)
        return linesep.join(lines)

    def __iter__(self) -> Iterator[AtomDetail]:
        return iter(list(self._atomdetails_by_id.values()))

    def __len__(self) -> int:
        return len(self._atomdetails_by_id)

    def __contains__(self, ad: object) -> bool:
        return getattr(ad, "uuid", None) in self._atomdetails_by_id


def _failure_to_dict(failure: Failure | None) -> dict | None:
    return failure.to_dict() if failure is not None else None


def _failure_from_dict(data: Mapping[str, Any], key: str, what: str) -> Failure | None:
    value = data.get(key)
    if value is None:
        return None
    try:
        return Failure.from_dict(value)
    except InvalidFormat as err:
        raise InvalidFormat(f"{what}: {key!r} is not a failure: {err}") from None


def _what(kind: str, data: Mapping[str, Any]) -> str:
    """How an error names the record being read (its uuid when it has a usable one)."""
    uuid = data.get("uuid")
    return f"{kind} {uuid}" if isinstance(uuid, str) and uuid else kind


_REVERT_STATES = frozenset((states.REVERTING, states.REVERTED, states.REVERT_FAILURE))


class AtomDetail(_Record):
    """What is known about one atom of a flow: state, intention, results, failures."""

    _MERGED = ("state", "intention", "failure", "revert_failure", "meta", "version")

    def __init__(self, name: str, uuid: str | None = None) -> None:
        super().__init__(name, uuid)
        d = self.__dict__
        d["state"] = None
        d["intention"] = states.EXECUTE
        d["results"] = None
        d["failure"] = None
        d["revert_results"] = None
        d["revert_failure"] = None
        d["version"] = None

    @property
    def last_results(self) -> Any:
        """The most recent result."""
        return self.results

    def update(self, ad: AtomDetail) -> AtomDetail:
        """Become ``ad``: take every attribute of it (by reference)."""
        if ad is not self:
            for field in self._MERGED + ("name", "results", "revert_results"):
                setattr(self, field, getattr(ad, field))
        return self

    def merge(self, other: AtomDetail, deep_copy: bool = False) -> AtomDetail:
        if other is not self:
            self._assign(other, self._MERGED, deep_copy)
        return self

    def reset(self, state: str) -> None:
        """Forget results and failures, set ``state`` and intention EXECUTE."""
        self.results = None
        self.failure = None
        self.revert_results = None
        self.revert_failure = None
        self.state = state
        self.intention = states.EXECUTE

    def put(self, state: str, result: Any) -> bool:
        """Store ``result`` obtained in ``state``; return whether anything changed."""
        if isinstance(result, Failure) or state in (states.FAILURE, states.REVERT_FAILURE):
            field = "revert_failure" if state in _REVERT_STATES else "failure"
            clear = None
        else:
            field = "revert_results" if state in _REVERT_STATES else "results"
            clear = "revert_failure" if state in _REVERT_STATES else "failure"
        altered = False
        if self.state != state:
            self.state = state
            altered = True
        if not self._same(getattr(self, field), result):
            self._store(field, result)
            altered = True
        if clear is not None and getattr(self, clear) is not None:
            setattr(self, clear, None)
            altered = True
        return altered

    @staticmethod
    def _same(old: Any, new: Any) -> bool:
        if old is new:
            return True
        try:
            return bool(type(old) is type(new) and old == new)
        except Exception:  # values with odd __eq__ (arrays...) count as different
            return False

    def _store(self, field: str, result: Any) -> None:
        setattr(self, field, result)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "uuid": self.uuid, "state": self.state,
                "intention": self.intention, "results": self._results_to_data(),
                "failure": _failure_to_dict(self.failure),
                "revert_results": self.revert_results,
                "revert_failure": _failure_to_dict(self.revert_failure),
                "meta": dict(self.meta), "version": self.version}

    def _results_to_data(self) -> Any:
        return self.results

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AtomDetail:
        data = fields.record(data, f"a {cls.__name__}")
        what = _what(cls.__name__, data)
        ad = cls(fields.text(data, "name", what), fields.text(data, "uuid", what, non_empty=True))
        d = ad.__dict__
        d["state"] = fields.state(data, "state", what, states.ATOM_STATES)
        d["intention"] = fields.state(data, "intention", what, states.INTENTIONS,
                                      states.EXECUTE)
        d["results"] = cls._results_from_data(data.get("results"), what)
        d["failure"] = _failure_from_dict(data, "failure", what)
        d["revert_results"] = data.get("revert_results")
        d["revert_failure"] = _failure_from_dict(data, "revert_failure", what)
        d["meta"] = _TrackedDict(ad, fields.mapping(data, "meta", what))
        version = data.get("version")
        if isinstance(version, (list, tuple)):
            version = tuple(version)
        elif version is not None and not isinstance(version, (str, int)):
            raise InvalidFormat(f"{what}: 'version' must be a string, a list or None, "
                                f"not {type(version).__name__}")
        d["version"] = version
        return ad

    @staticmethod
    def _results_from_data(data: Any, what: str = "atom detail") -> Any:
        return data

    def copy(self) -> AtomDetail:
        """A shallow copy: results are shared, meta and version copied."""
        clone = _copy.copy(self)
        clone.__dict__["_bk"] = self.__dict__["_bk"].copy()
        clone.__dict__["meta"] = _TrackedDict(clone, self.meta)
        clone.__dict__["version"] = _copy.copy(self.version)
        return clone

    def pformat(self, indent: int = 0, linesep: str = "\n") -> str:
        pad = " " * indent
        lines = [f"{pad}{type(self).__name__}: {self.name!r}",
                 f"{pad} - uuid = {self.uuid}",
                 f"{pad} - state = {self.state}",
                 f"{pad} - intention = {self.intention}"]
        for field in ("version", "results", "failure", "revert_results", "revert_failure"):
            value = getattr(self, field)
            if value not in (None, [], {}):
                lines.append(f"{pad} - {field} = {value!r}")
        if self.meta:
            lines.append(f"{pad} - meta = {dict(self.meta)!r}")
        return linesep.join(lines)


class TaskDetail(AtomDetail):
    """The atom detail of a task."""

    def merge(self, other: AtomDetail, deep_copy: bool = False) -> TaskDetail:
        if not isinstance(other, TaskDetail):
            raise TypeError(f"can only merge a TaskDetail, not {type(other).__name__}")
        if other is not self:
            super().merge(other, deep_copy)
            # Results are taken by reference on purpose: deep copies of large
            # results are expensive and the caller owns them.
            for field in ("results", "revert_results"):
                if getattr(self, field) is not getattr(other, field):
                    setattr(self, field, getattr(other, field))
        return self


class RetryDetail(AtomDetail):
    """The atom detail of a retry: ``results`` is a list of ``(data, failures)``.

    Each entry is the value one attempt of the retry produced, with the
    failures (atom name → :class:`Failure`) that made the flow retry after it.
    """

    def __init__(self, name: str, uuid: str | None = None) -> None:
        super().__init__(name, uuid)
        self.__dict__["results"] = []

    @property
    def last_results(self) -> Any:
        try:
            return self.results[-1][0]
        except IndexError:
            return None

    @property
    def last_failures(self) -> dict[str, Failure] | None:
        """Failures recorded against the most recent attempt (not ``self.failure``)."""
        try:
            return self.results[-1][1]
        except IndexError:
            return None

    def reset(self, state: str) -> None:
        super().reset(state)
        self.results = []

    def _store(self, field: str, result: Any) -> None:
        if field == "results":
            self.results = self.results + [(result, {})]
        else:
            setattr(self, field, result)

    @staticmethod
    def _same(old: Any, new: Any) -> bool:
        return False if isinstance(old, list) else AtomDetail._same(old, new)

    def _results_to_data(self) -> Any:
        return [[data, {name: f.to_dict() for name, f in failures.items()}]
                for data, failures in self.results]

    @staticmethod
    def _results_from_data(data: Any, what: str = "retry detail") -> Any:
        if data is None:
            return []
        if not isinstance(data, (list, tuple)):
            raise InvalidFormat(f"{what}: 'results' must be a list of [data, failures] "
                                f"pairs, not {type(data).__name__}")
        out = []
        for i, entry in enumerate(data):
            if not (isinstance(entry, (list, tuple)) and len(entry) == 2
                    and isinstance(entry[1], (Mapping, type(None)))):
                raise InvalidFormat(f"{what}: 'results'[{i}] must be a [data, failures] pair "
                                    f"with failures a dict, not {entry!r:.80}")
            out.append((entry[0], {name: Failure.from_dict(f)
                                   for name, f in (entry[1] or {}).items()}))
        return out

    def merge(self, other: AtomDetail, deep_copy: bool = False) -> RetryDetail:
        if not isinstance(other, RetryDetail):
            raise TypeError(f"can only merge a RetryDetail, not {type(other).__name__}")
        if other is not self:
            super().merge(other, deep_copy)
            self.results = _copy_history(other.results)
            if self.revert_results is not other.revert_results:
                self.revert_results = other.revert_results
        return self

    def copy(self) -> RetryDetail:
        clone = super().copy()
        clone.__dict__["results"] = _copy_history(self.results)
        return clone


def _copy_history(results: list) -> list:
    """Copy a retry history: new list, failures copied, data shared."""
    return [(data, {name: f.copy() for name, f in failures.items()})
            for data, failures in results]


_TYPE_TO_CLASS: dict[str, type[AtomDetail]] = {
    "TASK_DETAIL": TaskDetail,
    "RETRY_DETAIL": RetryDetail,
}
_CLASS_TO_TYPE = {cls: name for name, cls in _TYPE_TO_CLASS.items()}
#: The stored atom detail type names.
ATOM_TYPES = sorted(_TYPE_TO_CLASS)


def atom_detail_class(atom_type: str) -> type[AtomDetail]:
    """The detail class stored under ``atom_type`` (``"TASK_DETAIL"``, ``"RETRY_DETAIL"``)."""
    try:
        return _TYPE_TO_CLASS[atom_type]
    except KeyError:
        raise TypeError(f"Unknown atom detail type {atom_type!r}; "
                        f"known: {', '.join(sorted(_TYPE_TO_CLASS))}") from None


def atom_detail_type(atom_detail: AtomDetail) -> str:
    """The stored type name of an atom detail instance."""
    try:
        return _CLASS_TO_TYPE[type(atom_detail)]
    except KeyError:
        for cls, name in _CLASS_TO_TYPE.items():
            if isinstance(atom_detail, cls):
                return name
        raise TypeError(f"not an atom detail: {type(atom_detail).__name__}") from None
