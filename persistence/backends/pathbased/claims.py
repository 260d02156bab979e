"""Flow claims over the path primitives: ``claims/<flow_uuid>`` holds one claim record.

Every change is a read of the claim record and a write conditional on the
revision read, in one transaction, so two owners racing for a flow cannot
both win: the loser's write is a Conflict, and it reads again (and finds the
winner's live claim).  A release writes the record conditionally too before
deleting it, so it never removes a claim someone else has just taken over.
The clock is this machine's (``time.time()``): right for stores that live on
one machine (``memory``, ``dir``).  Backends with a shared clock override
these methods (ZooKeeper does).
"""

from __future__ import annotations

import posixpath
import time
from collections.abc import Callable
from typing import Any

from ...exceptions import Conflict, NotFound, StorageFailure
from ...models import claim as claims
from ...models.claim import Claim

__all__ = ["PathClaims"]

_ATTEMPTS = 8

#: decide(current claim or None, now) -> the claim to store, ``current`` to store
#: nothing, or None to delete it.
Decide = Callable[[Claim | None, float], Claim | None]


class PathClaims:
    """Mixin of :class:`~persistence.path_based.PathBasedConnection`: the claim API."""

    # Provided by PathBasedConnection.
    book_path: str
    _read: Any
    _write: Any
    _delete: Any
    _exists: Any
    _ensure_dir: Any
    _transaction: Any
    _join: Any
    _flow: Any
    _where: Any

    @property
    def claim_path(self) -> str:
        """Directory of the claim records."""
        return self._join(posixpath.dirname(self.book_path), "claims")

    def _claim(self, flow_uuid: str) -> str:
        # _flow validates the uuid as a path component.
        return self._join(self.claim_path, posixpath.basename(self._flow(flow_uuid)))

    @staticmethod
    def _clock() -> float:
        return time.time()

    def _stored_claim(self, path: str) -> tuple[Claim | None, int]:
        try:
            data, revision = self._read(path)
        except NotFound:
            return None, 0
        return claims.load_claim(data, self._where(path)), revision

    def _change_claim(self, flow_uuid: str, decide: Decide, must_exist: bool) -> Claim | None:
        path = self._claim(flow_uuid)
        self._ensure_dir(self.claim_path)
        for _ in range(_ATTEMPTS):
            try:
                with self._transaction() as txn:
                    if must_exist and not self._exists(self._flow(flow_uuid)):
                        raise NotFound(f"no flow detail {flow_uuid} to claim")
                    current, revision = self._stored_claim(path)
                    new = decide(current, self._clock())
                    if new is current:
                        return current
                    # The conditional write guards the delete too.
                    record = claims.claim_record(new if new is not None else current)
                    self._write(path, record, txn, create=True, expected_revision=revision)
                    if new is None:
                        self._delete(path, txn)
                return new
            except Conflict:
                continue  # another owner changed the claim meanwhile: decide again
        raise StorageFailure(f"the claim on flow detail {flow_uuid} kept changing "
                             f"({_ATTEMPTS} attempts)")

    # -- the Connection API ----------------------------------------------
    def claim_flow(self, flow_uuid: str, owner: str, ttl: float = claims.DEFAULT_TTL) -> Claim:
        ttl = claims.check_claim(flow_uuid, owner, ttl)
        return self._change_claim(
            flow_uuid, lambda cur, now: claims.claimed(cur, flow_uuid, owner, ttl, now),
            must_exist=True)

    def renew_claim(self, flow_uuid: str, owner: str, ttl: float | None = None) -> Claim:
        ttl = claims.check_claim(flow_uuid, owner, ttl)
        return self._change_claim(
            flow_uuid, lambda cur, now: claims.renewed(cur, flow_uuid, owner, ttl, now),
            must_exist=False)

    def release_flow(self, flow_uuid: str, owner: str) -> None:
        claims.check_claim(flow_uuid, owner)

        def decide(current: Claim | None, now: float) -> Claim | None:
            if current is None:
                return current
            if current.owner != owner:
                raise claims.not_owner(flow_uuid, owner, current, "release")
            return None

        self._change_claim(flow_uuid, decide, must_exist=False)

    def get_claim(self, flow_uuid: str) -> Claim | None:
        path = self._claim(flow_uuid)
        current, _ = self._stored_claim(path)
        if current is None or self._clock() >= current.expires_at:
            return None
        return current
