"""The SQL backend: sqlite, PostgreSQL and MySQL/MariaDB through SQLAlchemy.

Example configuration::

    fetch("sqlite:////var/lib/myapp/flows.db")
    fetch("postgresql://flows:secret@db.example.com/flows?pool_size=10")
    fetch({"connection": "mysql+pymysql://root@127.0.0.1/flows",
           "retry_attempts": 8, "retry_backoff": 0.2})
    fetch({"connection": "sqlalchemy"}, engine=my_engine)   # reuse an Engine

Every option, its default and the durability trade-offs are documented in
``doc/backends/sql.rst``.
"""

from __future__ import annotations

import itertools
import os
import threading
import weakref
from collections.abc import Mapping
from typing import Any, ClassVar

import sqlalchemy as sa
import tenacity

from ...exceptions import ConfigurationError, StorageFailure
from ...payload import PAYLOAD_KEYS
from ..base import URL_KEYS, Backend, store_token
from ..url import BackendURL, mask_password
from . import config, migrate
from .errors import Transient
from .statements import RawStatement

__all__ = ["SQLAlchemyBackend"]

_MIB = 1024 * 1024


def _choice(choices: tuple[str, ...]):
    def convert(value: Any) -> str:
        lowered = str(value).strip().lower()
        if lowered not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return lowered
    return convert


