"""Flow claims as ephemeral znodes: a dead engine's claim vanishes with its session.

``<root>/claims/<flow_uuid>`` is an ephemeral znode created by the owner's
session; its data names the owner, the ttl and any takeover.  A claim
expires ``ttl`` seconds after its last write *by the server's clock* (the
znode's ``mtime``), so an owner that is alive but stuck loses it too; the
server's current time is read by touching ``<root>/claims`` (its new
``mtime``).  Taking over deletes the old znode (at the version read) and
creates the new one in one transaction, also checking that the flow detail
exists, so two engines racing for a flow cannot both win.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError, RolledBackError
from kazoo.protocol import serialization as proto
from kazoo.protocol.states import ZnodeStat
from kazoo.security import OPEN_ACL_UNSAFE

from ...exceptions import NotFound, SerializationError, StorageFailure
from ...models import claim as claims
from ...models.claim import Claim
from .host import ZkHost

__all__ = ["ZkClaims"]

_ATTEMPTS = 8
_EPHEMERAL = 1  # CreateMode.EPHEMERAL as the protocol sends it
_RACES = (BadVersionError, NodeExistsError, NoNodeError)


def _session(client: Any) -> int | None:
    """The id of the client's current session (None while it has none)."""
    client_id = client.client_id
    return client_id[0] if client_id else None


class ZkClaims:
    """Mixin of :class:`~.connection.ZkConnection`: the claim API over ephemeral znodes."""

    backend: ZkHost
    claim_path: str
    _claim: Any
    _flow: Any

    # -- requests ----------------------------------------------------------
    def _call(self, what: str, send: Any) -> Any:
        return self.backend.call(what, send)

    def _server_now(self) -> float:
        """The server's clock, in seconds since the epoch (touches ``claims/``)."""
        client = self.backend.client
        path = self.claim_path
        try:
            stat = self._call(f"read the time at {path}", lambda: client.set_async(path, b""))
        except NoNodeError:
            self._call(f"create {path}", lambda: client.ensure_path_async(path))
            stat = self._call(f"read the time at {path}", lambda: client.set_async(path, b""))
        return stat.mtime / 1000.0

    def _read_claim(self, flow_uuid: str) -> tuple[Claim, ZnodeStat] | None:
        client = self.backend.client
        path = self._claim(flow_uuid)
        try:
            data, stat = self._call(f"read {path}", lambda: client.get_async(path))
        except NoNodeError:
            return None
        try:
            fields = json.loads(data)
            claim = Claim(flow_uuid, fields["owner"], fields["ttl"],
                          stat.mtime / 1000.0 + fields["ttl"], fields["claimed_at"],
                          fields.get("taken_over_from"), fields.get("taken_over_at"))
        except (ValueError, TypeError, KeyError) as err:
            raise SerializationError(f"claim znode {path} is corrupt: {err}") from err
        return claim, stat

    def _multi(self, what: str, ops: list[Any]) -> list[Any]:
        """Send one transaction; its per-operation results (exceptions where refused)."""
        client = self.backend.client
        request = proto.Transaction(ops)

        def send() -> Any:
            result = client.handler.async_result()
            client._call(request, result)
            return result

        return self._call(what, send)

    @staticmethod
    def _data(claim: Claim) -> bytes:
        return json.dumps({"owner": claim.owner, "ttl": claim.ttl,
                           "claimed_at": claim.claimed_at,
                           "taken_over_from": claim.taken_over_from,
                           "taken_over_at": claim.taken_over_at}).encode("utf-8")

    # -- the Connection API ------------------------------------------------
    def claim_flow(self, flow_uuid: str, owner: str, ttl: float = claims.DEFAULT_TTL) -> Claim:
        ttl = claims.check_claim(flow_uuid, owner, ttl)
        client = self.backend.client
        root = client.chroot or ""
        acl = client.default_acl or OPEN_ACL_UNSAFE
        path, flow_path = self._claim(flow_uuid), self._flow(flow_uuid)
        for _ in range(_ATTEMPTS):
            now = self._server_now()
            stored = self._read_claim(flow_uuid)
            current, stat = stored if stored is not None else (None, None)
            new = claims.claimed(current, flow_uuid, owner, ttl, now)
            if stat is not None and stat.ephemeralOwner == _session(client):
                done = self._set(path, new, stat.version)   # our own session's znode
                if done is not None:
                    return done
                continue
            ops = [proto.CheckVersion(root + flow_path, -1)]
            if stat is not None:
                ops.append(proto.Delete(root + path, stat.version))
            ops.append(proto.Create(root + path, self._data(new), acl, _EPHEMERAL))
            results = self._multi(f"claim flow detail {flow_uuid}", ops)
            failed = [r for r in results
                      if isinstance(r, Exception) and not isinstance(r, RolledBackError)]
            if not failed:
                return new
            if isinstance(results[0], NoNodeError):
                raise NotFound(f"no flow detail {flow_uuid} to claim")
            if not isinstance(failed[0], _RACES):
                raise StorageFailure(f"ZooKeeper refused to claim flow detail {flow_uuid}: "
                                     f"{type(failed[0]).__name__}") from failed[0]
        raise StorageFailure(f"the claim on flow detail {flow_uuid} kept changing "
                             f"({_ATTEMPTS} attempts)")

    def _set(self, path: str, claim: Claim, version: int) -> Claim | None:
        """Rewrite our claim znode at ``version``: the claim as stored (expiring
        ``ttl`` after this write, by the server's clock); None if it changed meanwhile."""
        client = self.backend.client
        try:
            stat = self._call(f"renew {path}",
                              lambda: client.set_async(path, self._data(claim), version))
        except (BadVersionError, NoNodeError):
            return None
        return dataclasses.replace(claim, expires_at=stat.mtime / 1000.0 + claim.ttl)

    def renew_claim(self, flow_uuid: str, owner: str, ttl: float | None = None) -> Claim:
        ttl = claims.check_claim(flow_uuid, owner, ttl)
        path = self._claim(flow_uuid)
        for _ in range(_ATTEMPTS):
            stored = self._read_claim(flow_uuid)
            current, stat = stored if stored is not None else (None, None)
            done = self._set(path, claims.renewed(current, flow_uuid, owner, ttl, 0.0),
                             stat.version)
            if done is not None:
                return done
        raise StorageFailure(f"the claim on flow detail {flow_uuid} kept changing "
                             f"({_ATTEMPTS} attempts)")

    def release_flow(self, flow_uuid: str, owner: str) -> None:
        claims.check_claim(flow_uuid, owner)
        client = self.backend.client
        path = self._claim(flow_uuid)
        for _ in range(_ATTEMPTS):
            stored = self._read_claim(flow_uuid)
            if stored is None:
                return
            current, stat = stored
            if current.owner != owner:
                raise claims.not_owner(flow_uuid, owner, current, "release")
            try:
                self._call(f"delete {path}",
                           lambda version=stat.version: client.delete_async(path, version))
                return
            except NoNodeError:
                return
            except BadVersionError:
                continue
        raise StorageFailure(f"the claim on flow detail {flow_uuid} kept changing "
                             f"({_ATTEMPTS} attempts)")

    def get_claim(self, flow_uuid: str) -> Claim | None:
        stored = self._read_claim(flow_uuid)
        if stored is None:
            return None
        now = self._server_now()
        return stored[0] if now < stored[0].expires_at else None
