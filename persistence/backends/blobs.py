"""Removing offloaded blobs no record references: on destroy and purge, and the sweep.

Why it is safe next to concurrent writers rests on three rules:

1. *A blob is written before the record that references it commits*
   (the pipeline uploads while encoding, before the backend's transaction).
2. *No two writes share a blob*: a blob's key carries a random write id
   (:mod:`persistence.payload.offload`), so once no record references a blob,
   no record ever will again (copies — snapshots, forks, migrate — re-encode
   and get blobs of their own).
3. *A writer commits within* ``grace`` *seconds of writing its blob*
   (milliseconds in practice; ``grace`` defaults to an hour).

**Destroy and purge** read the references of the records they delete, delete
the records, then the blobs: by rule 2 nothing else references those blobs.

**The sweep** (:func:`sweep`: crashed writes, overwritten values, failed
writes) takes the time ``t0``, *then* lists the blobs written before
``t0 - grace``, *then* reads every record's references, and deletes the
listed blobs no record references.  Suppose it deleted a blob ``b`` that a
committed record references.  ``b`` was listed, so it was written before
``t0 - grace``, so (rule 3) the record referencing it committed before
``t0``, before the scan began: the scan saw that record — referencing ``b``
(then ``b`` was kept: contradiction) or already overwritten or deleted (then,
by rule 2, nothing references ``b`` again: deleting it loses nothing).
Blobs younger than ``grace`` and blobs of writes still in flight are never
touched; a sweep interrupted half-way leaves only garbage for the next one.
"""

from __future__ import annotations

import contextvars
import dataclasses
import functools
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ..exceptions import NotFound, PersistenceError
from ..payload import Pipeline, collecting, refs_of

__all__ = ["SweepReport", "sweep", "referenced_blobs", "book_refs", "remove_blobs_with"]

LOG = logging.getLogger(__name__)

#: Set while a destroy or purge hook runs, so nested calls do not collect twice.
_IN_HOOK: contextvars.ContextVar[bool] = contextvars.ContextVar("persistence_blob_hook",
                                                                 default=False)


@dataclasses.dataclass(frozen=True)
class SweepReport:
    """What a sweep found: blobs under the offload URL, how many were older than
    the grace period, how many records referenced, and the blobs removed (or,
    with ``dry_run``, that would be)."""

    url: str
    listed: int
    old_enough: int
    referenced: int
    removed: tuple[str, ...]
    dry_run: bool


def pipeline_of(conn: Any) -> Pipeline | None:
    """The payload pipeline of a connection's backend (None for a backend without one)."""
    return getattr(conn.backend, "payload", None)


def _scan(conn: Any) -> Iterator[Any]:
    """Every stored record of the store, read through the public Connection (a
    backend may offer ``_scan_records`` to reach records no logbook links)."""
    scan = getattr(conn, "_scan_records", None)
    if scan is not None:
        yield from scan()
        return
    for book in conn.get_logbooks(lazy=True):
        try:
            full = conn.get_logbook(book.uuid)
        except NotFound:
            continue
        yield full
        for fd in full:
            yield fd
            yield from fd
    if getattr(conn.backend, "supports_snapshots", False):
        for snap in conn.list_snapshots():
            try:
                fd = conn.get_snapshot(snap.id).flow
            except NotFound:
                continue
            yield fd
            yield from fd


def referenced_blobs(conn: Any) -> set[tuple[str, str]]:
    """(url, key) of every blob a record of the store references; reads no blob and
    needs no key (values are not decoded)."""
    with collecting() as found:
        for _ in _scan(conn):
            pass
    return {(ref["url"], ref["key"]) for envelope in found for ref in refs_of(envelope)}


