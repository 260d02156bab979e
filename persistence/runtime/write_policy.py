"""WritePolicy: when :class:`~.storage.Storage`'s changes reach the backend, the
undo of a write that fails, and who may write and who hears of it (the claim,
listeners).

Persistence policy — *when* changes reach the backend (``policy=``):

``"always"`` (default)
    Every change is written before the call returns, and one logical change
    is one backend write: ``save`` stores result and state in one
    ``update_atom_details``; flow-level changes (flow state, flow metadata,
    new atom details) are one ``update_flow_details``.  Setting a value it
    already has writes nothing.  *Crash window:* only the call in flight; a
    resumed run re-executes at most the atoms that were running (at-least-once).
``"batch"``
    Changes accumulate in memory and are written together, in one backend
    transaction (``update_flow_details``: the flow and only the atoms that
    changed), by :meth:`Storage.flush`, at the end of ``with storage.batch():``
    and on every flow state change.  :attr:`Storage.has_pending` says whether
    anything is unwritten.  *Crash window:* everything since the last flush —
    atoms finished since then run again on resumption — but what is stored is
    always a consistent snapshot.  ``with storage.batch():`` gives the same
    grouping for one block under the ``"always"`` policy.
``"never"``
    Nothing reaches the backend.  *Crash window:* the whole run; there is
    nothing to resume from.

A failed immediate write puts the record back as it was (bookkeeping
included, see :mod:`persistence.models.bookkeeping`); listeners hear only of
changes that reached the store.  The caller holds Storage's write lock.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from ..backends.base import Backend, Connection
from ..backends.registry import fetch
from ..exceptions import ConfigurationError
from ..models import claim as claims
from ..models import records as models
from ..models.bookkeeping import roll_back, undo_point
from .claim_keeper import ClaimKeeper
from .listeners import Change, Listeners

__all__ = ["WritePolicy", "POLICIES", "ALWAYS", "BATCH", "NEVER"]

ALWAYS, BATCH, NEVER = "always", "batch", "never"
POLICIES = (ALWAYS, BATCH, NEVER)


def _unchanged(flow: models.FlowDetail) -> bool:
    return False


class WritePolicy:
    """The connection, policy, batching, pending flag, claim check and
    listeners of one :class:`~.storage.Storage`."""

    def __init__(self, backend: Backend, policy: str, owner: str | None,
                 owns_backend: bool, at_most_once: bool = False) -> None:
        self.backend = backend
        self.policy = policy
        self.owner = owner
        #: Whether an atom's in-flight mark (RUNNING, REVERTING) is durable before the
        #: call that sets it returns; otherwise it is sent without waiting for the disk.
        self.at_most_once = at_most_once
        #: Whether the backend was made for this Storage (closed with it).
        self.owns_backend = owns_backend
        #: Keeps the claim when ``Storage(claim=True)``; checked before each write.
        self.keeper: ClaimKeeper | None = None
        #: Listeners of durable changes; created on the first ``add_listener``.
        self.listeners: Listeners | None = None
        self.batch_depth = 0
        self.pending = False
        self._conn: Connection | None = None

    @classmethod
    def open(cls, flow: models.FlowDetail, backend: Backend | None, policy: str,
             owner: str | None, claim: bool, at_most_once: bool = False) -> WritePolicy:
        """The writes of a new Storage of ``flow``, once its options are known to be sound.

        Without a ``backend`` an in-memory one is made, and (unless nothing is
        ever written) ``flow`` is saved into it, inside a logbook of its name.
        """
        if policy not in POLICIES:
            raise ConfigurationError(f"unknown persistence policy {policy!r}; "
                                     f"choose one of {', '.join(POLICIES)}")
        if owner is not None:
            claims.check_owner(owner)
        if claim and (owner is None or policy == NEVER):
            raise ConfigurationError("claim=True needs an owner= and a policy that writes "
                                     "(not 'never')")
        writes = cls(backend if backend is not None else fetch("memory://"), policy, owner,
                     owns_backend=backend is None, at_most_once=bool(at_most_once))
        if backend is None and policy != NEVER:
            conn = writes.connection()
            conn.upgrade()
            book = models.LogBook(flow.name)
            book.add(flow)
            conn.save_logbook(book)
        return writes

    @contextlib.contextmanager
    def claiming(self, flow_uuid: str, ttl: float) -> Iterator[ClaimKeeper]:
        """Claim the flow for the owner (kept until :meth:`close`); the claim is
        released again if the block raises."""
        if self.owner is None:
            raise ConfigurationError("a claim needs an owner (Storage(..., owner=...))")
        keeper = self.keeper = ClaimKeeper(self.backend, flow_uuid, self.owner, ttl)
        try:
            yield keeper
        except BaseException:
            keeper.release()
            raise

    @property
    def stores_nothing(self) -> bool:
        """Whether nothing was ever stored (policy ``"never"`` on a backend of its own)."""
        return self.policy == NEVER and self.owns_backend

    def connection(self) -> Connection:
        """The connection of this Storage, opened on first use."""
        if self._conn is None:
            self._conn = self.backend.get_connection()
            if self.owner is not None:
                self._conn.owner = self.owner  # attributes this object's writes
        return self._conn

    def writer(self) -> Connection:
        """The connection to write through, once the claim (if any) is known to be held."""
        if self.keeper is not None:
            self.keeper.check()
        return self.connection()

    @property
    def deferring(self) -> bool:
        """Whether writes wait for a flush (policy ``"batch"`` or inside ``batch()``)."""
        return self.policy == BATCH or self.batch_depth > 0

    def change_atom(self, ad: models.AtomDetail,
                    mutate: Callable[[models.AtomDetail], bool], mark: bool = False) -> bool:
        """Apply ``mutate`` to ``ad`` and persist it per policy; whether it changed.

        ``mark=True``: the change is an in-flight mark (the atom starts running or
        reverting).  Unless ``at_most_once``, it is written without waiting for it to
        be durable (``update_atom_details_nowait``): lost in a crash, the atom just
        runs again, as a RUNNING atom does; the next write makes it durable.
        """
        listeners = self.listeners
        if self.policy != ALWAYS or self.batch_depth:   # never, or deferring
            if listeners is not None and self.policy != NEVER:
                listeners.capture(ad, "atom")
            changed = mutate(ad)
            self.pending |= changed and self.policy != NEVER
            return changed
        snapshot = undo_point(ad)
        if listeners is not None:
            listeners.capture(ad, "atom")
        if not mutate(ad):
            return False
        # writer()'s work when there is no claim to check and the connection is open.
        conn = self._conn if self.keeper is None else None
        try:
            if conn is None:
                conn = self.writer()
            if mark and not self.at_most_once:
                conn.update_atom_details_nowait(ad)
            else:
                conn.update_atom_details(ad)
        except BaseException:
            roll_back(ad, snapshot)
            raise
        if listeners is not None:
            listeners.written()
        return True

    def change_flow(self, flow: models.FlowDetail, mutate: Callable[[models.FlowDetail], bool],
                    flush: bool = False) -> bool:
        """Apply ``mutate`` to ``flow`` and persist it, with pending atoms if any."""
        if self.policy == NEVER:
            return mutate(flow)
        listeners = self.listeners
        if listeners is not None:
            listeners.capture(flow, "flow")
        if self.deferring and not flush:
            changed = mutate(flow)
            self.pending |= changed
            return changed
        snapshot = undo_point(flow)
        changed = mutate(flow)
        if not changed and not self.pending:
            return False
        try:
            self.writer().update_flow_details(flow)
        except BaseException:
            roll_back(flow, snapshot)
            raise
        self.pending = False
        if listeners is not None:
            listeners.written()
        return changed

    def flush(self, flow: models.FlowDetail) -> None:
        """Write every pending change in one transaction (no-op if none)."""
        self.change_flow(flow, _unchanged, flush=True)

    def begin_batch(self) -> None:
        """Hold writes back until the matching :meth:`end_batch`."""
        self.batch_depth += 1

    def end_batch(self, flow: models.FlowDetail) -> None:
        """End a batch; the outermost one writes what it held back."""
        self.batch_depth -= 1
        if self.batch_depth == 0:
            self.flush(flow)

    @contextlib.contextmanager
    def batched(self, flow: models.FlowDetail) -> Iterator[None]:
        """Hold writes back for the block, then write them together."""
        self.begin_batch()
        try:
            yield
        finally:
            self.end_batch(flow)

    def add_listener(self, listener: Callable[[Change], Any]) -> None:
        """Call ``listener(change)`` after each durable change."""
        if self.listeners is None:
            self.listeners = Listeners()
        self.listeners.callbacks.append(listener)

    def remove_listener(self, listener: Callable[[Change], Any]) -> None:
        """Stop calling ``listener``; ValueError if it was not added."""
        if self.listeners is None or listener not in self.listeners.callbacks:
            raise ValueError(f"{listener!r} is not a listener of this storage")
        self.listeners.callbacks.remove(listener)

    def close(self) -> None:
        """Release the claim (if held), close the connection (and an owned backend)."""
        if self.keeper is not None:
            self.keeper.release()
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self.owns_backend:
            self.backend.close()

    def __repr__(self) -> str:
        return f"<WritePolicy {self.policy} pending={self.pending}>"
