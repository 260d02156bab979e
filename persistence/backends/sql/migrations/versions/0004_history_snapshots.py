"""History of writes, snapshots of flow details, and the indexes listings and purge use.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from persistence.backends.sql.types import BLOB, ID, NAME

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}


def upgrade() -> None:
    # Books saved by older code may lack updated_at: listings order by it.
    op.execute("UPDATE logbooks SET updated_at = created_at WHERE updated_at IS NULL")
    op.create_index("ix_logbooks_updated_at", "logbooks", ["updated_at"])
    op.create_index("ix_flowdetails_updated_at", "flowdetails", ["updated_at"])
    op.create_index("ix_flowdetails_state", "flowdetails", ["state"])
    op.create_table(
        "history",
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
        **_MYSQL)
    op.create_index("ix_history_flow_uuid_id", "history", ["flow_uuid", "id"])
    op.create_table(
        "snapshots",
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("flow_uuid", ID,
                  sa.ForeignKey("flowdetails.uuid", ondelete="CASCADE",
                                name="snapshots_flow_uuid_fkey"),
                  nullable=False),
        sa.Column("label", NAME),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
        sa.Column("atoms", sa.Integer, nullable=False),
        **_MYSQL)
    op.create_index("ix_snapshots_flow_uuid", "snapshots", ["flow_uuid"])
    op.create_table(
        "snapshot_chunks",
        sa.Column("snapshot_id", sa.String(255),
                  sa.ForeignKey("snapshots.id", ondelete="CASCADE",
                                name="snapshot_chunks_snapshot_id_fkey"),
                  primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("data", BLOB, nullable=False),
        **_MYSQL)


def downgrade() -> None:
    # Indexes of the dropped tables go with them (MySQL refuses to drop one a
    # foreign key needs).
    op.drop_table("snapshot_chunks")
    op.drop_table("snapshots")
    op.drop_table("history")
    op.drop_index("ix_flowdetails_state", table_name="flowdetails")
    op.drop_index("ix_flowdetails_updated_at", table_name="flowdetails")
    op.drop_index("ix_logbooks_updated_at", table_name="logbooks")
