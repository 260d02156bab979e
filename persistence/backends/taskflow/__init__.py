"""Read stores written by TaskFlow's own persistence backends (``taskflow+`` URIs).

A read-only backend, registered as ``taskflow``: the rest of the URI is the
TaskFlow store's own, so whatever TaskFlow was configured with reads here
with ``taskflow+`` in front.  It loads TaskFlow 6.5's SQL schema, dir layout
and ZooKeeper layout into this library's records, so ``persistence migrate``
(and ``export``, ``ls``, ``show``) take a TaskFlow store as their source.
TaskFlow itself is not needed.

Example configuration::

    fetch("taskflow+sqlite:///var/lib/app/taskflow.db")
    fetch("taskflow+postgresql://user:pw@db.example/taskflow")
    fetch("taskflow+mysql+pymysql://user:pw@db.example/taskflow?charset=utf8mb4")
    fetch("taskflow+dir:///var/lib/app/taskflow")      # also taskflow+file://
    fetch("taskflow+zookeeper://zk1:2181,zk2:2181/taskflow?timeout=20")
    fetch({"connection": "taskflow+zookeeper", "hosts": "zk1:2181", "path": "/taskflow"})

Options: ``encoding`` (dir: of the files, default utf-8), ``timeout`` (ZooKeeper:
seconds per request and to connect, default 10); the query string of an SQL
URI goes to the database driver.  Nothing is ever written; a location that
holds no TaskFlow store raises
:class:`~persistence.backends.taskflow.errors.NoTaskFlowStore`.
"""

from __future__ import annotations

import os
import posixpath
import threading
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from ...exceptions import ConfigurationError, MissingDependency, StorageFailure
from ..base import Backend
from ..drivers import zkclient
from ..url import BackendURL, mask_password
from .errors import NoTaskFlowStore, ReadOnlyStore, TaskFlowRecordError
from .reader import TaskFlowConnection

__all__ = ["TaskFlowStoreBackend", "TaskFlowConnection", "NoTaskFlowStore", "ReadOnlyStore",
           "TaskFlowRecordError", "PREFIX"]

PREFIX = "taskflow+"
_SQL = ("sqlite", "postgresql", "postgres", "mysql", "mariadb")
_DIR = ("dir", "file")
_ZK = ("zookeeper",)
_KINDS = "sqlite, postgresql, mysql, dir (or file) and zookeeper"


def _inner(conf: Mapping[str, Any]) -> tuple[str, str | None]:
    """The TaskFlow store's own scheme and URI (None for a dict configuration)."""
    connection = conf.get("connection")
    if not isinstance(connection, str) or not connection.lower().startswith(PREFIX):
        raise ConfigurationError(
            f"say which kind of TaskFlow store to read: taskflow+<its URI>, e.g. "
            f"taskflow+sqlite:///taskflow.db or taskflow+dir:///var/lib/taskflow "
            f"(kinds: {_KINDS}), not {mask_password(str(connection))!r}")
    rest = connection[len(PREFIX):]
    if "://" in rest:
        scheme = rest.split("://", 1)[0]
        return scheme.partition("+")[0].lower(), rest
    return rest.partition("+")[0].lower(), None


