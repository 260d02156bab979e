"""TaskFlow's three writes: merge what is handed in into what is stored.

TaskFlow's backends load what is stored, merge the object handed in into it
(``merge()``: its state, intention, results, failures, meta, version — never
its name), write the merged record and return the merged object, which
keeps stored children the caller did not pass (``update_flow_details`` of a
flow holding some atoms keeps the others).  We do the same with TaskFlow's
own ``merge()`` methods, on TaskFlow objects converted from our records, and
write through our backend with each record conditional on the revision it
was read at.

On top of that, an object whose lineage (:mod:`.lineage`) was at an older
revision than the store is a stale writer: the write raises
:class:`~persistence.exceptions.Conflict` and writes nothing — for an atom
always, for a logbook or flow detail when its own fields differ from the
stored ones (otherwise its write would change nothing another writer did).
An atom update of a lineage that still holds its record writes without
reading first (TaskFlow's SQL backend reads each atom before updating it).

Every atom of the object handed in is written, as TaskFlow's backends do: a
value changed in place (``detail.results["n"] = 1``) looks the same as the
stored one from here, so skipping "unchanged" atoms could lose it.
"""

from __future__ import annotations

from typing import Any

from ...backends.base import Connection
from ...exceptions import Conflict, NotFound
from ...models import records as models
from . import convert, lineage

__all__ = ["save_logbook", "update_flow_details", "update_atom_details", "binder"]

# (object handed in, object returned, record written): linked once the write is done.
_Written = list[tuple[Any, Any, Any]]


def binder(store: object) -> convert.Bind:
    """The ``bind`` callback linking converted objects to the records they came from."""
    def bind(obj: Any, record: Any) -> None:
        lineage.bind(obj, store, record, keep_record=isinstance(record, models.AtomDetail))
    return bind


def _check_fresh(obj: Any, record: Any, store: object, what: str) -> None:
    """Conflict if ``obj``'s lineage was read or saved at another revision than stored.

    A logbook or flow detail whose own fields are those stored passes anyway: its
    write changes nothing another writer changed (so processes sharing a logbook
    can each add flows to it); its children are checked one by one.
    """
    link = lineage.known(obj, store)
    if link is not None and link.revision != record.revision:
        if not isinstance(record, models.AtomDetail) and convert.same_own_fields(obj, record):
            return
        raise Conflict(
            f"{what} {record.name!r} ({record.uuid}) was changed by another writer since "
            f"this object was read or saved (it is at revision {link.revision}, the store "
            f"at {record.revision}); nothing was written: load it again and redo the change",
            record=record.uuid, expected=link.revision, found=record.revision)


def _link_written(store: object, written: _Written) -> None:
    for incoming, returned, record in written:
        lineage.bind(incoming, store, record,
                     keep_record=isinstance(record, models.AtomDetail))
        if returned is not incoming:
            lineage.share(returned, incoming)


def _merge_atoms(store: object, record: models.FlowDetail, merged: Any, detail: Any,
                 written: _Written) -> None:
    """Merge the atoms of TaskFlow's flow ``detail`` into ``merged`` (TaskFlow's view
    of the stored flow) and into ``record`` (ours), as TaskFlow's backends do."""
    for atom in detail:
        stored = merged.find(atom.uuid)
        if stored is None:
            merged.add(atom)
            atom_record = convert.atom_from_taskflow(atom)
            record.add(atom_record)
            written.append((atom, atom, atom_record))
            continue
        atom_record = record.find(atom.uuid)
        _check_fresh(atom, atom_record, store, "atom detail")
        stored.merge(atom)
        convert.copy_atom_fields(atom_record, stored)
        written.append((atom, stored, atom_record))


def update_atom_details(conn: Connection, store: object, detail: Any) -> Any:
    """Merge TaskFlow's atom ``detail`` into the stored one, write it, return it merged."""
    link = lineage.known(detail, store)
    if link is not None and link.record is not None:
        record = link.record.copy()
    else:
        try:
            record = conn.get_atom_details(detail.uuid)
        except NotFound:
            raise NotFound(f"atom detail {detail.name!r} ({detail.uuid}) was never saved: "
                           f"save the flow detail (or logbook) that contains it first") from None
        _check_fresh(detail, record, store, "atom detail")
    merged = convert.empty_taskflow_atom(record)
    merged.merge(detail)     # TaskFlow's own merge (and its check of the atom kind)
    convert.copy_atom_fields(record, merged)
    conn.update_atom_details(record)
    _link_written(store, [(detail, merged, record)])
    return merged


def update_flow_details(conn: Connection, store: object, detail: Any) -> Any:
    """Merge TaskFlow's flow ``detail`` and its atoms into the stored flow, write it,
    return the stored flow merged (with stored atoms ``detail`` does not hold)."""
    try:
        record = conn.get_flow_details(detail.uuid)
    except NotFound:
        raise NotFound(f"flow detail {detail.name!r} ({detail.uuid}) was never saved: "
                       f"save the logbook that contains it first") from None
    _check_fresh(detail, record, store, "flow detail")
    merged = convert.flow_to_taskflow(record, binder(store))
    merged.merge(detail)
    convert.copy_flow_fields(record, merged)
    written: _Written = [(detail, merged, record)]
    _merge_atoms(store, record, merged, detail, written)
    conn.update_flow_details(record)
    _link_written(store, written)
    return merged


def save_logbook(conn: Connection, store: object, book: Any) -> Any:
    """Create TaskFlow's ``book`` (returning it), or merge it, its flows and atoms into
    the stored one and return that merged; flows stored but not in ``book`` stay."""
    try:
        record = conn.get_logbook(book.uuid)
    except NotFound:
        return _create_logbook(conn, store, book)
    _check_fresh(book, record, store, "logbook")
    merged = convert.book_to_taskflow(record, binder(store))
    merged.merge(book)
    # Only the flows handed in are written: the others keep their revisions, so
    # engines running them elsewhere are not made stale by this save.
    to_save = record.copy(retain_contents=False)
    convert.copy_book_fields(to_save, merged)
    written: _Written = [(book, merged, to_save)]
    for flow in book:
        stored = merged.find(flow.uuid)
        if stored is None:
            merged.add(flow)
            flow_record = convert.flow_from_taskflow(flow)
            written.append((flow, flow, flow_record))
            written.extend((atom, atom, flow_record.find(atom.uuid)) for atom in flow)
        else:
            flow_record = record.find(flow.uuid)
            _check_fresh(flow, flow_record, store, "flow detail")
            stored.merge(flow)
            convert.copy_flow_fields(flow_record, stored)
            written.append((flow, stored, flow_record))
            _merge_atoms(store, flow_record, stored, flow, written)
        to_save.add(flow_record)
    conn.save_logbook(to_save)
    _link_written(store, written)
    return merged


def _create_logbook(conn: Connection, store: object, book: Any) -> Any:
    record = convert.book_from_taskflow(book)
    conn.save_logbook(record)
    written: _Written = [(book, book, record)]
    for flow in book:
        flow_record = record.find(flow.uuid)
        written.append((flow, flow, flow_record))
        written.extend((atom, atom, flow_record.find(atom.uuid)) for atom in flow)
    _link_written(store, written)
    return book
