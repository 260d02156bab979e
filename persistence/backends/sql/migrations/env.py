"""Alembic environment: migrate the connection ``Connection.upgrade()`` hands over.

``persistence.backends.sql.migrate`` puts an open connection (already in a
transaction and holding the migration lock) in ``config.attributes``, or, in
offline mode (``migrate.offline``), the URL whose dialect to render SQL for;
the ``alembic`` command line works too, with ``sqlalchemy.url`` set in its ini file.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from persistence.backends.sql.tables import VERSION_TABLE, metadata


def _migrate(connection: sa.Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata,
                      version_table=VERSION_TABLE, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if context.is_offline_mode():
    context.configure(url=context.config.attributes.get("offline_url")
                      or context.config.get_main_option("sqlalchemy.url"),
                      target_metadata=metadata, version_table=VERSION_TABLE,
                      literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif connection is not None:
    _migrate(connection)
else:
    engine = sa.create_engine(context.config.get_main_option("sqlalchemy.url"))
    with engine.connect() as conn:
        _migrate(conn)
    engine.dispose()
