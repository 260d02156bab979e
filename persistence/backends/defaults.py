"""What every connection can do through the core contract alone.

:class:`ConnectionDefaults` is a base of :class:`~persistence.backends.base.Connection`:
forks, summaries, counts, listings and purge written once over the contract's
abstract methods (with :mod:`.shared`), so a new backend has them for free;
built-in backends answer them where the data lives.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable

from ..exceptions import NotFound
from ..models import records as models
from . import shared as lifecycle

__all__ = ["ConnectionDefaults"]


class ConnectionDefaults:
    """Defaults over the core contract (mixed into ``Connection``)."""

    def update_atom_details_nowait(self, atom_detail: models.AtomDetail
                                   ) -> models.AtomDetail:
        """Save an atom detail as :meth:`update_atom_details` does, without waiting for
        the write to be durable: what ``Storage`` writes when an atom starts.

        The write is applied before any later write through this connection and
        is durable once a later (waiting) write through it returns; a crash
        before that may lose it.  Its error (``Conflict``...) is raised here or by
        the next call that writes.  This default waits, as
        :meth:`update_atom_details`; a backend overrides it where its store can
        skip the wait (PostgreSQL: asynchronous commit; ZooKeeper: the answer
        checked by the next write, which goes out behind it; dir: no fsync).
        """
        return self.update_atom_details(atom_detail)

    def fork_flow(self, flow_uuid: str, from_atoms: Iterable[str] = (),
                  name: str | None = None) -> models.FlowDetail:
        """A new flow detail in the same logbook: the atoms named in ``from_atoms``
        (list what they depend on too) keep their stored results, every other atom
        is reset to PENDING, so an engine re-runs only from there."""
        fork = lifecycle.fork_detail(self.get_flow_details(flow_uuid), from_atoms, name)
        book = self.get_logbook(lifecycle.find_book(self, flow_uuid), lazy=True)
        book.add(fork)
        self.save_logbook(book)
        return fork

    def summary(self, flow_uuid: str) -> lifecycle.FlowSummary:
        """Atom counts by state, failures and last change of a flow detail."""
        fd = self.get_flow_details(flow_uuid)
        return lifecycle.summarize(fd, fd, None)

    def count_atoms(self, flow_uuid: str, states: str | Iterable[str] | None = None) -> int:
        """How many atom details a flow detail has (in one of ``states``, if given)."""
        return lifecycle.count_atoms(self, flow_uuid, states)

    def list_logbooks(self, name: str | None = None,
                      updated_since: datetime.datetime | None = None,
                      updated_before: datetime.datetime | None = None,
                      limit: int | None = None, offset: int | None = None
                      ) -> list[models.LogBook]:
        """Logbooks without their flow details, newest first (by last save), filtered
        by exact ``name`` and save time (``updated_since`` <= t < ``updated_before``)."""
        return lifecycle.list_logbooks(self, name, updated_since, updated_before, limit, offset)

    def count_logbooks(self, name: str | None = None,
                       updated_since: datetime.datetime | None = None,
                       updated_before: datetime.datetime | None = None) -> int:
        """How many logbooks :meth:`list_logbooks` would list without a limit."""
        return len(lifecycle.list_logbooks(self, name, updated_since, updated_before,
                                           None, None))

    def list_flow_details(self, state: str | Iterable[str] | None = None,
                          logbook: str | None = None, limit: int | None = None,
                          offset: int | None = None) -> list[models.FlowDetail]:
        """Flow details without their atoms, newest first, in ``state`` (one or
        several) and in logbook ``logbook`` if given."""
        return lifecycle.list_flow_details(self, state, logbook, limit, offset)

    def purge(self, finished_before: datetime.datetime,
              states: Iterable[str] = lifecycle.FINISHED, batch_size: int = 100,
              dry_run: bool = False,
              progress: Callable[[int, int], None] | None = None) -> lifecycle.PurgeReport:
        """Delete whole logbooks last changed before ``finished_before`` whose flow
        details are all in ``states``, ``batch_size`` logbooks per transaction;
        return what was deleted (with ``dry_run``: what would be, deleting nothing).
        ``progress(done, total)`` is called after each batch (``total``: the
        logbooks that qualified when the purge started)."""
        return lifecycle.purge(self, finished_before, states, batch_size, dry_run, progress)

    # Primitives of lifecycle.purge (the algorithm is written once, there); these
    # defaults work through the public API, one logbook at a time.
    def _purge_candidates(self, cutoff: datetime.datetime,
                          wanted: tuple[str, ...]) -> list[str]:
        return [uuid for uuid, _, _ in lifecycle.purgeable_books(self, None, cutoff, wanted)]

    def _purge_batch(self, book_uuids: list[str], cutoff: datetime.datetime,
                     wanted: tuple[str, ...], dry_run: bool) -> list[tuple[str, int, int]]:
        found = lifecycle.purgeable_books(self, book_uuids, cutoff, wanted)
        if dry_run:
            return found
        gone = []
        for entry in found:
            try:
                self.destroy_logbook(entry[0])
            except NotFound:
                continue
            gone.append(entry)
        return gone

    def _purge_pause(self) -> None:
        """Between two batches of a purge (a store shared with waiting writers may yield)."""
        return None
