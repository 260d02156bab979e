"""The history of writes in SQL: rows inserted by the write they record.

A save inserts its entries with one executemany INSERT in its transaction;
the single-atom hot path uses an ``INSERT … SELECT`` from the row it just
updated (which knows the atom's flow), and on PostgreSQL one statement that
does both (the UPDATE in a CTE).  Reads are one indexed query.
"""

from __future__ import annotations

import datetime
from typing import Any

import sqlalchemy as sa

from ...models import history
from ...models import records as models
from ...models.bookkeeping import bookkeeping
from .. import shared as lifecycle
from . import rawpath
from .session import Session
from .statements import ATOMS
from .tables import atomdetails
from .tables import history as history_table
from .types import ID
from .writes import RowWrite

__all__ = ["SQLHistory", "INSERT_HISTORY", "HISTORY_FROM_ATOM", "UPDATE_LOGGED_PG",
           "UPDATE_RELAXED_PG", "UPDATE_LOGGED_RELAXED_PG", "entry_params"]

_H = history_table.c
_COLUMNS = ("uuid", "kind", "name", "flow_uuid", "old_state", "new_state", "intention",
            "revision", "at_ns", "owner", "event")

#: One history row per parameter set (``h_<column>``).
INSERT_HISTORY = sa.insert(history_table).values(
    {name: sa.bindparam(f"h_{name}") for name in _COLUMNS})
#: The history row of an atom row just updated (its flow, state, intention and
#: revision read from the row); binds ``v_uuid``, ``h_old_state``, ``h_at_ns``,
#: ``h_owner`` and ``h_event``.
HISTORY_FROM_ATOM = sa.insert(history_table).from_select(list(_COLUMNS), sa.select(
    atomdetails.c.uuid, sa.literal_column("'atom'"), atomdetails.c.name,
    atomdetails.c.parent_uuid, sa.bindparam("h_old_state", type_=ID), atomdetails.c.state,
    atomdetails.c.intention, atomdetails.c.revision,
    sa.bindparam("h_at_ns", type_=sa.BigInteger), sa.bindparam("h_owner", type_=ID),
    sa.bindparam("h_event", type_=sa.String(16)),
).where(atomdetails.c.uuid == sa.bindparam("v_uuid")))


def logged_update_pg(update: sa.Update) -> sa.Insert:
    """PostgreSQL: the hot-path ``update`` and its history row in one statement (one
    round trip): the UPDATE in a CTE, RETURNING what the history row needs."""
    updated = update.returning(
        atomdetails.c.uuid, atomdetails.c.name, atomdetails.c.parent_uuid,
        atomdetails.c.state, atomdetails.c.intention, atomdetails.c.revision).cte("updated")
    return sa.insert(history_table).from_select(list(_COLUMNS), sa.select(
        updated.c.uuid, sa.literal_column("'atom'"), updated.c.name, updated.c.parent_uuid,
        sa.bindparam("h_old_state", type_=ID), updated.c.state, updated.c.intention,
        updated.c.revision, sa.bindparam("h_at_ns", type_=sa.BigInteger),
        sa.bindparam("h_owner", type_=ID), sa.bindparam("h_event", type_=sa.String(16))))


#: PostgreSQL: a condition that is always true and makes the statement's own
#: transaction commit without waiting for its WAL flush (``set_config`` with
#: ``is_local``: ``SET LOCAL synchronous_commit = off``, in the same round trip).
#: The WAL is flushed in order: the next synchronous commit makes it durable.
RELAXED_COMMIT_PG = sa.text("(SELECT set_config('synchronous_commit', 'off', true)) IS NOT NULL")
UPDATE_LOGGED_PG = logged_update_pg(ATOMS.update_keep_parent)
#: The hot-path UPDATE, and with its history row, committing without waiting for the disk.
UPDATE_RELAXED_PG = ATOMS.update_keep_parent.where(RELAXED_COMMIT_PG)
UPDATE_LOGGED_RELAXED_PG = logged_update_pg(UPDATE_RELAXED_PG)

