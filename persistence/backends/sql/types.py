"""Column types that behave the same on sqlite, PostgreSQL and MySQL/MariaDB.

Kept apart from ``tables.py`` because migrations import them too: a type
used by a shipped migration must never change meaning.
"""

from __future__ import annotations

import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

__all__ = ["TEXT", "BLOB", "ID", "NAME", "UTCDateTime", "utc_now"]

#: JSON documents of any size: LONGTEXT on MySQL, where TEXT stops at 64 KiB.
TEXT = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
#: Chunks of large values: LONGBLOB on MySQL, where BLOB stops at 64 KiB.
BLOB = sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")
#: Identifiers (uuids, states, intentions, atom types).
ID = sa.String(255)
#: Record names (user-chosen, so not length-limited like identifiers).
NAME = sa.Text()


class UTCDateTime(sa.types.TypeDecorator):
    """An aware UTC datetime stored as a naive UTC one (microseconds kept everywhere)."""

    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime())

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        if isinstance(value, datetime.datetime) and value.tzinfo is not None:
            value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> Any:
        if isinstance(value, datetime.datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return value


class utc_now(FunctionElement):  # noqa: N801 - reads like a SQL function
    """The current UTC time, computed by the server (no bound parameter needed)."""

    type = sa.DateTime()
    inherit_cache = True


@compiles(utc_now)
def _utc_now_default(element, compiler, **kw):
    # sqlite: UTC with milliseconds (CURRENT_TIMESTAMP has whole seconds only), padded to
    # the six digits Python-bound times have, so both compare as text.
    return "strftime('%Y-%m-%d %H:%M:%f000', 'now')"


@compiles(utc_now, "postgresql")
def _utc_now_pg(element, compiler, **kw):
    return "(now() AT TIME ZONE 'utc')"


@compiles(utc_now, "mysql")
@compiles(utc_now, "mariadb")
def _utc_now_mysql(element, compiler, **kw):
    return "UTC_TIMESTAMP(6)"
