"""Flow claims in the ``flowclaims`` table, decided by the database in one statement.

Claiming is one upsert: insert the claim, or, if the flow already has one,
overwrite it only when it is the same owner's or has expired — judged by the
database server's clock, so engines on hosts with skewed clocks agree.  The
statement's own row lock makes racing claimers take turns; the loser's
upsert changes nothing.  PostgreSQL and sqlite say in the same statement
whether it won (``RETURNING``); MySQL/MariaDB's upsert cannot, so the row is
read back in the same transaction.  Renewing and releasing are one
conditional UPDATE / DELETE on the owner.  Every statement is idempotent, so
the session's retries after a lost answer are safe.  A claim row goes away
with its flow detail (``ON DELETE CASCADE``).
"""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite

from ...exceptions import NotFound
from ...models import claim as claims
from ...models.claim import Claim
from ..shared import check_component
from .session import Session
from .tables import claims as table

__all__ = ["SQLClaims"]

_COLUMNS = (table.c.owner, table.c.ttl, table.c.expires_at, table.c.claimed_at,
            table.c.taken_over_from, table.c.taken_over_at)
# Not named after columns: SQLAlchemy reserves those names in INSERT/UPDATE.
_FLOW, _OWNER, _TTL = (sa.bindparam("p_flow", type_=sa.String),
                       sa.bindparam("p_owner", type_=sa.String),
                       sa.bindparam("p_ttl", type_=sa.Double))


def _now(dialect: str) -> sa.ColumnElement:
    """The server's clock in seconds since the epoch (constant within a statement)."""
    if dialect == "postgresql":
        return sa.cast(sa.extract("epoch", sa.func.now()), sa.Double)
    if dialect in ("mysql", "mariadb"):
        return sa.cast(sa.func.unix_timestamp(sa.func.now(6)), sa.Double)
    return (sa.func.julianday("now") - 2440587.5) * 86400.0


class _Statements:
    """The claim statements for one dialect."""

    def __init__(self, dialect: str) -> None:
        now = _now(dialect)
        t = table
        self.returning = dialect in ("postgresql", "sqlite")
        values = {"flow_uuid": _FLOW, "owner": _OWNER, "ttl": _TTL,
                  "expires_at": now + _TTL, "claimed_at": now,
                  "taken_over_from": None, "taken_over_at": None}
        if self.returning:
            insert = (postgresql if dialect == "postgresql" else sqlite).insert(t).values(values)
            new = insert.excluded
            same = t.c.owner == new.owner
            self.claim = insert.on_conflict_do_update(
                index_elements=[t.c.flow_uuid],
                set_={"owner": new.owner, "ttl": new.ttl, "expires_at": new.expires_at,
                      "claimed_at": sa.case((same, t.c.claimed_at), else_=new.claimed_at),
                      "taken_over_from": sa.case((same, t.c.taken_over_from), else_=t.c.owner),
                      "taken_over_at": sa.case((same, t.c.taken_over_at),
                                               else_=new.claimed_at)},
                where=sa.or_(same, t.c.expires_at <= new.claimed_at),
            ).returning(*_COLUMNS)
        else:
            insert = mysql.insert(t).values(values)
            new = insert.inserted
            takeover = sa.and_(t.c.owner != new.owner, t.c.expires_at <= new.claimed_at)
            # MySQL assigns left to right, each seeing the ones before: the columns
            # that need the old owner and expiry go first, the owner after them,
            # and the new expiry only if the owner is now this one.
            self.claim = insert.on_duplicate_key_update([
                ("taken_over_from", sa.case((takeover, t.c.owner), else_=t.c.taken_over_from)),
                ("taken_over_at", sa.case((takeover, new.claimed_at), else_=t.c.taken_over_at)),
                ("claimed_at", sa.case((takeover, new.claimed_at), else_=t.c.claimed_at)),
                ("owner", sa.case((sa.or_(t.c.owner == new.owner,
                                          t.c.expires_at <= new.claimed_at), new.owner),
                                  else_=t.c.owner)),
                ("ttl", sa.case((t.c.owner == new.owner, new.ttl), else_=t.c.ttl)),
                ("expires_at", sa.case((t.c.owner == new.owner, new.expires_at),
                                       else_=t.c.expires_at)),
            ])
        mine = sa.and_(t.c.flow_uuid == _FLOW, t.c.owner == _OWNER)
        renew = sa.update(t).where(mine)
        self.renew = renew.values(ttl=_TTL, expires_at=now + _TTL)
        self.renew_same_ttl = renew.values(expires_at=now + t.c.ttl)
        if self.returning:
            self.renew = self.renew.returning(*_COLUMNS)
            self.renew_same_ttl = self.renew_same_ttl.returning(*_COLUMNS)
        self.release = sa.delete(t).where(mine)
        self.get = sa.select(*_COLUMNS, now.label("now")).where(t.c.flow_uuid == _FLOW)


