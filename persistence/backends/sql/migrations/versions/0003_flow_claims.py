"""Flow claims: at most one owner per flow detail, with an expiry.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from persistence.backends.sql.types import ID

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "flowclaims",
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
        mysql_engine="InnoDB", mysql_charset="utf8mb4", mysql_collate="utf8mb4_bin")


def downgrade() -> None:
    op.drop_table("flowclaims")
