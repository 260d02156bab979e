"""Logbooks and flow details: the containers of a flow's records.

A :class:`LogBook` holds :class:`FlowDetail` objects, which hold atom details
(:mod:`.atoms`).  None of these talk to a backend; a backend ``Connection``
saves and loads them.
"""

from __future__ import annotations

import copy as _copy
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from . import fields, states
from .base import _format_time, _Record, _TrackedDict, _utcnow, _what

if TYPE_CHECKING:
    from .atoms import AtomDetail

__all__ = ["LogBook", "FlowDetail"]


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