@functools.cache
def _statements(dialect: str) -> _Statements:
    return _Statements(dialect)


def _claim(flow_uuid: str, row: Any) -> Claim:
    owner, ttl, expires_at, claimed_at, taken_from, taken_at = row[:6]
    return Claim(flow_uuid, owner, float(ttl), float(expires_at), float(claimed_at),
                 taken_from, None if taken_at is None else float(taken_at))


class SQLClaims:
    """Mixin of :class:`~.connection.SQLConnection`: the claim API."""

    _session: Session

    @property
    def _claims(self) -> _Statements:
        return _statements(self._session.dialect.name)

    def _holder(self, conn: sa.Connection, flow_uuid: str,
                live_only: bool = False) -> Claim | None:
        row = conn.execute(self._claims.get, {"p_flow": flow_uuid}).first()
        if row is None or (live_only and row.expires_at <= row.now):
            return None
        return _claim(flow_uuid, row)

    def _run(self, what: str, body: Any) -> Any:
        def op(conn: sa.Connection) -> Any:
            try:
                result = body(conn)
            except BaseException:
                conn.rollback()
                raise
            conn.commit()
            return result
        return self._session.run(what, op)

    def claim_flow(self, flow_uuid: str, owner: str, ttl: float = claims.DEFAULT_TTL) -> Claim:
        ttl = claims.check_claim(flow_uuid, owner, ttl)
        check_component("flow detail uuid", flow_uuid)
        st = self._claims
        params = {"p_flow": flow_uuid, "p_owner": owner, "p_ttl": ttl}

        def body(conn: sa.Connection) -> Claim:
            try:
                result = conn.execute(st.claim, params)
            except sa.exc.IntegrityError:  # the foreign key: no such flow detail
                raise NotFound(f"no flow detail {flow_uuid} to claim") from None
            if st.returning:
                row = result.first()
            else:
                row = conn.execute(st.get, params).first()
                if row is not None and row.owner != owner:
                    row = None
            if row is None:
                raise claims.not_owner(flow_uuid, owner, self._holder(conn, flow_uuid), "take")
            return _claim(flow_uuid, row)

        return self._run(f"claim flow detail {flow_uuid}", body)

    def renew_claim(self, flow_uuid: str, owner: str, ttl: float | None = None) -> Claim:
        ttl = claims.check_claim(flow_uuid, owner, ttl)
        check_component("flow detail uuid", flow_uuid)
        st = self._claims
        statement = st.renew_same_ttl if ttl is None else st.renew
        params = {"p_flow": flow_uuid, "p_owner": owner, "p_ttl": ttl}

        def body(conn: sa.Connection) -> Claim:
            result = conn.execute(statement, params)
            row = result.first() if st.returning else (
                conn.execute(st.get, params).first() if result.rowcount else None)
            if row is None or row.owner != owner:
                raise claims.not_owner(flow_uuid, owner, self._holder(conn, flow_uuid),
                                       "renew")
            return _claim(flow_uuid, row)

        return self._run(f"renew the claim on flow detail {flow_uuid}", body)

    def release_flow(self, flow_uuid: str, owner: str) -> None:
        claims.check_claim(flow_uuid, owner)
        check_component("flow detail uuid", flow_uuid)
        st = self._claims

        def body(conn: sa.Connection) -> None:
            if conn.execute(st.release, {"p_flow": flow_uuid, "p_owner": owner}).rowcount:
                return
            holder = self._holder(conn, flow_uuid)
            if holder is not None:
                raise claims.not_owner(flow_uuid, owner, holder, "release")

        self._run(f"release the claim on flow detail {flow_uuid}", body)

    def get_claim(self, flow_uuid: str) -> Claim | None:
        check_component("flow detail uuid", flow_uuid)
        return self._session.read(f"read the claim on flow detail {flow_uuid}",
                                  lambda conn: self._holder(conn, flow_uuid, live_only=True),
                                  consistent=False)
