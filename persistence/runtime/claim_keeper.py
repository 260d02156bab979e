"""Holding a claim on a flow detail while an engine runs it: renewal and the lease check.

:class:`ClaimKeeper` claims a flow detail, renews the claim from a daemon
thread every third of its ttl, and answers :meth:`ClaimKeeper.check` before
every write of :class:`persistence.Storage`.  The check needs no I/O: the
claim is held while the last successful claim or renewal was *sent* less
than ``ttl`` seconds ago by this machine's monotonic clock.  The store
starts counting the ttl when the request reaches it, so whenever this side
believes the claim is held, the store does too; another engine can take the
flow over only after this side has stopped writing.  A renewal the store
refuses (the claim was taken over) makes every later check fail at once;
renewals that fail for other reasons (the store unreachable for a moment)
are retried until the lease runs out.

Writes that were already in flight when a claim was lost are still fenced by
revisions: the new owner reloads the flow, and a stale write on either side
is a ``Conflict``, never a silent overwrite.
"""

from __future__ import annotations

import logging
import threading
import time

from ..backends.base import Backend
from ..exceptions import ConfigurationError, NotOwner, PersistenceError
from ..models import claim as claims
from ..models.claim import Claim

__all__ = ["ClaimKeeper"]

LOG = logging.getLogger(__name__)

#: Renewals per ttl (the claim survives ``RENEWALS - 1`` failed renewals in a row).
RENEWALS = 3


class ClaimKeeper:
    """Claims ``flow_uuid`` for ``owner`` now (NotOwner if someone else holds it) and
    keeps the claim until :meth:`release`."""

    def __init__(self, backend: Backend, flow_uuid: str, owner: str,
                 ttl: float = claims.DEFAULT_TTL) -> None:
        self._lease(flow_uuid, owner, ttl, backend.supports_claims, type(backend).__name__)
        self._conn = backend.get_connection()
        self._stop = threading.Event()
        sent = time.monotonic()
        try:
            self.claim: Claim = self._conn.claim_flow(flow_uuid, owner, self.ttl)
        except BaseException:
            self._conn.close()
            raise
        self._held_until = sent + self.ttl
        if self.claim.taken_over_from is not None:
            LOG.warning("%r took over flow detail %s from %r, whose claim had expired",
                        owner, flow_uuid, self.claim.taken_over_from)
        self._thread = threading.Thread(target=self._renew_loop, daemon=True,
                                        name=f"persistence-claim-{flow_uuid}")
        self._thread.start()

    def _lease(self, flow_uuid: str, owner: str, ttl: float, supported: bool,
               backend_name: str) -> None:
        """The checked claim arguments and the empty lease every keeper starts from;
        ConfigurationError when the backend (``backend_name``) keeps no claims."""
        self.flow_uuid = flow_uuid
        self.owner = owner
        self.ttl = claims.check_claim(flow_uuid, owner, ttl)
        if not supported:
            raise ConfigurationError(f"{backend_name} does not support flow claims (its "
                                     f"supports_claims flag is False): claim nothing, or use "
                                     f"a backend that does")
        self._guard = threading.Lock()
        self._lost: str | None = None

    # -- the lease ---------------------------------------------------------
    @property
    def held(self) -> bool:
        with self._guard:
            return self._lost is None and time.monotonic() < self._held_until

    def check(self) -> None:
        """Return if the claim is held; raise NotOwner saying why if not."""
        with self._guard:
            lost, until = self._lost, self._held_until
        if lost is not None:
            raise NotOwner(lost)
        if time.monotonic() >= until:
            raise NotOwner(f"the claim of {self.owner!r} on flow detail {self.flow_uuid} "
                           f"lapsed: it could not be renewed within its ttl of {self.ttl:g} s "
                           f"(the store was unreachable?)")

    def _renew_loop(self) -> None:
        interval = self.ttl / RENEWALS
        while not self._stop.wait(interval):
            sent = time.monotonic()
            try:
                claim = self._conn.renew_claim(self.flow_uuid, self.owner, self.ttl)
            except Exception as err:
                interval = self._renewal_failed(err)
                if interval is None:
                    return
                continue
            interval = self._renewed(claim, sent)

    def _renewed(self, claim: Claim, sent: float) -> float:
        """Take a renewal sent at ``sent`` (monotonic); the wait before the next one."""
        with self._guard:
            self.claim = claim
            self._held_until = max(self._held_until, sent + self.ttl)
        return self.ttl / RENEWALS

    def _renewal_failed(self, err: Exception) -> float | None:
        """After a failed renewal: the wait before trying again, or None to stop (the
        claim was taken over; or a bug, so that writes fail loudly at the lease's end)."""
        if isinstance(err, NotOwner):
            with self._guard:
                self._lost = (f"{self.owner!r} lost its claim on flow detail "
                              f"{self.flow_uuid}: {err}")
            LOG.error("%s", self._lost)
            return None
        if isinstance(err, PersistenceError):
            LOG.warning("could not renew the claim of %r on flow detail %s (retrying): %s",
                        self.owner, self.flow_uuid, err)
            return self.ttl / (4 * RENEWALS)
        LOG.error("renewing the claim on flow detail %s failed", self.flow_uuid, exc_info=err)
        return None

    # -- the end -----------------------------------------------------------
    def release(self) -> None:
        """Stop renewing and give the claim up (if it is still ours)."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=max(5.0, self.ttl))
        try:
            if self._lost is None:
                self._conn.release_flow(self.flow_uuid, self.owner)
        except PersistenceError as err:
            LOG.warning("could not release the claim of %r on flow detail %s: %s",
                        self.owner, self.flow_uuid, err)
        finally:
            with self._guard:
                self._lost = self._lost or (f"{self.owner!r} released its claim on flow "
                                            f"detail {self.flow_uuid}")
            self._conn.close()
