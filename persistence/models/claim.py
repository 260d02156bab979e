"""Flow ownership: which engine may run a flow detail now, and until when.

A *claim* on a flow detail names one owner (any string an engine picks: a
host name plus pid, a worker id) and lasts ``ttl`` seconds unless renewed.
At most one live claim exists per flow detail.  When a claim expires (its
owner died or hung) another owner may take the flow over; the new claim
then records whom it took over from (:attr:`Claim.taken_over_from`).

Expiry is judged by the store's own clock where the store has one (the SQL
server's, ZooKeeper's), so hosts with skewed clocks agree; the ``memory`` and
``dir`` backends, which live on one machine, use that machine's clock.

Every backend implements ``Connection.claim_flow`` / ``renew_claim`` /
``release_flow`` / ``get_claim``; :class:`persistence.Storage` uses them when
given an ``owner`` (see ``doc/resuming.rst``).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
from typing import Any

from ..exceptions import NotOwner, SerializationError

__all__ = ["Claim", "check_claim", "check_owner", "claimed", "renewed", "claim_record",
           "load_claim", "not_owner",
           "DEFAULT_TTL", "MAX_OWNER_LENGTH", "MAX_TTL"]

#: Seconds a claim lasts when no ttl is given.
DEFAULT_TTL = 30.0

#: Owners are stored in columns of this size.
MAX_OWNER_LENGTH = 255
#: Longest claim (seconds): a week; an engine renews far more often than that.
MAX_TTL = 7 * 24 * 3600.0



def _time(seconds: float | None) -> datetime.datetime | None:
    if seconds is None:
        return None
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)


@dataclasses.dataclass(frozen=True)
class Claim:
    """A live claim on a flow detail, as the store holds it.

    Times are seconds since the epoch by the store's clock (``expires``,
    ``claimed``, ``taken_over`` give them as UTC datetimes).
    """

    flow_uuid: str
    owner: str
    ttl: float
    expires_at: float
    claimed_at: float
    #: The owner whose expired claim this one replaced (None: nobody's).
    taken_over_from: str | None = None
    taken_over_at: float | None = None

    @property
    def expires(self) -> datetime.datetime:
        return _time(self.expires_at)

    @property
    def claimed(self) -> datetime.datetime:
        return _time(self.claimed_at)

    @property
    def taken_over(self) -> datetime.datetime | None:
        return _time(self.taken_over_at)

    def describe(self) -> str:
        text = f"owned by {self.owner!r} until {self.expires.isoformat(timespec='milliseconds')}"
        if self.taken_over_from is not None:
            text += f" (taken over from {self.taken_over_from!r})"
        return text


def check_owner(owner: Any) -> str:
    """``owner`` if it is a usable owner name; TypeError/ValueError saying why if not."""
    if not isinstance(owner, str):
        raise TypeError(f"a claim owner must be a string, not {type(owner).__name__}")
    if not owner or len(owner) > MAX_OWNER_LENGTH or "\x00" in owner:
        raise ValueError(f"a claim owner must be 1 to {MAX_OWNER_LENGTH} characters without "
                         f"NUL, not {owner!r}")
    return owner


def check_claim(flow_uuid: Any, owner: Any, ttl: Any = None) -> float | None:
    """Validate the arguments of a claim call before any I/O; return ``ttl`` as a float."""
    if not isinstance(flow_uuid, str) or not flow_uuid:
        raise ValueError(f"flow detail uuid must be a non-empty string, not {flow_uuid!r}")
    check_owner(owner)
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)):
        raise TypeError(f"a claim ttl must be a number of seconds, not {type(ttl).__name__}")
    if not (math.isfinite(ttl) and 0 < ttl <= MAX_TTL):
        raise ValueError(f"a claim ttl must be > 0 and at most {MAX_TTL:g} seconds, not {ttl!r}")
    return float(ttl)


def not_owner(flow_uuid: str, owner: str, holder: Claim | None, doing: str) -> NotOwner:
    """The NotOwner error for ``owner`` failing to ``doing`` the claim of a flow."""
    if holder is None:
        why = "nobody holds it (it was released, or expired and was never renewed)"
    else:
        why = f"it is {holder.describe()}"
    return NotOwner(f"{owner!r} cannot {doing} the claim on flow detail {flow_uuid}: {why}")


def claimed(current: Claim | None, flow_uuid: str, owner: str, ttl: float,
            now: float) -> Claim:
    """The claim ``owner`` gets at ``now`` given the ``current`` one; NotOwner if it is
    someone else's and still live.  Taking over an expired claim is recorded."""
    if current is not None and current.owner == owner:
        return dataclasses.replace(current, ttl=ttl, expires_at=now + ttl)
    if current is not None and now < current.expires_at:
        raise not_owner(flow_uuid, owner, current, "take")
    previous = current.owner if current is not None else None
    return Claim(flow_uuid, owner, ttl, now + ttl, now, previous,
                 now if previous is not None else None)


def renewed(current: Claim | None, flow_uuid: str, owner: str, ttl: float | None,
            now: float) -> Claim:
    """``owner``'s claim extended to ``now + ttl``; NotOwner unless ``owner`` holds it
    (an expired claim nobody took over is still its owner's)."""
    if current is None or current.owner != owner:
        raise not_owner(flow_uuid, owner, current, "renew")
    ttl = current.ttl if ttl is None else ttl
    return dataclasses.replace(current, ttl=ttl, expires_at=now + ttl)


def claim_record(claim: Claim) -> bytes:
    """A claim as stored by the path-based backends (JSON)."""
    return json.dumps(dataclasses.asdict(claim), separators=(",", ":")).encode("utf-8")


def load_claim(data: bytes, where: str) -> Claim:
    """The claim stored in ``data``; SerializationError naming ``where`` if it is damaged."""
    try:
        fields = json.loads(data)
        return Claim(**fields)
    except (ValueError, TypeError) as err:
        raise SerializationError(f"claim record {where} is corrupt: {err}") from err
