"""Summaries, listings, forks and retention: the logic every backend shares.

Backends answer ``summary``, ``list_logbooks``, ``list_flow_details``,
``fork_flow`` and ``purge`` in their own way (SQL in SQL, path-based stores
by walking their layout); the value types they return, the argument checks
and the rules (what "finished" means, what a fork keeps) live here once.
"""

from __future__ import annotations

import dataclasses
import datetime
import uuid as _uuid
from collections.abc import Callable, Iterable
from typing import Any

from ..exceptions import NotFound
from ..models import records as models
from ..models import states

__all__ = ["FlowSummary", "PurgeReport", "FINISHED", "check_label", "check_page", "check_states",
           "summarize", "fork_detail", "book_time", "newest_first", "page", "utc",
           "FORKED_FROM", "PROGRESS_KEYS", "check_component"]

#: States of a flow that has nothing left to do; ``purge`` deletes logbooks
#: whose flows are all in one of them (by default).
FINISHED = (states.SUCCESS, states.REVERTED, states.FAILURE)
#: Name of the atom detail holding a flow's persistent injections (TaskFlow's
#: name); a fork always keeps it.
INJECTOR = "_TaskFlow_INJECTOR"
#: Meta key of a forked flow detail: where it came from.
FORKED_FROM = "forked_from"
#: Atom meta a fork drops from the atoms it resets (they will run again).
PROGRESS_KEYS = ("progress", "progress_details", "fingerprint")



@dataclasses.dataclass(frozen=True)
class FlowSummary:
    """Where a flow stands, without loading its atoms' results."""

    flow_uuid: str
    name: str
    state: str | None
    atoms: int
    by_state: dict[str, int]
    failures: int                              # atoms holding a failure or revert failure
    last_change: datetime.datetime | None      # last write of the flow or an atom, if known

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["last_change"] = self.last_change.isoformat() if self.last_change else None
        return out


@dataclasses.dataclass
class PurgeReport:
    """What ``purge`` deleted (or, with ``dry_run``, would delete)."""

    logbooks: list[str] = dataclasses.field(default_factory=list)
    flow_details: int = 0
    atom_details: int = 0
    batches: int = 0
    dry_run: bool = False

    def add(self, book_uuid: str, flows: int, atoms: int) -> None:
        self.logbooks.append(book_uuid)
        self.flow_details += flows
        self.atom_details += atoms

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_FORBIDDEN = ("/", "\\", "\x00")


