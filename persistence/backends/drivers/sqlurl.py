"""A SQL database URL as this library reads it, and the driver each database gets.

The SQL backend and the TaskFlow-store reader both take database URLs; they
read them here, so a password holding ``@`` means the same to both, and a
URL that names no driver gets the same one.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ...exceptions import ConfigurationError
from ..url import make_url, mask_password

__all__ = ["parse_url", "with_default_driver", "EXTRAS"]

# Backend or dialect name -> the driver we use when the URL names none.
_DEFAULT_DRIVERS = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg",
                    "mysql": "mysql+pymysql", "mariadb": "mariadb+pymysql",
                    "sqlite": "sqlite"}
#: Dialect name -> the extra of ``persistence`` that installs its driver.
EXTRAS = {"postgresql": "postgresql", "mysql": "mysql", "mariadb": "mysql", "sqlite": "sql"}


def parse_url(raw: str) -> sa.URL:
    """The SQLAlchemy URL of ``raw``, split by our own URI parser.

    SQLAlchemy's parser splits ``user:p@ss@host`` at the first ``@``, ours at
    the last; building the URL from our parts keeps one reading of the
    password everywhere (connecting, masking, messages).
    """
    url = make_url(raw)
    if len(url.hosts) > 1:
        raise ConfigurationError(f"{mask_password(raw)!r} names {len(url.hosts)} hosts; a SQL "
                                 f"database URL names one")
    query: dict[str, Any] = {}
    for key, value in url.query:
        if key not in query:
            query[key] = value
        else:
            prev = query[key]
            query[key] = [*prev, value] if isinstance(prev, list) else [prev, value]
    drivername = url.backend + (f"+{url.driver}" if url.driver else "")
    try:
        return sa.URL.create(drivername, username=url.username, password=url.password,
                             host=url.host, port=url.port, database=url.path[1:] or None,
                             query=query)
    except (TypeError, ValueError) as err:
        raise ConfigurationError(f"{mask_password(raw)!r} is not a valid SQL database URL: "
                                 f"{mask_password(str(err))}") from None


def with_default_driver(url: sa.URL) -> sa.URL:
    """``url`` naming our driver for its database when it names none
    (``postgres`` is spelled ``postgresql``, as SQLAlchemy knows it)."""
    name = url.drivername
    if "+" not in name and name in _DEFAULT_DRIVERS:
        return url.set(drivername=_DEFAULT_DRIVERS[name])
    if name.startswith("postgres+"):
        return url.set(drivername="postgresql+" + name.partition("+")[2])
    return url
