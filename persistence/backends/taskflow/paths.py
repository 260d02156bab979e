"""What TaskFlow's dir and ZooKeeper stores share: records addressed by path.

TaskFlow's path-based backends keep three folders (directories or znodes)
under a root, ``books``, ``flow_details`` and ``atom_details``, one entry per
record named by its uuid.  A logbook entry has one link per flow detail, a
flow detail entry one link per atom detail, each named by the linked uuid;
only the names are read.  An atom entry holds ``{"atom": {...}, "type": ...}``.
A format implements :meth:`_fetch` and :meth:`_list`; the rest is here.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any

from ...exceptions import NotFound
from ...models import records as models
from . import convert
from .reader import TaskFlowConnection

__all__ = ["PathTaskFlowConnection", "KINDS", "OURS", "check_uuid"]

KINDS = ("books", "flow_details", "atom_details")
#: What this library's own path-based stores keep beside those (TaskFlow's never do).
OURS = ("snapshots", "snapshot_data")
_BOOKS, _FLOWS, _ATOMS = KINDS


def check_uuid(uuid: str) -> str:
    """A uuid safe to use as one path component (NotFound otherwise: no record has it)."""
    if not uuid or uuid.startswith(".") or "/" in uuid or "\x00" in uuid:
        raise NotFound(f"{uuid!r} is not a record uuid")
    return uuid


class PathTaskFlowConnection(TaskFlowConnection, abc.ABC):
    """The Connection API over two primitives: fetch one entry, list entries."""

    @abc.abstractmethod
    def _fetch(self, kind: str, uuid: str) -> tuple[Any, str]:
        """The stored document of a record (None if absent) and where it is."""

    @abc.abstractmethod
    def _list(self, kind: str, uuid: str | None = None) -> list[str] | None:
        """Uuids of the records of ``kind`` (``uuid`` None), or the link names under
        record ``uuid``; None if that record does not exist."""

    @abc.abstractmethod
    def _link_location(self, kind: str, parent: str, uuid: str) -> str:
        """Where the link to ``uuid`` under record ``parent`` is, for messages."""

    def _decode(self, raw: Any, where: convert.Where) -> Any:
        return convert.decode_json(raw, where, "the stored document")

    def _load(self, kind: str, uuid: str, what: str) -> tuple[Any, convert.Where]:
        raw, location = self._fetch(kind, check_uuid(uuid))
        if raw is None:
            self._not_found(what, uuid)
        where = convert.Where(f"{what} {uuid}", location)
        if not raw:
            where.fail("it is empty")
        return self._decode(raw, where), where

    def _linked(self, kind: str, uuid: str, what: str) -> list[str]:
        names = self._list(kind, check_uuid(uuid))
        if names is None:
            self._not_found(what, uuid)
        return names

    def _follow(self, read: Callable[[str], Any], kind: str, parent: str, parent_what: str,
                uuid: str, what: str) -> Any:
        try:
            return read(uuid)
        except NotFound:
            convert.Where(f"{parent_what} {parent}", self._link_location(kind, parent, uuid)
                          ).fail(f"it links {what} {uuid}, which is not in the store "
                                 f"(TaskFlow's own backend cannot load this {parent_what} "
                                 f"either)")

    def _book_uuids(self) -> list[str]:
        return self._list(_BOOKS) or []

    def _read_book(self, uuid: str) -> models.LogBook:
        return convert.logbook(*self._load(_BOOKS, uuid, "logbook"))

    def _read_flows(self, book_uuid: str) -> list[models.FlowDetail]:
        return [self._follow(self._read_flow, _BOOKS, book_uuid, "logbook", uuid, "flow detail")
                for uuid in self._linked(_BOOKS, book_uuid, "logbook")]

    def _read_flow(self, uuid: str) -> models.FlowDetail:
        return convert.flow(*self._load(_FLOWS, uuid, "flow detail"))

    def _read_atoms(self, flow_uuid: str) -> list[models.AtomDetail]:
        return [self._follow(self._read_atom, _FLOWS, flow_uuid, "flow detail", uuid,
                             "atom detail")
                for uuid in self._linked(_FLOWS, flow_uuid, "flow detail")]

    def _read_atom(self, uuid: str) -> models.AtomDetail:
        data, where = self._load(_ATOMS, uuid, "atom detail")
        if not isinstance(data, dict) or not isinstance(data.get("atom"), dict):
            where.fail('expected {"atom": {...}, "type": "TASK_DETAIL" or "RETRY_DETAIL"}')
        return convert.atom(data.get("type"), data["atom"], where)