_SELECT_HISTORY = sa.select(*(_H[name] for name in _COLUMNS))
_FLOW_OF_ATOM = sa.select(atomdetails.c.parent_uuid).where(
    atomdetails.c.uuid == sa.bindparam("uuid")).scalar_subquery()


def _old_state(detail: models._Record, ours: bool) -> str | None:
    return bookkeeping(detail).stored_state if ours else None


def entry_params(detail: models._Record, kind: str, flow_uuid: str, revision: int | None,
                 old_state: str | None, owner: str | None,
                 event: str = history.WRITE) -> dict[str, Any]:
    return {"h_uuid": detail.uuid, "h_kind": kind, "h_name": detail.name,
            "h_flow_uuid": flow_uuid, "h_old_state": old_state, "h_new_state": detail.state,
            "h_intention": getattr(detail, "intention", None) if kind == history.ATOM
            else None, "h_revision": revision, "h_at_ns": history.now_ns(),
            "h_owner": owner, "h_event": event}


def _entry(row: Any) -> history.HistoryEntry:
    (uuid, kind, name, flow_uuid, old, new, intention, revision, at_ns, owner, event) = row
    return history.HistoryEntry(uuid=uuid, kind=kind, name=name, flow_uuid=flow_uuid,
                                old_state=old, new_state=new, intention=intention,
                                revision=revision, at=history.from_ns(at_ns), owner=owner,
                                event=event)


class SQLHistory:
    """Mixin of :class:`~persistence.backends.sql.connection.SQLConnection`: history."""

    _session: Session
    _backend: Any
    owner: str | None

    # -- history written with the records -------------------------------------------
    def _log_rows(self, conn: sa.Connection, rows: list[tuple[RowWrite, str, str, bool]],
                  event: str = history.WRITE) -> None:
        """Insert the history rows of ``rows``: (row written, kind, flow uuid, was ours)."""
        if not rows or not self._backend.history:
            return
        owner = self.owner
        params = [entry_params(r.detail, kind, flow, r.revision, _old_state(r.detail, ours),
                               owner, event) for r, kind, flow, ours in rows]
        rawpath.executemany(self._session, conn, INSERT_HISTORY, params)

    def _atom_log(self, atom_detail: models.AtomDetail, ours: bool) -> dict[str, Any]:
        """Parameters of :data:`HISTORY_FROM_ATOM` for a write of ``atom_detail``."""
        return {"v_uuid": atom_detail.uuid, "h_old_state": _old_state(atom_detail, ours),
                "h_at_ns": history.now_ns(), "h_owner": self.owner,
                "h_event": history.WRITE}

    # -- history ----------------------------------------------------------------------
    def get_history(self, uuid: str | None = None, flow_uuid: str | None = None,
                    since: datetime.datetime | None = None,
                    limit: int | None = None) -> list[history.HistoryEntry]:
        limit, _ = lifecycle.check_page(limit, None)
        since = lifecycle.utc(since, "since")
        query, params = _SELECT_HISTORY, {}
        if flow_uuid is not None:
            query = query.where(_H.flow_uuid == sa.bindparam("flow"))
            params["flow"] = flow_uuid
        if uuid is not None:
            query = query.where(_H.uuid == sa.bindparam("uuid"))
            params["uuid"] = uuid
            if flow_uuid is None:   # through the flow index: the record's own flow
                query = query.where(_H.flow_uuid == sa.func.coalesce(
                    _FLOW_OF_ATOM, sa.bindparam("uuid")))
        if since is not None:
            query = query.where(_H.at_ns >= history.to_ns(since))
        query = query.order_by(_H.id)
        if limit is not None:
            query = query.limit(limit)

        def body(conn: sa.Connection) -> list[history.HistoryEntry]:
            return [_entry(row) for row in conn.execute(query, params)]
        return self._session.read("read history", body, consistent=False)
