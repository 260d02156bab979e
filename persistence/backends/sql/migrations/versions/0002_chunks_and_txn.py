"""Values of any size (chunk rows) and transaction ids for safe retries.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from persistence.backends.sql.types import BLOB, ID

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_TABLES = ("logbooks", "flowdetails", "atomdetails")


def upgrade() -> None:
    for table in _TABLES:
        op.add_column(table, sa.Column("txn", sa.String(40)))
    op.add_column("atomdetails", sa.Column("chunked", sa.String(255)))
    op.create_table(
        "atomdetail_chunks",
        sa.Column("atom_uuid", ID,
                  sa.ForeignKey("atomdetails.uuid", ondelete="CASCADE",
                                name="atomdetail_chunks_atom_uuid_fkey"),
                  primary_key=True),
        sa.Column("field", sa.String(32), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("data", BLOB, nullable=False),
        mysql_engine="InnoDB", mysql_charset="utf8mb4", mysql_collate="utf8mb4_bin")


def downgrade() -> None:
    op.drop_table("atomdetail_chunks")
    with op.batch_alter_table("atomdetails") as batch:
        batch.drop_column("chunked")
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("txn")