class SQLAlchemyBackend(Backend):
    """Logbooks, flow details and atom details in a SQL database."""

    OPTIONS: ClassVar[Mapping[str, Any]] = {
        "url": str, "database": str, "user": str,
        "echo": bool, "pool_size": int, "max_overflow": int, "pool_timeout": float,
        "pool_recycle": int, "pool_pre_ping": bool,
        "connect_timeout": int, "busy_timeout": float,
        "synchronous": _choice(config.SYNCHRONOUS),
        "journal_mode": _choice(config.JOURNAL_MODES),
        "retry_attempts": int, "retry_backoff": float, "retry_max_backoff": float,
        "max_inline_size": int, "chunk_size": int, "history": bool,
    }

    @classmethod
    def conf_from_url(cls, url: BackendURL) -> dict[str, Any]:
        """The URI's parts and the query parameters that are options; the others
        are the driver's and stay in the URI (``connection``), which the engine's
        URL is built from."""
        conf = url.to_conf()
        for key, value in url.query:
            if cls._for_driver(key, value):
                conf.pop(key, None)
        return conf

    def __init__(self, conf: Mapping[str, Any] | None = None, *,
                 engine: sa.Engine | None = None) -> None:
        conf = dict(conf or {})
        driver_query = self._driver_query(conf)
        super().__init__(conf)
        options = self._options
        self._check_ranges(options)
        if engine is not None:
            engine_opts = [k for k in ("echo", "pool_size", "max_overflow", "pool_timeout",
                                       "pool_recycle", "pool_pre_ping", "connect_timeout",
                                       "busy_timeout", "synchronous", "journal_mode")
                           if k in options]
            if engine_opts:
                raise ConfigurationError(f"option(s) {', '.join(engine_opts)} configure the "
                                         f"engine, but an engine was passed in: set them on it")
            self._engine, self._owns_engine = engine, False
        else:
            url = config.sqlalchemy_url(conf, options, driver_query)
            self._engine, self._owns_engine = self._create_engine(url, options), True
        url = self._engine.url
        self.dialect_name = self._engine.dialect.name
        self.memory = config.is_sqlite_memory(url)
        self.max_inline_size: int | None = options.get("max_inline_size")
        if self.max_inline_size is None and self.dialect_name in ("mysql", "mariadb"):
            self.max_inline_size = _MIB  # far below the 16 MiB packet, escaping included
        self.chunk_size: int = options.get("chunk_size", _MIB)
        #: Whether writes insert history rows (option ``history``, default on).
        self.history: bool = options.get("history", True)
        self.retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(max(1, options.get("retry_attempts", 5))),
            wait=tenacity.wait_exponential(multiplier=options.get("retry_backoff", 0.1),
                                           max=options.get("retry_max_backoff", 5.0)),
            retry=tenacity.retry_if_exception_type(Transient), reraise=True)
        # Identifies records read or written through any backend of this process on
        # this database (see persistence.base.store_token).
        self.token = store_token(config.store_identity(url))
        self._txn_prefix = os.urandom(6).hex()
        self._txn_counter = itertools.count(1)
        # One sqlite memory database is one connection: serialize everything on it.
        self.shared_lock = threading.RLock() if self.memory else None
        self.where = (f"{url.get_backend_name()} database "
                      f"{mask_password(url.render_as_string(hide_password=True))}")
        self.server = (f"{url.host}:{url.port or self._default_port()}"
                       if url.host else None)
        self._raw: dict[Any, RawStatement | None] = {}
        self._closed = False
        #: Sessions handed out by get_connection(); close() closes those still open.
        self.sessions: weakref.WeakSet = weakref.WeakSet()

    def _create_engine(self, url: sa.URL, options: Mapping[str, Any]) -> sa.Engine:
        """The engine this backend owns (persistence.aio builds one whose driver awaits)."""
        return config.create_engine(url, options)

    @classmethod
    def _driver_query(cls, conf: Mapping[str, Any]) -> dict[str, str]:
        """URL query parameters that are not our options: they go to the driver."""
        raw = conf.get("url") or conf.get("connection") or ""
        if not isinstance(raw, str) or "://" not in raw or "?" not in raw:
            return {}
        scheme, sep, rest = raw.partition("://")
        if scheme.lower().startswith("sqlalchemy+"):
            raw = scheme[len("sqlalchemy+"):] + sep + rest
        try:
            query = config.parse_url(raw).query
        except ConfigurationError:
            return {}  # reported with a clear message when the URL is parsed
        # A repeated key comes as a tuple: keep every value.
        return {key: value for key, value in query.items() if cls._for_driver(key, value)}

    @classmethod
    def _for_driver(cls, key: str, value: Any) -> bool:
        """Whether query parameter ``key`` goes to the driver rather than configuring us.
        host/port in the query string are libpq's multi-host form
        (``?host=a:5432&host=b:5432&target_session_attrs=read-write``): the driver's.
        Payload options (``serializer``, ``encrypt``...) are never the driver's."""
        if key in cls.OPTIONS or key in PAYLOAD_KEYS or (key in URL_KEYS
                                                          and key not in ("host", "port")):
            return False
        return not (isinstance(value, tuple) and not all(isinstance(v, str) for v in value))

    @staticmethod
    def _check_ranges(options: Mapping[str, Any]) -> None:
        for name in ("retry_attempts",):
            if options.get(name, 0) < 0:
                raise ConfigurationError(f"option {name!r} must be >= 0")
        for name in ("max_inline_size", "chunk_size", "connect_timeout"):
            if name in options and options[name] <= 0:
                raise ConfigurationError(f"option {name!r} must be > 0")
        for name in ("retry_backoff", "retry_max_backoff", "busy_timeout"):
            if options.get(name, 0) < 0:
                raise ConfigurationError(f"option {name!r} must be >= 0")

    def _default_port(self) -> int | None:
        return {"postgresql": 5432, "mysql": 3306, "mariadb": 3306}.get(self.dialect_name)

    @property
    def engine(self) -> sa.Engine:
        """The SQLAlchemy engine (the caller's, if one was passed in)."""
        return self._engine

    @property
    def owns_engine(self) -> bool:
        return self._owns_engine

    def raw(self, statement: Any) -> RawStatement | None:
        """``statement`` compiled for this engine's dialect, or None where its
        parameters need SQLAlchemy's type conversion."""
        try:
            return self._raw[statement]
        except KeyError:
            try:
                raw = RawStatement(statement, self._engine.dialect)
            except TypeError:
                raw = None
            self._raw[statement] = raw
            return raw

    def new_txn_id(self) -> str:
        """A unique id for one write transaction (all its retries share it)."""
        return f"{self._txn_prefix}{next(self._txn_counter):x}"

    def setup(self, dbapi_conn: Any) -> None:
        """Per-connection settings; run once per pooled DBAPI connection."""
        config.setup_connection(dbapi_conn, self.dialect_name, self._options,
                                owned=self._owns_engine, memory=self.memory)

    def get_connection(self):
        from .connection import SQLConnection
        return SQLConnection(self)

    supports_claims = supports_history = supports_snapshots = True
    supports_upgrade_script: ClassVar[bool] = True

    def store_exists(self) -> bool:
        """An in-memory database always; a sqlite file if it exists and a server
        database if it has the schema's version table (read, never created)."""
        if self.memory:
            return True
        url = self.engine.url
        if self.dialect_name == "sqlite":
            path = url.database or ""
            if not os.path.isfile(path):
                return False
            try:
                return migrate.sqlite_file_revision(path) is not None
            except StorageFailure:   # not a database at all, or locked: the operation says
                return True
        return self._revision("look for the persistence schema") is not None

    def schema_revision(self) -> str | None:
        """The Alembic migration the database is at (None: an empty database).

        Reads only: a sqlite file is read through a read-only connection, so a
        missing file is not created and a file in another journal mode is left
        in it (the backend's own connections switch a file to WAL).
        """
        if self.dialect_name == "sqlite" and not self.memory:
            path = self.engine.url.database or ""
            return migrate.sqlite_file_revision(path) if os.path.isfile(path) else None
        return self._revision("read the schema version")

    def _revision(self, what: str) -> str | None:
        conn = self.get_connection()   # its errors are one line, transient ones retried
        try:
            return conn._session.run(what, migrate.current)
        finally:
            conn.close()

    def upgrade_script(self, start: str | None) -> str:
        """The SQL that upgrades this database from ``start`` to head (nothing runs)."""
        return migrate.offline(self.engine.url, start)

    def close(self) -> None:
        """Close every connection handed out and dispose of the engine's pool (an
        engine passed in is left to its owner)."""
        for session in list(self.sessions):
            session.close()
        if self._owns_engine and not self._closed:
            self._engine.dispose()
        self._closed = True

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.where}>"
