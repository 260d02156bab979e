"""Logbooks, flow details and atom details with a revision counter.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from persistence.backends.sql.types import ID, NAME, TEXT, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4",
          "mysql_collate": "utf8mb4_bin"}


def _record_columns() -> list:
    return [
        sa.Column("uuid", ID, primary_key=True),
        sa.Column("name", NAME),
        sa.Column("meta", TEXT),
        sa.Column("created_at", UTCDateTime()),
        sa.Column("updated_at", UTCDateTime()),
        sa.Column("revision", sa.Integer, nullable=False, server_default="1"),
    ]


def upgrade() -> None:
    op.create_table("logbooks", *_record_columns(), **_MYSQL)
    op.create_table(
        "flowdetails", *_record_columns(),
        sa.Column("state", ID),
        sa.Column("parent_uuid", ID,
                  sa.ForeignKey("logbooks.uuid", ondelete="CASCADE",
                                name="flowdetails_parent_uuid_fkey"),
                  nullable=False),
        **_MYSQL)
    op.create_index("ix_flowdetails_parent_uuid", "flowdetails", ["parent_uuid"])
    op.create_table(
        "atomdetails", *_record_columns(),
        sa.Column("atom_type", ID),
        sa.Column("state", ID),
        sa.Column("intention", ID),
        sa.Column("results", TEXT),
        sa.Column("failure", TEXT),
        sa.Column("revert_results", TEXT),
        sa.Column("revert_failure", TEXT),
        sa.Column("version", TEXT),
        sa.Column("parent_uuid", ID,
                  sa.ForeignKey("flowdetails.uuid", ondelete="CASCADE",
                                name="atomdetails_parent_uuid_fkey"),
                  nullable=False),
        **_MYSQL)
    op.create_index("ix_atomdetails_parent_uuid", "atomdetails", ["parent_uuid"])


def downgrade() -> None:
    op.drop_table("atomdetails")
    op.drop_table("flowdetails")
    op.drop_table("logbooks")
