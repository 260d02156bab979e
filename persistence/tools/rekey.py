"""Re-encrypt every stored value under the current key (``persistence rekey URI``).

After a key is added as the current one, values written before stay under
the old key (reads find it by id).  :func:`rekey` rewrites, flow detail by
flow detail, every one that holds a value not under the current key — under
an old key, or not encrypted at all (a store that turned encryption on) —
and the logbooks whose meta does, so the old key can then be removed.

It finds them without decrypting anything (the stored envelopes name their
keys), so it is cheap to run again: flow details already under the current
key are skipped, which makes an interrupted run resumable.  Each flow detail
is rewritten with one ``update_flow_details`` conditional on the revisions
just read; one changed meanwhile by an engine is read again and retried.
Blobs of rewritten offloaded values are removed once their records no
longer reference them.  Snapshots are immutable: values in them stay under
the key they were taken with, and :class:`RekeyReport` counts the snapshots
that still need an old key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

from ..backends.base import Connection
from ..exceptions import Conflict, NotFound, PersistenceError
from ..payload import Pipeline, collecting, refs_of

__all__ = ["rekey", "RekeyReport", "stale_values"]

#: ``progress(done, total)``: called after each logbook.
Progress = Callable[[int, int], None]

_ATOM_VALUES = ("results", "failure", "revert_results", "revert_failure")


@dataclasses.dataclass
class RekeyReport:
    """What a rekey did: logbooks and flow details looked at and rewritten, values
    rewritten, and snapshots still holding values under another key."""

    key: str
    logbooks: int = 0
    flows: int = 0
    logbooks_rewritten: int = 0
    flows_rewritten: int = 0
    values_rewritten: int = 0
    snapshots_behind: int = 0


def _pipeline(conn: Connection) -> Pipeline:
    pipeline = getattr(conn.backend, "payload", None)
    if pipeline is None or pipeline.keys is None:
        raise PersistenceError("rekey needs encryption configured on the store ('encrypt' "
                               "with the new key as current and the old ones still listed)")
    return pipeline


def _plain(values: Iterable[Any]) -> int:
    """How many values were stored as themselves (a collecting read leaves them set)."""
    return sum(1 for v in values if v is not None)


def stale_values(found: list[dict], plain: int, current: str) -> int:
    """How many values of a collecting read are not under key ``current``."""
    return plain + sum(1 for e in found if e.get("key") != current and "value" not in e)


def _record_values(record: Any) -> list[Any]:
    values = list(record.meta.values())
    values.extend(getattr(record, f, None) for f in _ATOM_VALUES if hasattr(record, f))
    return values


def _flow_state(conn: Connection, flow_uuid: str, current: str) -> tuple[int, list[dict]]:
    """(stale values, envelopes) of a flow detail and its atoms, read without keys."""
    with collecting() as found:
        fd = conn.get_flow_details(flow_uuid)
        plain = _plain(_record_values(fd)) + sum(_plain(_record_values(ad)) for ad in fd)
    return stale_values(found, plain, current), found


def _rewrite_flow(conn: Connection, flow_uuid: str, current: str, attempts: int = 5) -> int:
    """Rewrite one flow detail under the current key; values rewritten (0: none stale)."""
    for _ in range(attempts):
        stale, old = _flow_state(conn, flow_uuid, current)
        if not stale:
            return 0
        fd = conn.get_flow_details(flow_uuid)
        fd.touch()
        for ad in fd:
            ad.touch()
        try:
            conn.update_flow_details(fd)
        except Conflict:
            continue                    # an engine wrote meanwhile: read again
        pipeline = _pipeline(conn)
        refs = [ref for envelope in old for ref in refs_of(envelope)]
        if refs:
            pipeline.delete_refs(refs)
        return stale
    raise Conflict(f"flow detail {flow_uuid} kept changing while being rekeyed "
                   f"({attempts} attempts); run rekey again when it is idle")


def _rewrite_book_meta(conn: Connection, book_uuid: str, current: str) -> int:
    with collecting() as found:
        book = conn.get_logbook(book_uuid, lazy=True)
        stale = stale_values(found, _plain(book.meta.values()), current)
    if stale:
        book = conn.get_logbook(book_uuid, lazy=True)
        book.touch()
        conn.save_logbook(book)
        _pipeline(conn).delete_refs([r for e in found for r in refs_of(e)])
    return stale


def _snapshots_behind(conn: Connection, current: str) -> int:
    if not getattr(conn.backend, "supports_snapshots", False):
        return 0
    behind = 0
    for snap in conn.list_snapshots():
        with collecting() as found:
            try:
                fd = conn.get_snapshot(snap.id).flow
            except NotFound:
                continue
            plain = _plain(_record_values(fd)) + sum(_plain(_record_values(a)) for a in fd)
        behind += bool(stale_values(found, plain, current))
    return behind


def rekey(conn: Connection, progress: Progress | None = None) -> RekeyReport:
    """Rewrite every value of the store that is not under the current key.

    ``progress(done, total)`` is called after each logbook.  Prints and
    returns no key, only the current key's id.
    """
    current = _pipeline(conn).keys.current
    report = RekeyReport(key=current)
    uuids = [book.uuid for book in conn.get_logbooks(lazy=True)]
    for done, book_uuid in enumerate(uuids, 1):
        try:
            flows = [fd.uuid for fd in conn.get_flows_for_book(book_uuid, lazy=True)]
            rewritten = _rewrite_book_meta(conn, book_uuid, current)
        except NotFound:            # destroyed meanwhile
            continue
        report.logbooks += 1
        report.logbooks_rewritten += bool(rewritten)
        report.values_rewritten += rewritten
        for flow_uuid in flows:
            try:
                count = _rewrite_flow(conn, flow_uuid, current)
            except NotFound:
                continue
            report.flows += 1
            report.flows_rewritten += bool(count)
            report.values_rewritten += count
        if progress is not None:
            progress(done, len(uuids))
    report.snapshots_behind = _snapshots_behind(conn, current)
    return report