def check_component(kind: str, value: Any) -> str:
    """Validate a uuid stored as a path component or key; ValueError if it could escape."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{kind} must be a non-empty string, not {value!r}")
    if value.startswith(".") or any(ch in value for ch in _FORBIDDEN):
        raise ValueError(f"{kind} {value!r} cannot be stored: it must not start with '.' "
                         f"or contain '/', '\\\\' or NUL")
    return value


def utc(value: datetime.datetime | None, what: str) -> datetime.datetime | None:
    """``value`` as an aware UTC datetime (naive means UTC); TypeError if not a datetime."""
    if value is None:
        return None
    if not isinstance(value, datetime.datetime):
        raise TypeError(f"{what} must be a datetime, not {type(value).__name__}")
    zone = datetime.timezone.utc
    return value.replace(tzinfo=zone) if value.tzinfo is None else value.astimezone(zone)


def check_label(label: Any) -> None:
    """A snapshot label is a string or None (TypeError otherwise)."""
    if label is not None and not isinstance(label, str):
        raise TypeError(f"a snapshot label must be a string, not {type(label).__name__}")


def check_page(limit: int | None, offset: int | None) -> tuple[int | None, int]:
    """Validated (limit, offset): whole numbers >= 0; None means no limit / 0."""
    for name, value in (("limit", limit), ("offset", offset)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                  or value < 0):
            raise ValueError(f"{name} must be a whole number >= 0 or None, not {value!r}")
    return limit, offset or 0


def check_states(value: str | Iterable[str] | None, allowed: frozenset[str],
                 what: str) -> tuple[str, ...] | None:
    """One state or several, as a tuple (None: any); ValueError naming an unknown one."""
    if value is None:
        return None
    found = (value,) if isinstance(value, str) else tuple(value)
    unknown = [s for s in found if s not in allowed]
    if unknown:
        raise ValueError(f"unknown {what} {', '.join(map(repr, unknown))}; valid: "
                         f"{', '.join(sorted(a for a in allowed if a))}")
    return found


def page(items: list[Any], limit: int | None, offset: int) -> list[Any]:
    return items[offset:] if limit is None else items[offset:offset + limit]


def book_time(book: models.LogBook) -> datetime.datetime:
    """When a logbook was last saved (created, if never updated)."""
    return (book.updated_at or book.created_at
            or datetime.datetime.min.replace(tzinfo=datetime.timezone.utc))


def newest_first(books: Iterable[models.LogBook]) -> list[models.LogBook]:
    return sorted(books, key=lambda b: (book_time(b), b.uuid), reverse=True)


def summarize(fd: models.FlowDetail, atoms: Iterable[models.AtomDetail],
              last_change: datetime.datetime | None) -> FlowSummary:
    by_state: dict[str, int] = {}
    total = failures = 0
    for ad in atoms:
        total += 1
        key = ad.state or states.PENDING
        by_state[key] = by_state.get(key, 0) + 1
        if ad.failure is not None or ad.revert_failure is not None:
            failures += 1
    return FlowSummary(fd.uuid, fd.name, fd.state, total, by_state, failures, last_change)


def fork_detail(fd: models.FlowDetail, keep: Iterable[str], name: str | None = None,
                always_keep: Iterable[str] = (INJECTOR,)) -> models.FlowDetail:
    """A new flow detail (new uuids) copying ``fd``: atoms named in ``keep`` (and
    ``always_keep``: the flow's injections) as they are, every other atom reset to
    PENDING with no result.

    NotFound names any atom in ``keep`` that ``fd`` does not have.
    """
    if isinstance(keep, str):
        keep = [keep]
    wanted = set(keep)
    by_name = {ad.name: ad for ad in fd}
    missing = sorted(wanted - set(by_name))
    if missing:
        raise NotFound(f"flow detail {fd.name!r} ({fd.uuid}) has no atom(s) "
                       f"{', '.join(map(repr, missing))} to keep in a fork")
    wanted.update(n for n in always_keep if n in by_name)
    fork = models.FlowDetail(name or fd.name, str(_uuid.uuid4()))
    fork.state = states.PENDING
    fork.meta = {**dict(fd.meta), FORKED_FROM: {"flow_uuid": fd.uuid,
                                                 "kept": sorted(wanted)}}
    for ad in fd:
        clone = type(ad).from_dict({**ad.to_dict(), "uuid": str(_uuid.uuid4())})
        if ad.name not in wanted:
            clone.reset(states.PENDING)
            clone.meta = {k: v for k, v in clone.meta.items() if k not in PROGRESS_KEYS}
        fork.add(clone)
    return fork


# -- generic implementations over the basic Connection API ------------------------
# Connection's defaults: correct on any backend, but they read more than a
# backend that can filter and count where the data lives (path-based, SQL).

def find_book(conn: Any, flow_uuid: str) -> str:
    """The uuid of the logbook holding flow detail ``flow_uuid`` (NotFound if none)."""
    for book in conn.get_logbooks(lazy=True):
        if any(fd.uuid == flow_uuid for fd in conn.get_flows_for_book(book.uuid, lazy=True)):
            return book.uuid
    raise NotFound(f"no flow detail {flow_uuid} in any logbook")


def list_logbooks(conn: Any, name: str | None, updated_since: datetime.datetime | None,
                  updated_before: datetime.datetime | None, limit: int | None,
                  offset: int | None) -> list[models.LogBook]:
    limit, offset = check_page(limit, offset)
    since, before = utc(updated_since, "updated_since"), utc(updated_before, "updated_before")
    books = [b for b in conn.get_logbooks(lazy=True)
             if (name is None or b.name == name)
             and (since is None or book_time(b) >= since)
             and (before is None or book_time(b) < before)]
    return page(newest_first(books), limit, offset)


def list_flow_details(conn: Any, state: Any, logbook: str | None, limit: int | None,
                      offset: int | None) -> list[models.FlowDetail]:
    limit, offset = check_page(limit, offset)
    wanted = check_states(state, states.FLOW_STATES, "flow state")
    books = ([conn.get_logbook(logbook, lazy=True)] if logbook is not None
             else newest_first(conn.get_logbooks(lazy=True)))
    flows = [fd for book in books for fd in conn.get_flows_for_book(book.uuid, lazy=True)
             if wanted is None or fd.state in wanted]
    return page(flows, limit, offset)


def count_atoms(conn: Any, flow_uuid: str, atom_states: Any) -> int:
    wanted = check_states(atom_states, states.ATOM_STATES, "atom state")
    return sum(1 for ad in conn.get_atoms_for_flow(flow_uuid)
               if wanted is None or (ad.state or states.PENDING) in wanted)


def purge(conn: Any, finished_before: datetime.datetime, flow_states: Iterable[str],
          batch_size: int, dry_run: bool,
          progress: Callable[[int, int], None] | None = None) -> PurgeReport:
    """The retention algorithm, written once over two primitives of ``conn``:
    ``_purge_candidates(cutoff, wanted)`` (uuids of the logbooks that qualify
    now, found without holding the store) and ``_purge_batch(uuids, cutoff,
    wanted, dry_run)`` (checks them again and, unless ``dry_run``, deletes
    those still qualifying in one transaction; returns ``(uuid, flow details,
    atom details)`` of each).  ``_purge_pause()`` runs between batches."""
    cutoff, wanted = check_purge(finished_before, flow_states, batch_size)
    report = PurgeReport(dry_run=dry_run)
    candidates = conn._purge_candidates(cutoff, wanted)
    for start in range(0, len(candidates), batch_size):
        if start:
            conn._purge_pause()
        for uuid, flows, atoms in conn._purge_batch(candidates[start:start + batch_size],
                                                    cutoff, wanted, dry_run):
            report.add(uuid, flows, atoms)
        report.batches += 1
        if progress is not None:
            progress(min(start + batch_size, len(candidates)), len(candidates))
    return report


def purgeable_books(conn: Any, book_uuids: Iterable[str] | None, cutoff: datetime.datetime,
                    wanted: tuple[str, ...]) -> list[tuple[str, int, int]]:
    """Through the public API only: (uuid, flow details, atom details) of the
    logbooks among ``book_uuids`` (None: all) saved before ``cutoff`` whose
    flows are all in ``wanted``."""
    books = (conn.get_logbooks(lazy=True) if book_uuids is None
             else _existing_books(conn, book_uuids))
    found = []
    for book in books:
        if book_time(book) >= cutoff:
            continue
        try:
            flows = list(conn.get_flows_for_book(book.uuid))
        except NotFound:
            continue
        if all(fd.state in wanted for fd in flows):
            found.append((book.uuid, len(flows), sum(len(fd) for fd in flows)))
    return found


def _existing_books(conn: Any, book_uuids: Iterable[str]) -> list[models.LogBook]:
    books = []
    for uuid in book_uuids:
        try:
            books.append(conn.get_logbook(uuid, lazy=True))
        except NotFound:
            continue
    return books


def check_purge(finished_before: Any, flow_states: Iterable[str],
                batch_size: Any) -> tuple[datetime.datetime, tuple[str, ...]]:
    if finished_before is None:
        raise TypeError("purge needs finished_before (a datetime)")
    cutoff = utc(finished_before, "finished_before")
    wanted = check_states(flow_states, states.FLOW_STATES, "flow state")
    if not wanted:
        raise ValueError("purge needs at least one flow state")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a whole number >= 1, not {batch_size!r}")
    return cutoff, wanted
