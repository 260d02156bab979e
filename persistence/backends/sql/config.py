"""From a backend configuration to a SQLAlchemy URL, engine and per-connection setup.

URL forms (see ``doc/backends/sql.rst``)::

    sqlite:///relative/path.db   sqlite:////absolute/path.db   sqlite://  (memory)
    postgresql://user:pw@host:5432/db    (psycopg 3; also postgres://, postgresql+psycopg://)
    mysql://root@host:3306/db            (PyMySQL; also mysql+pymysql://)
    sqlalchemy+<dialect>[+<driver>]://…  any SQLAlchemy URL, passed through as is

or a dict naming the backend and its parts:
``{"connection": "postgresql", "host": ..., "port": ..., "username": ...,
"password": ..., "database": ...}``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy import pool

from ...exceptions import ConfigurationError, MissingDependency
from ..drivers.sqlurl import EXTRAS, parse_url, with_default_driver

__all__ = ["parse_url", "sqlalchemy_url", "create_engine", "setup_connection", "SYNCHRONOUS",
           "JOURNAL_MODES", "is_sqlite_memory", "store_identity"]

SYNCHRONOUS = ("off", "normal", "full", "extra")
JOURNAL_MODES = ("wal", "delete", "truncate", "persist", "memory", "off")


def sqlalchemy_url(conf: Mapping[str, Any], options: Mapping[str, Any],
                   driver_query: Mapping[str, str]) -> sa.URL:
    """The SQLAlchemy URL of ``conf``; ``driver_query`` are query parameters for the driver."""
    raw = options.get("url") or conf.get("connection") or "sqlite"
    if "://" in raw:
        scheme, sep, rest = raw.partition("://")
        if scheme.lower().startswith("sqlalchemy+"):
            raw = scheme[len("sqlalchemy+"):] + sep + rest
        elif scheme.lower() == "sqlalchemy":
            raise ConfigurationError("a 'sqlalchemy://' URL must name the database: "
                                     "'sqlalchemy+postgresql://…', or pass {'connection': "
                                     "'sqlalchemy', 'url': <SQLAlchemy URL>}")
        url = parse_url(raw)
        # Our own options travel in the query string too; only the rest is the driver's.
        url = url.set(query={k: v for k, v in url.query.items() if k in driver_query})
    else:
        name = raw.lower()
        if name == "sqlalchemy":
            raise ConfigurationError("backend 'sqlalchemy' needs a 'url' option holding a "
                                     "SQLAlchemy URL, or an engine passed as engine=…")
        database = options.get("database")
        if database is None and conf.get("path"):
            database = conf["path"].lstrip("/") if name != "sqlite" else conf["path"]
        url = sa.URL.create(name, username=options.get("user") or conf.get("username"),
                            password=conf.get("password"), host=conf.get("host"),
                            port=int(conf["port"]) if conf.get("port") else None,
                            database=database, query=dict(driver_query))
    return with_default_driver(url)


def is_sqlite_memory(url: sa.URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def store_identity(url: sa.URL) -> str | None:
    """What names the database ``url`` points at, for :func:`persistence.base.store_token`
    (None for a private in-memory sqlite database)."""
    if is_sqlite_memory(url):
        return None
    if url.get_backend_name() == "sqlite":
        return f"sqlite:{os.path.realpath(url.database)}"
    return f"sql:{url.render_as_string(hide_password=True)}"


def create_engine(url: sa.URL, options: Mapping[str, Any],
                  factory: Callable[..., Any] = sa.create_engine) -> Any:
    """A new engine for ``url``; a missing driver raises MissingDependency naming the extra.
    ``factory`` builds it from the URL and keyword arguments (persistence.aio passes
    SQLAlchemy's ``create_async_engine``)."""
    kwargs: dict[str, Any] = {"echo": bool(options.get("echo", False))}
    pool_keys = ("pool_size", "max_overflow", "pool_timeout", "pool_recycle", "pool_pre_ping")
    backend = url.get_backend_name()
    connect_args: dict[str, Any] = {}
    if backend == "sqlite":
        connect_args["check_same_thread"] = False
        connect_args["timeout"] = float(options.get("busy_timeout", 30.0))
        if is_sqlite_memory(url):
            given = [k for k in pool_keys if k in options]
            if given:
                raise ConfigurationError(f"option(s) {', '.join(given)} do not apply to an "
                                         f"in-memory sqlite database (one shared connection)")
            kwargs["poolclass"] = pool.StaticPool
    elif backend in ("postgresql", "mysql", "mariadb"):
        connect_args["connect_timeout"] = int(options.get("connect_timeout", 10))
        if backend != "postgresql" and "charset" not in url.query:
            connect_args["charset"] = "utf8mb4"
    kwargs.update({k: options[k] for k in pool_keys if k in options})
    kwargs["connect_args"] = connect_args
    try:
        return factory(url, **kwargs)
    except sa.exc.NoSuchModuleError as err:
        raise ConfigurationError(f"SQLAlchemy has no dialect for "
                                 f"{url.drivername!r}: {err}") from None
    except ImportError as err:
        extra = EXTRAS.get(backend)
        hint = (f"pip install 'persistence[{extra}]'" if extra
                else f"install the DBAPI driver of {url.drivername!r}")
        raise MissingDependency(f"the driver for {url.drivername!r} is not installed "
                                f"({err}); {hint}") from err
    except TypeError as err:
        raise ConfigurationError(f"invalid engine option for {url.drivername!r}: "
                                 f"{err}") from None


def setup_connection(dbapi_conn: Any, backend: str, options: Mapping[str, Any],
                     owned: bool, memory: bool) -> None:
    """Per-connection settings, applied once when a pooled connection is first used.

    Engines passed in by the caller only get what correctness needs (sqlite
    foreign keys, for ON DELETE CASCADE); their other settings are theirs.
    """
    cursor = dbapi_conn.cursor()
    try:
        if backend == "sqlite":
            if owned:
                # We issue BEGIN ourselves: a single UPDATE then commits on its own.
                dbapi_conn.isolation_level = None
                if not memory:
                    mode = options.get("journal_mode", "wal")
                    cursor.execute(f"PRAGMA journal_mode={mode}")
                    sync = options.get("synchronous", "normal")
                    cursor.execute(f"PRAGMA synchronous={sync}")
            cursor.execute("PRAGMA foreign_keys=ON")
        elif backend in ("mysql", "mariadb") and owned:
            # Never truncate silently, whatever the server's default mode is.
            cursor.execute("SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, "
                           "',STRICT_ALL_TABLES')")
    finally:
        cursor.close()
    if backend != "sqlite" or not owned:
        dbapi_conn.commit()
