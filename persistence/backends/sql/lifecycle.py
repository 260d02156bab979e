"""Summaries, counts, listings and purge of the SQL backend, in SQL.

Listings and counts are single queries on indexed columns that never read
atom rows; a summary groups the flow's atom rows in the database.  Purge
deletes at most ``batch_size`` logbooks per transaction (children cascade).
History is in :mod:`.history`; snapshots, restores and forks in :mod:`.snapshots`.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from ...exceptions import NotFound
from ...models import records as models
from ...models import states
from .. import shared as lifecycle
from ..shared import check_component
from .session import Session
from .statements import BOOK_COLUMNS, FLOW_COLUMNS
from .tables import atomdetails, flowdetails, logbooks

__all__ = ["SQLLifecycle"]

_BOOK_COLS = [logbooks.c[name] for name in BOOK_COLUMNS]
_FLOW_COLS = [flowdetails.c[name] for name in FLOW_COLUMNS]
_HAS_FAILURE = sa.case((sa.or_(atomdetails.c.failure.is_not(None),
                               atomdetails.c.revert_failure.is_not(None),
                               atomdetails.c.chunked.like("%failure%")), 1), else_=0)


class SQLLifecycle:
    """Mixin of :class:`~persistence.backends.sql.connection.SQLConnection`: summaries,
    counts, listings and purge."""

    _session: Session

    # -- summaries and counts ----------------------------------------------------------
    def summary(self, flow_uuid: str) -> lifecycle.FlowSummary:
        check_component("flow detail uuid", flow_uuid)
        flow = sa.select(flowdetails.c.name, flowdetails.c.state, flowdetails.c.updated_at) \
            .where(flowdetails.c.uuid == flow_uuid)
        groups = (sa.select(atomdetails.c.state, sa.func.count(), sa.func.sum(_HAS_FAILURE),
                            sa.func.max(atomdetails.c.updated_at))
                  .where(atomdetails.c.parent_uuid == flow_uuid)
                  .group_by(atomdetails.c.state))

        def body(conn: sa.Connection) -> lifecycle.FlowSummary:
            head = conn.execute(flow).first()
            if head is None:
                raise NotFound(f"no flow detail {flow_uuid}")
            name, state, last = head
            by_state: dict[str, int] = {}
            failures = 0
            for atom_state, count, failed, changed in conn.execute(groups):
                key = atom_state or states.PENDING
                by_state[key] = by_state.get(key, 0) + count
                failures += int(failed or 0)
                if changed is not None and (last is None or changed > last):
                    last = changed
            return lifecycle.FlowSummary(flow_uuid, name, state, sum(by_state.values()),
                                         by_state, failures, last)
        return self._session.read(f"summarize flow detail {flow_uuid}", body)

    def count_atoms(self, flow_uuid: str, states: str | Iterable[str] | None = None) -> int:
        check_component("flow detail uuid", flow_uuid)
        wanted = lifecycle.check_states(states, _ATOM_STATES, "atom state")
        count = sa.select(sa.func.count()).where(atomdetails.c.parent_uuid == flow_uuid)
        if wanted is not None:
            count = count.where(sa.func.coalesce(atomdetails.c.state, "PENDING").in_(wanted))
        query = sa.select(count.scalar_subquery()).where(flowdetails.c.uuid == flow_uuid)

        def body(conn: sa.Connection) -> int:
            row = conn.execute(query).first()
            if row is None:
                raise NotFound(f"no flow detail {flow_uuid}")
            return row[0]
        return self._session.read(f"count the atoms of flow detail {flow_uuid}", body,
                                  consistent=False)

    # -- listings --------------------------------------------------------------------------
    @staticmethod
    def _book_filters(query: sa.Select, name: str | None, since: Any, before: Any) -> sa.Select:
        since = lifecycle.utc(since, "updated_since")
        before = lifecycle.utc(before, "updated_before")
        if name is not None:
            query = query.where(logbooks.c.name == name)
        if since is not None:
            query = query.where(logbooks.c.updated_at >= since)
        if before is not None:
            query = query.where(logbooks.c.updated_at < before)
        return query

    def list_logbooks(self, name: str | None = None,
                      updated_since: datetime.datetime | None = None,
                      updated_before: datetime.datetime | None = None,
                      limit: int | None = None, offset: int | None = None
                      ) -> list[models.LogBook]:
        limit, offset = lifecycle.check_page(limit, offset)
        query = self._book_filters(sa.select(*_BOOK_COLS), name, updated_since, updated_before)
        query = query.order_by(logbooks.c.updated_at.desc(), logbooks.c.uuid.desc())
        query = query.limit(limit).offset(offset or None)

        def body(conn: sa.Connection) -> list[models.LogBook]:
            return [self._book(row) for row in conn.execute(query)]
        return self._session.read("list logbooks", body, consistent=False)

    def count_logbooks(self, name: str | None = None,
                       updated_since: datetime.datetime | None = None,
                       updated_before: datetime.datetime | None = None) -> int:
        query = self._book_filters(sa.select(sa.func.count()).select_from(logbooks), name,
                                   updated_since, updated_before)
        return self._session.read("count logbooks",
                                  lambda conn: conn.execute(query).scalar(), consistent=False)

    def list_flow_details(self, state: str | Iterable[str] | None = None,
                          logbook: str | None = None, limit: int | None = None,
                          offset: int | None = None) -> list[models.FlowDetail]:
        limit, offset = lifecycle.check_page(limit, offset)
        wanted = lifecycle.check_states(state, _FLOW_STATES, "flow state")
        query = sa.select(*_FLOW_COLS)
        if wanted is not None:
            query = query.where(flowdetails.c.state.in_(wanted))
        if logbook is not None:
            check_component("logbook uuid", logbook)
            query = query.where(flowdetails.c.parent_uuid == logbook)
        query = (query.order_by(flowdetails.c.updated_at.desc(), flowdetails.c.uuid.desc())
                 .limit(limit).offset(offset or None))
        book_exists = sa.select(logbooks.c.uuid).where(logbooks.c.uuid == logbook)

        def body(conn: sa.Connection) -> list[models.FlowDetail]:
            if logbook is not None and conn.execute(book_exists).first() is None:
                raise NotFound(f"no logbook {logbook}")
            return self._flows(conn.execute(query).all())
        return self._session.read("list flow details", body, consistent=logbook is not None)

    # -- retention -------------------------------------------------------------------------
    # Primitives of lifecycle.purge in SQL: what qualifies is one WHERE clause.
    def _purge_candidates(self, cutoff: datetime.datetime,
                          wanted: tuple[str, ...]) -> list[str]:
        query = (sa.select(logbooks.c.uuid).where(_purge_eligible(cutoff, wanted))
                 .order_by(logbooks.c.updated_at, logbooks.c.uuid))
        return self._session.read("find the logbooks to purge",
                                  lambda conn: list(conn.execute(query).scalars()),
                                  consistent=False)

    def _purge_batch(self, book_uuids: list[str], cutoff: datetime.datetime,
                     wanted: tuple[str, ...], dry_run: bool) -> list[tuple[str, int, int]]:
        eligible = _purge_eligible(cutoff, wanted)
        uuids = sa.bindparam("uuids", expanding=True)
        still = sa.select(logbooks.c.uuid).where(logbooks.c.uuid.in_(uuids), eligible)
        counts = (sa.select(flowdetails.c.parent_uuid,
                            sa.func.count(sa.distinct(flowdetails.c.uuid)),
                            sa.func.count(atomdetails.c.uuid))
                  .outerjoin(atomdetails, atomdetails.c.parent_uuid == flowdetails.c.uuid)
                  .where(flowdetails.c.parent_uuid.in_(uuids))
                  .group_by(flowdetails.c.parent_uuid))
        delete = sa.delete(logbooks).where(logbooks.c.uuid.in_(uuids), eligible)
        left = sa.select(logbooks.c.uuid).where(logbooks.c.uuid.in_(uuids))

        def op(conn: sa.Connection) -> tuple[list[str], dict[str, tuple[int, int]]]:
            if not dry_run:
                self._session.begin_write(conn)
            try:
                found = list(conn.execute(still, {"uuids": book_uuids}).scalars())
                sizes = {book: (flows, atoms) for book, flows, atoms in
                         conn.execute(counts, {"uuids": found})} if found else {}
                if found and not dry_run:
                    conn.execute(delete, {"uuids": found})
                    kept = set(conn.execute(left, {"uuids": found}).scalars())
                    found = [uuid for uuid in found if uuid not in kept]
            except BaseException:
                self._session.rollback()
                raise
            if dry_run:
                conn.rollback()
            else:
                conn.commit()
            return found, sizes

        found, sizes = self._session.run("purge logbooks", op)
        order = {uuid: i for i, uuid in enumerate(book_uuids)}
        return [(uuid, *sizes.get(uuid, (0, 0))) for uuid in sorted(found, key=order.get)]


def _purge_eligible(cutoff: datetime.datetime, wanted: tuple[str, ...]) -> Any:
    """Logbooks saved before ``cutoff`` whose flow details are all in ``wanted`` and
    last written before it."""
    unfinished = sa.select(flowdetails.c.uuid).where(
        flowdetails.c.parent_uuid == logbooks.c.uuid,
        sa.or_(flowdetails.c.state.is_(None), flowdetails.c.state.not_in(wanted),
               flowdetails.c.updated_at >= cutoff))
    return sa.and_(logbooks.c.updated_at < cutoff, ~sa.exists(unfinished))


_ATOM_STATES = states.ATOM_STATES
_FLOW_STATES = states.FLOW_STATES

