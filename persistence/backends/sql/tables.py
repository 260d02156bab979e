"""The schema at the head migration, used to build statements.

``logbooks`` ⊃ ``flowdetails`` ⊃ ``atomdetails`` ⊃ ``atomdetail_chunks``,
each child pointing at its parent with ``ON DELETE CASCADE`` and an index on
the pointer.  Besides the columns TaskFlow's schema has, every record row has
``revision`` (grows by one per write; the optimistic-concurrency check) and
``txn`` (the id of the transaction that last wrote it, which tells a retry
whether a commit whose answer was lost went through).  Atom values too large
to send inline (MySQL's packet limit) live in ``atomdetail_chunks``; the atom
row's ``chunked`` column lists which of its fields are there.  ``flowclaims``
holds at most one claim per flow detail (see ``claims.py``); its times are
seconds since the epoch by the database server's clock.

Migrations never import this module: ``test_sql_migrations`` checks that it
matches what they build.
"""

from __future__ import annotations

import sqlalchemy as sa

from .types import BLOB, ID, NAME, TEXT, UTCDateTime

__all__ = ["metadata", "logbooks", "flowdetails", "atomdetails", "chunks", "history",
           "snapshots", "snapshot_chunks", "claims",
           "VERSION_TABLE", "MYSQL_TABLE_ARGS"]

#: Alembic's version table; not ``alembic_version``, which an application
#: sharing the database may use for its own migrations.
VERSION_TABLE = "persistence_alembic_version"
#: Binary collation: uuids are compared exactly, as on the other databases.
MYSQL_TABLE_ARGS = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4",
                    "mysql_collate": "utf8mb4_bin"}

metadata = sa.MetaData()


def _record_columns() -> list[sa.Column]:
    return [
        sa.Column("uuid", ID, primary_key=True),
        sa.Column("name", NAME),
        sa.Column("meta", TEXT),
        sa.Column("created_at", UTCDateTime()),
        sa.Column("updated_at", UTCDateTime()),
        sa.Column("revision", sa.Integer, nullable=False, server_default="1"),
        sa.Column("txn", sa.String(40)),
    ]


logbooks = sa.Table("logbooks", metadata, *_record_columns(), **MYSQL_TABLE_ARGS)

flowdetails = sa.Table(
    "flowdetails", metadata, *_record_columns(),
    sa.Column("state", ID),
    sa.Column("parent_uuid", ID,
              sa.ForeignKey("logbooks.uuid", ondelete="CASCADE",
                            name="flowdetails_parent_uuid_fkey"),
              nullable=False),
    sa.Index("ix_flowdetails_parent_uuid", "parent_uuid"),
    **MYSQL_TABLE_ARGS)

atomdetails = sa.Table(
    "atomdetails", metadata, *_record_columns(),
    sa.Column("atom_type", ID),
    sa.Column("state", ID),
    sa.Column("intention", ID),
    sa.Column("results", TEXT),
    sa.Column("failure", TEXT),
    sa.Column("revert_results", TEXT),
    sa.Column("revert_failure", TEXT),
    sa.Column("version", TEXT),
    sa.Column("chunked", sa.String(255)),
    sa.Column("parent_uuid", ID,
              sa.ForeignKey("flowdetails.uuid", ondelete="CASCADE",
                            name="atomdetails_parent_uuid_fkey"),
              nullable=False),
    sa.Index("ix_atomdetails_parent_uuid", "parent_uuid"),
    **MYSQL_TABLE_ARGS)

chunks = sa.Table(
    "atomdetail_chunks", metadata,
    sa.Column("atom_uuid", ID,
              sa.ForeignKey("atomdetails.uuid", ondelete="CASCADE",
                            name="atomdetail_chunks_atom_uuid_fkey"),
              primary_key=True),
    sa.Column("field", sa.String(32), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("data", BLOB, nullable=False),
    **MYSQL_TABLE_ARGS)

claims = sa.Table(
    "flowclaims", metadata,
    sa.Column("flow_uuid", ID,
              sa.ForeignKey("flowdetails.uuid", ondelete="CASCADE",
                            name="flowclaims_flow_uuid_fkey"),
              primary_key=True),
    sa.Column("owner", ID, nullable=False),
    sa.Column("ttl", sa.Double, nullable=False),
    sa.Column("expires_at", sa.Double, nullable=False),
    sa.Column("claimed_at", sa.Double, nullable=False),
    sa.Column("taken_over_from", ID),
    sa.Column("taken_over_at", sa.Double),
    **MYSQL_TABLE_ARGS)

# -- history and snapshots (migration 0004) ---------------------------------------
# Newest-first listings, state filters and purge's cutoff read these indexes.
sa.Index("ix_logbooks_updated_at", logbooks.c.updated_at)
sa.Index("ix_flowdetails_updated_at", flowdetails.c.updated_at)
sa.Index("ix_flowdetails_state", flowdetails.c.state)

#: One row per write of a flow or atom detail, inserted in the write's transaction;
#: ``id`` orders them.  Rows go with their flow (ON DELETE CASCADE).
history = sa.Table(
    "history", metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("uuid", ID, nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("name", NAME),
    sa.Column("flow_uuid", ID,
              sa.ForeignKey("flowdetails.uuid", ondelete="CASCADE",
                            name="history_flow_uuid_fkey"),
              nullable=False),
    sa.Column("old_state", ID),
    sa.Column("new_state", ID),
    sa.Column("intention", ID),
    sa.Column("revision", sa.Integer),
    sa.Column("at_ns", sa.BigInteger, nullable=False),
    sa.Column("owner", ID),
    sa.Column("event", sa.String(16), nullable=False),
    sa.Index("ix_history_flow_uuid_id", "flow_uuid", "id"),
    **MYSQL_TABLE_ARGS)

#: Immutable copies of a flow detail; the JSON document lives in ``snapshot_chunks``.
snapshots = sa.Table(
    "snapshots", metadata,
    sa.Column("id", sa.String(255), primary_key=True),
    sa.Column("flow_uuid", ID,
              sa.ForeignKey("flowdetails.uuid", ondelete="CASCADE",
                            name="snapshots_flow_uuid_fkey"),
              nullable=False),
    sa.Column("label", NAME),
    sa.Column("created_ns", sa.BigInteger, nullable=False),
    sa.Column("atoms", sa.Integer, nullable=False),
    sa.Index("ix_snapshots_flow_uuid", "flow_uuid"),
    **MYSQL_TABLE_ARGS)

snapshot_chunks = sa.Table(
    "snapshot_chunks", metadata,
    sa.Column("snapshot_id", sa.String(255),
              sa.ForeignKey("snapshots.id", ondelete="CASCADE",
                            name="snapshot_chunks_snapshot_id_fkey"),
              primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("data", BLOB, nullable=False),
    **MYSQL_TABLE_ARGS)