def sweep(conn: Any, grace: float | None = None, dry_run: bool = False,
          clock: Callable[[], float] = time.time) -> SweepReport:
    """Remove the blobs under the backend's offload URL that no record references
    and that are older than ``grace`` seconds (default: the pipeline's); see the
    module docstring for why this is safe next to running writers."""
    pipeline = pipeline_of(conn)
    if pipeline is None or pipeline.offload is None:
        raise PersistenceError("this backend has no offload URL configured: nothing to sweep "
                               "(configure 'offload' with the URL its blobs are under)")
    store = pipeline.offload
    grace = pipeline.grace if grace is None else grace
    t0 = clock()
    listed = list(store.blobs())                       # 1. list first ...
    old = [key for key, mtime in listed if mtime is not None and mtime < t0 - grace]
    referenced = {key for url, key in referenced_blobs(conn) if url == store.url}  # 2. scan
    doomed = tuple(sorted(set(old) - referenced))       # 3. ... delete what nobody references
    if doomed and not dry_run:
        store.delete(doomed)
    LOG.info("sweep of %s: %d blobs, %d past the grace period, %d removed", store.display,
             len(listed), len(old), 0 if dry_run else len(doomed))
    return SweepReport(store.display, len(listed), len(old), len(referenced), doomed, dry_run)


def book_refs(conn: Any, book_uuids: Iterable[str]) -> dict[str, list[dict]]:
    """Blob references of each logbook (its flows, atoms and their snapshots)."""
    out: dict[str, list[dict]] = {}
    snapshots = getattr(conn.backend, "supports_snapshots", False)
    for uuid in book_uuids:
        with collecting() as found:
            try:
                book = conn.get_logbook(uuid)
            except NotFound:
                continue
            if snapshots:
                for fd in book:
                    for snap in conn.list_snapshots(fd.uuid):
                        try:
                            conn.get_snapshot(snap.id)
                        except NotFound:
                            continue
        out[uuid] = [ref for envelope in found for ref in refs_of(envelope)]
    return out


def _remove(pipeline: Pipeline, refs: list[dict]) -> None:
    """Delete blobs after their records went; a failure is logged (the sweep retries)."""
    if not refs:
        return
    try:
        pipeline.delete_refs(refs)
    except PersistenceError as err:
        LOG.warning("could not remove %d offloaded blob(s) of deleted records (a later "
                    "sweep will): %s", len(refs), err)


def _hooked(method: Callable, books_of: Callable[..., list[str]],
            gone_of: Callable[[Any, list[str]], list[str]]) -> Callable:
    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        pipeline = pipeline_of(self)
        if _IN_HOOK.get() or pipeline is None or pipeline.offload is None:
            return method(self, *args, **kwargs)
        books = books_of(*args, **kwargs)
        if not books:
            return method(self, *args, **kwargs)
        refs = book_refs(self, books)
        token = _IN_HOOK.set(True)
        try:
            result = method(self, *args, **kwargs)
        finally:
            _IN_HOOK.reset(token)
        _remove(pipeline, [ref for uuid in gone_of(result, books) for ref in refs.get(uuid, ())])
        return result
    wrapper.__persistence_blob_hook__ = True
    return wrapper


def _destroyed(book_uuid: str, *args: Any, **kwargs: Any) -> list[str]:
    return [book_uuid]


def _purged(book_uuids: list[str], cutoff: Any, wanted: Any, dry_run: bool,
            *args: Any, **kwargs: Any) -> list[str]:
    return [] if dry_run else list(book_uuids)


def remove_blobs_with(cls: type) -> None:
    """Make ``destroy_logbook`` and the purge primitive ``_purge_batch`` of ``cls``
    remove the blobs of what they delete (called for every Connection subclass)."""
    hooks = {"destroy_logbook": (_destroyed, lambda result, books: books),
             "_purge_batch": (_purged, lambda result, books: [entry[0] for entry in result])}
    for name, (books_of, gone_of) in hooks.items():
        method = getattr(cls, name, None)      # its own, or a mixin's (not yet hooked)
        if (method is not None and not getattr(method, "__persistence_blob_hook__", False)
                and not getattr(method, "__isabstractmethod__", False)):
            setattr(cls, name, _hooked(method, books_of, gone_of))
