"""Atom details: what is known about one task or retry of a flow.

:class:`TaskDetail` and :class:`RetryDetail` are the two kinds of
:class:`AtomDetail`; each is stored under a type name (:data:`ATOM_TYPES`,
:func:`atom_detail_type`, :func:`atom_detail_class`).
"""

from __future__ import annotations

import copy as _copy
from collections.abc import Mapping
from typing import Any

from ..exceptions import InvalidFormat
from . import fields, states
from .base import _Record
from .bookkeeping import Bookkeeping
from .failure import Failure

__all__ = ["AtomDetail", "TaskDetail", "RetryDetail", "atom_detail_class",
           "atom_detail_type", "ATOM_TYPES"]


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


_REVERT_STATES = frozenset((states.REVERTING, states.REVERTED, states.REVERT_FAILURE))
_ATOM_STATES, _INTENTIONS, _EXECUTE = states.ATOM_STATES, frozenset(states.INTENTIONS), \
    states.EXECUTE


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
        """Take ``other``'s state, intention, failures, meta and version where they differ."""
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
        """This atom detail as a JSON-ready dict (failures as dicts)."""
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
        """An atom detail of this class from :meth:`to_dict`'s form."""
        ad, data, what = cls._start_from(data, cls.__name__)
        d = ad.__dict__
        d["state"] = fields.state(data, "state", what, states.ATOM_STATES)
        d["intention"] = fields.state(data, "intention", what, states.INTENTIONS,
                                      states.EXECUTE)
        d["results"] = cls._results_from_data(data.get("results"), what)
        d["failure"] = _failure_from_dict(data, "failure", what)
        d["revert_results"] = data.get("revert_results")
        d["revert_failure"] = _failure_from_dict(data, "revert_failure", what)
        ad._take_meta(data, what)
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

    #: Whether :meth:`_results_from_data` keeps stored results as they are.
    _RESULTS_AS_STORED = True

    @classmethod
    def from_stored(cls, data: dict[str, Any], bk: Bookkeeping) -> AtomDetail:
        """An atom detail from its stored form as a backend read it (values opened),
        with ``bk`` as its bookkeeping: a load builds thousands, so a record as this
        library stores it is checked and taken as it is (:meth:`_from_fields`);
        anything else goes through :meth:`from_dict` (the same record, the same errors)."""
        get = data.get
        ad = cls._from_fields(bk, get("uuid"), get("name"), get("meta"), get("state"),
                              get("intention"), get("results"), get("failure"),
                              get("revert_results"), get("revert_failure"), get("version"))
        if ad is None:
            ad = cls.from_dict(data)
            ad.__dict__["_bk"] = bk
        return ad

    @classmethod
    def _from_fields(cls, bk: Bookkeeping, uuid: Any, name: Any, meta: Any, state: Any,
                     intention: Any, results: Any, failure: Any, revert_results: Any,
                     revert_failure: Any, version: Any) -> AtomDetail | None:
        """The atom detail of these stored fields (values opened), or None unless each
        is as this library stores it without failures or a retry history (the caller
        then takes :meth:`from_dict`, which rebuilds those and says what is wrong)."""
        if ((state is None or (type(state) is str and state in _ATOM_STATES))
                and (intention is None or (type(intention) is str and intention in _INTENTIONS))
                and (version is None or type(version) is str or type(version) is int)
                and failure is None and revert_failure is None and cls._RESULTS_AS_STORED):
            ad = cls._stored(bk, uuid, name, meta)
            if ad is not None:
                d = ad.__dict__
                d["state"] = state
                d["intention"] = _EXECUTE if intention is None else intention
                d["results"] = results
                d["failure"] = None
                d["revert_results"] = revert_results
                d["revert_failure"] = None
                d["version"] = version
                return ad
        return None

    def copy(self) -> AtomDetail:
        """A shallow copy: results are shared, meta and version copied."""
        clone = self._clone()
        clone.__dict__["version"] = _copy.copy(self.version)
        return clone

    def pformat(self, indent: int = 0, linesep: str = "\n") -> str:
        """This atom detail as indented text (values that are set only)."""
        details = [("state", self.state), ("intention", self.intention)]
        for field in ("version", "results", "failure", "revert_results", "revert_failure"):
            value = getattr(self, field)
            if value not in (None, [], {}):
                details.append((field, repr(value)))
        return self._pformat(type(self).__name__, details, (), indent, linesep)


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

    _RESULTS_AS_STORED = False

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
