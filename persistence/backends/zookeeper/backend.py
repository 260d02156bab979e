"""ZkBackend: configuration, the kazoo client's life cycle, bounded waits.

Every request waits at most ``timeout`` seconds.  A request is only handed
to kazoo while the client has a live session: kazoo queues requests made
while it reconnects and would send them whenever a quorum comes back, which
would turn "no quorum" into a hang (or a write applied long after the caller
gave up).  Without a session the caller gets a StorageFailure naming the hosts.
"""

from __future__ import annotations

import logging
import posixpath
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import (
    BadVersionError,
    ConnectionClosedError,
    ConnectionLoss,
    KazooException,
    NoAuthError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    OperationTimeoutError,
    SessionExpiredError,
    UnimplementedError,
)
from kazoo.protocol.states import KazooState
from kazoo.security import CREATOR_ALL_ACL

from ...exceptions import ConfigurationError, StorageFailure
from ..base import store_token
from ..drivers import zkclient
from ..pathbased.connection import PathBasedBackend
from ..url import BackendURL
from .connection import ZkConnection

__all__ = ["ZkBackend"]

LOG = logging.getLogger(__name__)

DEFAULT_HOSTS = "127.0.0.1:2181"

_LOST = (ConnectionLoss, SessionExpiredError, ConnectionClosedError, OperationTimeoutError)
# ZooKeeper answers the callers interpret themselves; every other error is a StorageFailure.
_ANSWERS = (NoNodeError, BadVersionError, NodeExistsError, NotEmptyError, UnimplementedError)


def _hosts(conf: Mapping[str, Any]) -> str:
    hosts = conf.get("hosts")
    if hosts is None:
        if conf.get("host"):
            return zkclient.host_port(conf["host"], conf.get("port"))
        return DEFAULT_HOSTS
    if isinstance(hosts, str):
        items = [h.strip() for h in hosts.split(",")]
    elif isinstance(hosts, (list, tuple)):
        items = []
        for h in hosts:
            if isinstance(h, (list, tuple)) and len(h) == 2:
                items.append(zkclient.host_port(str(h[0]), int(h[1])))
            else:
                items.append(str(h).strip())
    else:
        raise ConfigurationError(f"option 'hosts' must be a 'host:port,host:port' string "
                                 f"or a list of them, not {type(hosts).__name__}")
    if not items or not all(items):
        raise ConfigurationError(f"option 'hosts' has an empty entry: {hosts!r}")
    return ",".join(items)


def _unknown_host(name: str) -> bool:
    """Whether DNS says ``name`` does not exist (a temporary DNS failure is not that)."""
    try:
        socket.getaddrinfo(name, None)
    except socket.gaierror as err:
        return err.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME))
    except (UnicodeError, OSError):
        return False
    return False


def _root(path: str) -> str:
    if not path.startswith("/"):
        raise ConfigurationError(f"option 'path' must be an absolute znode path, not {path!r}")
    parts = [p for p in path.split("/") if p]
    if any(p in (".", "..") or "\x00" in p for p in parts):
        raise ConfigurationError(f"option 'path' {path!r} must not contain '.', '..' or NUL")
    return posixpath.join("/", *parts)


