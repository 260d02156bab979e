"""Logbooks and flow details: the containers of a flow's records.

A :class:`LogBook` holds :class:`FlowDetail` objects, which hold atom details
(:mod:`.atoms`).  None of these talk to a backend; a backend ``Connection``
saves and loads them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from . import fields, states
from .base import _format_time, _Record, _TrackedDict, _utcnow

if TYPE_CHECKING:
    from .atoms import AtomDetail
    from .bookkeeping import Bookkeeping

__all__ = ["LogBook", "FlowDetail"]

_FLOW_STATES = states.FLOW_STATES


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
        """The flow detail with uuid ``flow_uuid``, or None."""
        return self._flowdetails_by_id.get(flow_uuid)

    def merge(self, lb: LogBook, deep_copy: bool = False) -> LogBook:
        """Take ``lb``'s name, meta and timestamps where they differ (not its flows)."""
        if lb is not self:
            self._assign(lb, ("name", "meta", "created_at", "updated_at"), deep_copy)
        return self

    def copy(self, retain_contents: bool = True) -> LogBook:
        """A shallow copy: the same flow detail objects (none without ``retain_contents``)."""
        return self._clone("_flowdetails_by_id", retain_contents)

    def to_dict(self, marshal_time: bool = False) -> dict[str, Any]:
        """This logbook as a dict (without its flow details); ``marshal_time=True``
        turns its times into ISO 8601 strings (JSON-ready)."""
        fmt = _format_time if marshal_time else (lambda v: v)
        return {"name": self.name, "meta": dict(self.meta), "uuid": self.uuid,
                "created_at": fmt(self.created_at), "updated_at": fmt(self.updated_at)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], unmarshal_time: bool = False) -> LogBook:
        """A logbook from :meth:`to_dict`'s form (times as datetimes or ISO strings)."""
        lb, data, what = cls._start_from(data, "logbook")
        lb._take_meta(data, what)
        d = lb.__dict__
        d["created_at"] = fields.timestamp(data, "created_at", what)
        d["updated_at"] = fields.timestamp(data, "updated_at", what)
        return lb

    @classmethod
    def from_stored(cls, data: dict[str, Any], bk: Bookkeeping) -> LogBook:
        """A logbook (without flow details) from its stored form as a backend read it,
        with ``bk`` as its bookkeeping; the same record :meth:`from_dict` makes."""
        lb = cls._stored(bk, data.get("uuid"), data.get("name"), data.get("meta"))
        if lb is None:
            lb = cls.from_dict(data)
            lb.__dict__["_bk"] = bk
            return lb
        what = f"logbook {lb.uuid}"
        d = lb.__dict__
        d["created_at"] = fields.timestamp(data, "created_at", what)
        d["updated_at"] = fields.timestamp(data, "updated_at", what)
        d["_flowdetails_by_id"] = {}
        return lb

    def pformat(self, indent: int = 0, linesep: str = "\n") -> str:
        """This logbook and its flow details as indented text."""
        details = [("created_at", _format_time(self.created_at))]
        if self.updated_at is not None:
            details.append(("updated_at", _format_time(self.updated_at)))
        return self._pformat("LogBook", details, self, indent, linesep)

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
            d["_bk"].pending = None     # another flow's atoms: the next write checks all
        return self

    def merge(self, fd: FlowDetail, deep_copy: bool = False) -> FlowDetail:
        """Take ``fd``'s name, state and meta where they differ (not its atoms)."""
        if fd is not self:
            self._assign(fd, ("name", "state", "meta"), deep_copy)
        return self

    def copy(self, retain_contents: bool = True) -> FlowDetail:
        """A shallow copy: the same atom detail objects (none without ``retain_contents``)."""
        return self._clone("_atomdetails_by_id", retain_contents)

    def to_dict(self) -> dict[str, Any]:
        """This flow detail as a dict (without its atom details)."""
        return {"name": self.name, "meta": dict(self.meta), "state": self.state,
                "uuid": self.uuid}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FlowDetail:
        """A flow detail (without atom details) from :meth:`to_dict`'s form."""
        fd, data, what = cls._start_from(data, "flow detail")
        fd.__dict__["state"] = fields.state(data, "state", what, states.FLOW_STATES)
        fd._take_meta(data, what)
        return fd

    @classmethod
    def from_stored(cls, data: dict[str, Any], bk: Bookkeeping) -> FlowDetail:
        """A flow detail (without atom details) from its stored form as a backend read
        it, with ``bk`` as its bookkeeping; the same record :meth:`from_dict` makes."""
        state = data.get("state")
        fd = None
        if state is None or (type(state) is str and state in _FLOW_STATES):
            fd = cls._stored(bk, data.get("uuid"), data.get("name"), data.get("meta"))
        if fd is None:
            fd = cls.from_dict(data)
            fd.__dict__["_bk"] = bk
            return fd
        d = fd.__dict__
        d["state"] = state
        d["_atomdetails_by_id"] = {}
        return fd

    def add(self, ad: AtomDetail) -> None:
        """Add (or replace, by uuid) an atom detail; saving is the backend's job."""
        self._atomdetails_by_id[ad.uuid] = ad
        bk = self.__dict__["_bk"]
        bk.changed = True
        if bk.pending is not None:      # written at the flow's next write
            bk.pending.keys[ad.uuid] = None

    def find(self, ad_uuid: str) -> AtomDetail | None:
        """The atom detail with uuid ``ad_uuid``, or None."""
        return self._atomdetails_by_id.get(ad_uuid)

    def pformat(self, indent: int = 0, linesep: str = "\n") -> str:
        """This flow detail and its atom details as indented text."""
        return self._pformat("FlowDetail", [("state", self.state)], self, indent, linesep)

    def __iter__(self) -> Iterator[AtomDetail]:
        return iter(list(self._atomdetails_by_id.values()))

    def __len__(self) -> int:
        return len(self._atomdetails_by_id)

    def __contains__(self, ad: object) -> bool:
        return getattr(ad, "uuid", None) in self._atomdetails_by_id
