"""Keeping a claim on a flow detail from the event loop: renewed by an asyncio task.

:class:`AsyncClaimKeeper` is :class:`~persistence.runtime.claim_keeper.ClaimKeeper`
(the same lease rule answers :meth:`check` before every write, with no I/O)
whose claim, renewals and release are awaited on an
:class:`~persistence.aio.connection.AsyncConnection` of its own instead of
being run by a thread.
"""

from __future__ import annotations

import asyncio
import logging
import time

from ..exceptions import PersistenceError
from ..models import claim as claims
from ..runtime.claim_keeper import RENEWALS, ClaimKeeper
from . import bridge
from .connection import AsyncBackend, AsyncConnection

__all__ = ["AsyncClaimKeeper"]

LOG = logging.getLogger(__name__)


class AsyncClaimKeeper(ClaimKeeper):
    """Claims ``flow_uuid`` for ``owner`` (on :meth:`start`) and keeps the claim
    until :meth:`aclose`; :meth:`check` and :attr:`held` are ClaimKeeper's."""

    def __init__(self, backend: AsyncBackend, flow_uuid: str, owner: str,
                 ttl: float = claims.DEFAULT_TTL) -> None:
        # ClaimKeeper.__init__ claims at once, synchronously: not called here.
        self._lease(flow_uuid, owner, ttl, backend.supports_claims,
                    type(backend.sync_backend).__name__)
        self._backend = backend
        self._held_until = 0.0
        self._aconn: AsyncConnection | None = None
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        """Claim the flow (NotOwner if another owner's claim is live) and start renewing."""
        self._aconn = conn = await self._backend.get_connection()
        sent = time.monotonic()
        try:
            self.claim = await conn.claim_flow(self.flow_uuid, self.owner, self.ttl)
        except BaseException:
            await conn.close()
            raise
        self._held_until = sent + self.ttl
        if self.claim.taken_over_from is not None:
            LOG.warning("%r took over flow detail %s from %r, whose claim had expired",
                        self.owner, self.flow_uuid, self.claim.taken_over_from)
        self._task = asyncio.create_task(self._renew_loop(),
                                         name=f"persistence-claim-{self.flow_uuid}")

    async def _renew_loop(self) -> None:  # type: ignore[override]
        interval = self.ttl / RENEWALS
        while True:
            await asyncio.sleep(interval)
            sent = time.monotonic()
            try:
                claim = await self._aconn.renew_claim(self.flow_uuid, self.owner, self.ttl)
            except Exception as err:
                interval = self._renewal_failed(err)
                if interval is None:
                    return
                continue
            interval = self._renewed(claim, sent)

    def release(self) -> None:
        """Give the claim up; called by Storage's close, which runs in the bridge."""
        bridge.wait(self.aclose())

    async def aclose(self) -> None:
        """Stop renewing and give the claim up (if it is still ours)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        conn, self._aconn = self._aconn, None
        if conn is None:
            return
        try:
            if self._lost is None:
                await conn.release_flow(self.flow_uuid, self.owner)
        except PersistenceError as err:
            LOG.warning("could not release the claim of %r on flow detail %s: %s",
                        self.owner, self.flow_uuid, err)
        finally:
            with self._guard:
                self._lost = self._lost or (f"{self.owner!r} released its claim on flow "
                                            f"detail {self.flow_uuid}")
            await conn.close()
