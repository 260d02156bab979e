"""What a backend remembers besides the records themselves: history and snapshots.

A :class:`HistoryEntry` is appended, in the same transaction, for every write
of a flow detail or an atom detail (state changes, results, failures, and
metadata writes such as progress alike): the record, its old and new state,
its intention, the revision written, when and by whom.  Entries are
immutable; they go away only with their logbook (``destroy_logbook``,
``purge``, ``clear_all``).  Backends take the option ``history`` (default
on) to turn them off.

A :class:`Snapshot` is an immutable copy of a flow detail and its atom
details, taken by ``Connection.snapshot_flow`` and put back by
``Connection.restore_flow``.

This module also holds the one stored form of both (JSON objects, through
:mod:`persistence.models.encoding`), shared by every backend that stores them
as documents.
"""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import os
import threading
import time
from collections.abc import Iterable
from typing import Any

from . import encoding as serialization
from . import records as models

__all__ = ["HistoryEntry", "Snapshot", "WRITE", "RESTORE", "FORK", "EVENTS", "FLOW", "ATOM",
           "entry_fields", "encode_entry", "decode_entry", "entry_name",
           "from_ns", "to_ns", "sort_entries", "snapshot_id", "snapshot_body",
           "load_snapshot_body"]

#: ``HistoryEntry.event``: an ordinary write, a write by ``restore_flow``, a
#: record created by ``fork_flow``.
WRITE, RESTORE, FORK = "write", "restore", "fork"
EVENTS = (WRITE, RESTORE, FORK)
#: ``HistoryEntry.kind``.
FLOW, ATOM = "flow", "atom"

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
_INT64 = 2 ** 63 - 1


@dataclasses.dataclass(frozen=True)
class HistoryEntry:
    """One write of a flow detail or an atom detail, as the backend recorded it."""

    uuid: str
    kind: str                    # FLOW or ATOM
    name: str
    flow_uuid: str | None        # the flow itself, or the atom's flow (None if unknown)
    old_state: str | None        # None: the record was new, or its writer had not read it
    new_state: str | None
    intention: str | None        # atoms only
    revision: int | None
    at: datetime.datetime        # UTC
    owner: str | None = None     # Connection.owner of the writer, if it set one
    event: str = WRITE

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["at"] = self.at.isoformat()
        return out


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """An immutable copy of a flow detail: ``flow`` holds it (None in listings)."""

    id: str
    flow_uuid: str
    label: str | None
    created_at: datetime.datetime
    atoms: int
    flow: models.FlowDetail | None = dataclasses.field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "flow_uuid": self.flow_uuid, "label": self.label,
                "created_at": self.created_at.isoformat(), "atoms": self.atoms}


# -- time ------------------------------------------------------------------------
_clock_lock = threading.Lock()
_last_ns = 0


_time_ns = time.time_ns
_take, _give = _clock_lock.acquire, _clock_lock.release


def now_ns() -> int:
    """Wall-clock nanoseconds, strictly increasing within this process."""
    # Read, compare and store under the lock: threads that read the clock alike
    # (or a clock stepped back) still get distinct, increasing values.  The GIL
    # alone would not do: a thread can be switched out between the read and the
    # store.  The lock's bound methods are called directly: ``with`` costs a third
    # of this function.
    global _last_ns
    now = _time_ns()
    _take()
    try:
        if now <= _last_ns:
            now = _last_ns + 1
        _last_ns = now
    finally:
        _give()
    return now