class TaskFlowStoreBackend(Backend):
    """A TaskFlow store (SQL, dir or ZooKeeper), opened read-only."""

    OPTIONS: ClassVar[Mapping[str, Callable[[Any], Any]]] = {"encoding": str, "timeout": float}
    #: Capability flag: connections only read (writes raise ReadOnlyStore).
    read_only = True

    @classmethod
    def conf_from_url(cls, url: BackendURL) -> dict[str, Any]:
        """The TaskFlow store's URI parts and options: a database URL's query string is
        the driver's (it stays in the URI), a ZooKeeper ensemble's hosts become one list
        kazoo reads."""
        conf = url.to_conf()
        kind = (url.driver or "").partition("+")[0].lower()
        if kind in _SQL:
            for key, _ in url.query:
                conf.pop(key, None)
        elif kind in _ZK and len(url.hosts) > 1 and "hosts" not in dict(url.query):
            conf["hosts"] = zkclient.host_list(url.hosts)
        return conf

    def __init__(self, conf: Mapping[str, Any] | None = None) -> None:
        conf = dict(conf or {})
        self.kind, self._uri = _inner(conf)
        if self.kind not in _SQL + _DIR + _ZK:
            raise ConfigurationError(f"unknown kind of TaskFlow store {self.kind!r}; known: "
                                     f"{_KINDS}")
        if self.kind in _SQL and self._uri is None:
            raise ConfigurationError("give a TaskFlow SQL store as a URI, e.g. "
                                     "taskflow+postgresql://user@host/db")
        super().__init__(conf)
        if self.kind in _SQL and self._options:
            raise ConfigurationError(f"option(s) {', '.join(sorted(self._options))} do not "
                                     f"apply to a TaskFlow SQL store")
        self._location = mask_password(conf["connection"])   # dir and zk normalise it
        self._lock = threading.Lock()
        self._resource: Any = None
        self._validated = False
        if self.kind in _DIR:
            self._setup_dir(conf)
        elif self.kind in _ZK:
            self._setup_zk(conf)

    # -- configuration ------------------------------------------------------------
    def _setup_dir(self, conf: dict[str, Any]) -> None:
        if self._options.get("timeout") is not None:
            raise ConfigurationError("option 'timeout' does not apply to a TaskFlow dir store")
        if conf.get("host"):
            raise ConfigurationError(
                f"a taskflow+dir URI names a local directory and takes no host (got "
                f"{conf['host']!r}): write taskflow+dir:///absolute/path, with three slashes")
        path = conf.get("path")
        if not path:
            raise ConfigurationError("a TaskFlow dir store needs its path, e.g. "
                                     "taskflow+dir:///var/lib/taskflow")
        self.path = os.path.abspath(path)
        self._location = f"{PREFIX}dir://{self.path}"

    def _setup_zk(self, conf: dict[str, Any]) -> None:
        if self._options.get("encoding") is not None:
            raise ConfigurationError("option 'encoding' does not apply to a TaskFlow "
                                     "ZooKeeper store")
        hosts = conf.get("hosts")
        if not hosts and conf.get("host"):
            hosts = zkclient.host_port(conf["host"], conf.get("port"))
        if isinstance(hosts, (list, tuple)):
            hosts = ",".join(map(str, hosts))
        if not isinstance(hosts, str) or not hosts:
            raise ConfigurationError("a TaskFlow ZooKeeper store needs its hosts, e.g. "
                                     "taskflow+zookeeper://zk1:2181/taskflow")
        path = conf.get("path") or "/taskflow"  # TaskFlow's default root
        if not path.startswith("/") or any(p in (".", "..") for p in path.split("/")):
            raise ConfigurationError(f"a TaskFlow ZooKeeper path must be absolute, "
                                     f"not {path!r}")
        self.hosts, self.path = hosts, posixpath.normpath(path)
        self._location = f"{PREFIX}zookeeper://{hosts}{self.path}"
        self._auth = None
        if conf.get("username") is not None:
            self._auth = [("digest", f"{conf['username']}:{conf.get('password') or ''}")]

    @property
    def location(self) -> str:
        """The store this backend reads, as shown in messages (password masked)."""
        return self._location

    # -- connections --------------------------------------------------------------
    def get_connection(self) -> TaskFlowConnection:
        """A read-only connection; the first one checks a TaskFlow store is there."""
        with self._lock:
            if self._resource is None:
                self._resource = self._open()
            conn = self._connect()
            if not self._validated:
                conn.validate()
                self._validated = True
        return conn

    def _open(self) -> Any:
        if self.kind in _SQL:
            from .sql import make_engine
            return make_engine(self._uri, self._location)
        if self.kind in _ZK:
            return self._start_zk()
        return None

    def _connect(self) -> TaskFlowConnection:
        if self.kind in _SQL:
            from .sql import SqlTaskFlowConnection
            return SqlTaskFlowConnection(self, self._resource, self._location)
        if self.kind in _ZK:
            from .zk import ZkTaskFlowConnection
            return ZkTaskFlowConnection(self, self.path, self._location, self._resource,
                                        self._zk_call)
        from .files import DirTaskFlowConnection
        return DirTaskFlowConnection(self, self.path, self._options.get("encoding", "utf-8"))

    def _start_zk(self) -> Any:
        try:
            from kazoo.client import KazooClient
        except ImportError as err:
            raise MissingDependency(f"cannot read {self._location}: {err}; pip install "
                                    f"'persistence[zookeeper]'") from err
        timeout = self._options.get("timeout", 10.0)
        client = KazooClient(hosts=self.hosts, timeout=timeout, auth_data=self._auth)
        zkclient.install(client.logger)
        try:
            client.start(timeout=timeout)
        except Exception as err:
            client.close()
            raise StorageFailure(f"cannot reach ZooKeeper for {self._location} within "
                                 f"{timeout:g} s: {err}") from err
        return client

    def _zk_call(self, what: str, send: Callable[[], Any]) -> Any:
        from kazoo.exceptions import KazooException, NoNodeError
        try:
            return send()
        except NoNodeError:
            raise
        except (KazooException, OSError) as err:
            raise StorageFailure(f"failed to {what} in {self._location}: "
                                 f"{type(err).__name__} {err}") from err

    def close(self) -> None:
        """Stop the ZooKeeper client or dispose of the database engine, if any."""
        with self._lock:
            resource, self._resource = self._resource, None
            self._validated = False
        if resource is None:
            return
        if self.kind in _ZK:
            resource.stop()
            resource.close()
        else:
            resource.dispose()

    def __repr__(self) -> str:
        return f"<TaskFlowStoreBackend {self._location}>"