class ZkBackend(PathBasedBackend):
    """Logbooks, flow details and atom details as znodes in a ZooKeeper ensemble.

    Example configuration::

        fetch("zookeeper://127.0.0.1:2181,127.0.0.1:2182/taskflow?timeout=10")
        fetch({"connection": "zookeeper", "hosts": "zk1:2181,zk2:2181",
               "path": "/taskflow", "timeout": 10})
        fetch({"connection": "zookeeper", "path": "/taskflow"}, client=started_kazoo_client)

    A client passed as ``client=`` must be started by the caller and is not
    stopped or closed by the backend.  See ``doc/backends/zookeeper.rst`` for
    every option.
    """

    DEFAULT_PATH = "/taskflow"
    OPTIONS = {"path": str, "hosts": object, "host": str, "port": int, "timeout": float,
               "chunk_size": int, "max_request_bytes": int, "multi_read": bool,
               "username": str, "password": str, "history": bool}

    @classmethod
    def conf_from_url(cls, url: BackendURL) -> dict[str, Any]:
        """The URI's parts and options, an ensemble's hosts (``zookeeper://zk1,[::1]:2182/x``)
        as one ``hosts`` list kazoo reads: IPv6 in brackets, port 2181 where none is given."""
        conf = url.to_conf()
        if len(url.hosts) > 1 and "hosts" not in dict(url.query):
            conf["hosts"] = zkclient.host_list(url.hosts)
        return conf

    def __init__(self, conf: Mapping[str, Any] | None = None,
                 client: KazooClient | None = None) -> None:
        super().__init__(conf)
        opts = self._options
        self._path = _root(self._path)
        self.timeout = opts.get("timeout", 10.0)
        if not self.timeout > 0:
            raise ConfigurationError(f"option 'timeout' must be > 0 seconds, not {self.timeout}")
        self.max_request_bytes = opts.get("max_request_bytes", 1_000_000)
        self.chunk_size = opts.get("chunk_size", 512 * 1024)
        if self.chunk_size < 1 or self.max_request_bytes < self.chunk_size + 4096:
            raise ConfigurationError(
                f"options 'chunk_size' ({self.chunk_size}) and 'max_request_bytes' "
                f"({self.max_request_bytes}) need chunk_size >= 1 and max_request_bytes >= "
                f"chunk_size + 4096 (room for the path and headers of a request)")
        self.multi_read = opts.get("multi_read", True)
        if client is not None and not isinstance(client, KazooClient):
            raise TypeError(f"client must be a kazoo KazooClient, not {type(client).__name__}")
        zkclient.install(client.logger if client is not None else None)
        if client is not None:
            self.hosts = zkclient.host_list(client.hosts)
        else:
            self.hosts = _hosts(opts)
        if ("password" in opts) and "username" not in opts:
            raise ConfigurationError("option 'password' needs a 'username'")
        self._client = client
        self._owns_client = client is None
        chroot = (client.chroot or "") if client is not None else ""
        # Every backend of this process on the same servers and path shares the token.
        self.token = store_token(f"zookeeper:{','.join(sorted(self.hosts.split(',')))}"
                                 f"{chroot}{self._path}")
        self._live = threading.Event()
        self._guard = threading.Lock()
        self._listening = False
        self._started = False

    # -- client ----------------------------------------------------------
    @property
    def client(self) -> KazooClient:
        """The kazoo client; one this backend owns is started on first use."""
        with self._guard:
            if self._client is None:
                self._client = self._new_client()
                self._started = False
            if not self._listening:
                self._client.add_listener(self._on_state)
                self._listening = True
                if self._client.connected:
                    self._live.set()
            if self._owns_client and not self._started:
                self._start()
                self._started = True
            return self._client

    def _new_client(self) -> KazooClient:
        extra: dict[str, Any] = {}
        if "username" in self._options:
            credentials = f"{self._options['username']}:{self._options.get('password', '')}"
            extra = {"auth_data": [("digest", credentials)], "default_acl": CREATOR_ALL_ACL}
        retry = {"max_tries": -1, "delay": 0.05, "backoff": 2, "max_delay": 1.0}
        return KazooClient(hosts=self.hosts, timeout=self.timeout,
                           connection_retry=retry, **extra)

    def _start(self) -> None:
        client = self._client
        names = sorted({host for host, _port in client.hosts})
        cause: Exception | None
        try:
            if names and all(_unknown_host(name) for name in names):
                # Permanent: waiting out the timeout (kazoo retries) cannot help.
                raise StorageFailure(f"cannot connect to ZooKeeper at {self.hosts}: unknown "
                                     f"host{'s' if len(names) > 1 else ''} "
                                     f"{', '.join(names)} (check the URI)")
            client.start(timeout=self.timeout)
            return
        except StorageFailure as err:
            failure, cause = err, None
        except client.handler.timeout_exception as err:
            failure = StorageFailure(f"cannot connect to ZooKeeper at {self.hosts} within "
                                     f"{self.timeout:g} s")
            cause = err
        except KazooException as err:
            failure = StorageFailure(f"cannot connect to ZooKeeper at {self.hosts}: "
                                     f"{type(err).__name__}")
            cause = err
        # kazoo keeps retrying in the background unless stopped.
        client.remove_listener(self._on_state)
        self._listening = False
        client.stop()
        client.close()
        self._client = None
        raise failure from cause

    def _on_state(self, state: str) -> None:
        if state == KazooState.CONNECTED:
            self._live.set()
        else:
            self._live.clear()

    def get_connection(self) -> ZkConnection:
        self.client  # noqa: B018 - connect now, so an unreachable ensemble fails here
        self.wait_live(self.deadline())
        return ZkConnection(self)

    def close(self) -> None:
        with self._guard:
            client, self._client = self._client, (None if self._owns_client else self._client)
            if client is None:
                return
            if self._listening:
                client.remove_listener(self._on_state)
                self._listening = False
            self._live.clear()
            if self._owns_client:
                client.stop()
                client.close()

    # -- bounded requests ------------------------------------------------
    def deadline(self) -> float:
        return time.monotonic() + self.timeout

    def wait_live(self, deadline: float) -> None:
        """Return once the client has a session; StorageFailure at ``deadline``."""
        if self._live.is_set():
            return
        if not self._live.wait(max(0.0, deadline - time.monotonic())):
            hint = "" if self._owns_client else " (was the client passed to fetch() started?)"
            raise StorageFailure(f"no ZooKeeper server at {self.hosts} gave a session within "
                                 f"{self.timeout:g} s: unreachable, or no quorum{hint}")

    def call(self, what: str, send: Callable[[], Any], deadline: float | None = None) -> Any:
        """Send one request once a session is live; its result, bounded by ``deadline``."""
        deadline = deadline or self.deadline()
        self.wait_live(deadline)
        return self.result(what, send(), deadline)

    def result(self, what: str, async_result: Any, deadline: float) -> Any:
        """Wait for ``async_result``; kazoo's connection errors become StorageFailure.

        The answers in ``_ANSWERS`` (NoNodeError, BadVersionError, ...) are
        raised as they are, for the caller to interpret.
        """
        client = self._client
        try:
            return async_result.get(timeout=max(0.0, deadline - time.monotonic()))
        except _ANSWERS:
            raise
        except client.handler.timeout_exception as err:
            raise StorageFailure(
                f"ZooKeeper at {self.hosts} did not answer within {self.timeout:g} s while "
                f"trying to {what} (no quorum?); a write may still be applied") from err
        except _LOST as err:
            raise StorageFailure(
                f"lost the ZooKeeper session or connection ({self.hosts}) while trying to "
                f"{what}: {type(err).__name__}; a write may or may not have been applied") from err
        except NoAuthError as err:
            raise StorageFailure(f"not allowed to {what} on ZooKeeper at {self.hosts}: "
                                 f"the znode's ACL refuses these credentials") from err
        except Exception as err:
            raise StorageFailure(f"failed to {what} on ZooKeeper at {self.hosts}: "
                                 f"{type(err).__name__}: {err}") from err