def from_ns(ns: int) -> datetime.datetime:
    return _EPOCH + datetime.timedelta(microseconds=ns // 1000)


def to_ns(value: datetime.datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.timezone.utc)
    delta = value - _EPOCH
    ns = (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000
    return max(-_INT64, min(ns, _INT64))   # what a BIGINT holds (years 1678-2262)


_counter = itertools.count()
_PROCESS = os.urandom(3).hex()


def entry_name(at_ns: int) -> str:
    """A name sorting entries by time, unique across processes (path-based backends)."""
    return f"{at_ns:019d}-{_PROCESS}{next(_counter) & 0xFFFFFF:06x}"


def snapshot_id(flow_uuid: str) -> str:
    """``<flow uuid>.<time>-<unique>``: sorts by time within a flow, names its flow."""
    return f"{flow_uuid}.{entry_name(now_ns())}"


# -- entries ---------------------------------------------------------------------
def entry_fields(detail: models._Record, kind: str, flow_uuid: str | None,
                 old_state: str | None, owner: str | None, event: str = WRITE) -> dict[str, Any]:
    """The stored fields of the entry for a write of ``detail`` (revision added later)."""
    fields: dict[str, Any] = {"uuid": detail.uuid, "kind": kind, "name": detail.name,
                              "flow_uuid": flow_uuid, "old_state": old_state,
                              "new_state": detail.state, "at_ns": now_ns()}
    if kind == ATOM:
        fields["intention"] = detail.intention
    if owner is not None:
        fields["owner"] = owner
    if event != WRITE:
        fields["event"] = event
    return fields


def encode_entry(fields: dict[str, Any], revision: int | None) -> bytes:
    fields["revision"] = revision
    return serialization.dumps(fields, "history entry")


def decode_entry(data: bytes | dict[str, Any], where: str = "history entry") -> HistoryEntry:
    record = serialization.loads(data, where) if not isinstance(data, dict) else data
    try:
        return HistoryEntry(
            uuid=record["uuid"], kind=record["kind"], name=record["name"],
            flow_uuid=record.get("flow_uuid"), old_state=record.get("old_state"),
            new_state=record.get("new_state"), intention=record.get("intention"),
            revision=record.get("revision"), at=from_ns(record["at_ns"]),
            owner=record.get("owner"), event=record.get("event", WRITE))
    except (KeyError, TypeError, ValueError) as err:
        from ..exceptions import SerializationError
        raise SerializationError(f"stored data in {where} is not a history entry: "
                                 f"{err!r}") from err


def sort_entries(entries: Iterable[HistoryEntry], since: datetime.datetime | None,
                 limit: int | None) -> list[HistoryEntry]:
    """Oldest first; only those at or after ``since``; at most ``limit``."""
    out = sorted(entries, key=lambda e: (e.at, e.uuid, e.revision or 0))
    if since is not None:
        cutoff = since if since.tzinfo else since.replace(tzinfo=datetime.timezone.utc)
        out = [e for e in out if e.at >= cutoff]
    return out if limit is None else out[:limit]


# -- snapshots ---------------------------------------------------------------------
def snapshot_body(fd: models.FlowDetail,
                  codec: serialization.ValueCodec | None = None) -> bytes:
    """The stored contents of a snapshot of ``fd`` (with its atoms): JSON bytes, the
    values through the backend's payload pipeline ``codec`` as in any record."""
    body = {"flow": serialization.flow_record(fd, None, fd.revision, codec),
            "atoms": [serialization.atom_record(ad, fd.uuid, ad.revision, codec) for ad in fd]}
    return serialization.dumps(body, f"snapshot of flow detail {fd.uuid}")


def load_snapshot_body(data: bytes | str, where: str,
                       codec: serialization.ValueCodec | None = None) -> models.FlowDetail:
    """The flow detail (with its atoms) a snapshot's stored contents hold."""
    from ..exceptions import SerializationError
    body = serialization.loads(data, where)
    try:
        fd = serialization.load_flow(body["flow"], where, codec)
        for record in body["atoms"]:
            fd._atomdetails_by_id[record["uuid"]] = serialization.load_atom(record, where,
                                                                            codec)
    except (KeyError, TypeError) as err:
        raise SerializationError(f"stored data in {where} is not a snapshot: {err!r}") from err
    return fd
