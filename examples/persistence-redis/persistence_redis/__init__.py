"""The ``redis`` backend: persistence's path-based core over redis-py.

Keys, under ``prefix`` (default ``persistence:``), for each path of the core's
layout (``/books/<uuid>``, ``/flow_details/<uuid>``, ``/atom_details/<uuid>``)::

    <prefix>r:<path>   hash {data: record bytes, rev: revision}   a record
    <prefix>c:<path>   set of child names                          its children/links
    <prefix>d:<path>   "1"                                         a directory

A write transaction WATCHes each record before reading its revision and
applies every change in one MULTI/EXEC, so a reader never sees half of a
logbook's save, and a record changed by someone else in between aborts the
whole transaction as ``Conflict`` (nothing written).

Example configuration::

    fetch("redis://127.0.0.1:6379/0?prefix=myapp:")
    fetch({"connection": "redis", "host": "cache", "db": 2, "socket_timeout": 5})
    fetch({"connection": "redis"}, client=redis.Redis(...))   # reuse a client
"""

from __future__ import annotations

import contextlib
import posixpath
from collections.abc import Iterator
from typing import Any

import redis

from persistence.base import translate_errors

try:
    from persistence.base import store_token
except ImportError:  # a persistence from before store tokens: one token per instance
    def store_token(identity: str | None) -> object:
        return object()
from persistence.exceptions import ConfigurationError, Conflict, NotFound
from persistence.path_based import PathBasedBackend, PathBasedConnection, next_revision

__all__ = ["RedisBackend", "RedisConnection"]

_ROOT = "/"


def _db(conf: dict[str, Any], options: dict[str, Any]) -> int:
    if "db" in options:
        return options["db"]
    path = (conf.get("path") or "").strip("/")
    if not path:
        return 0
    if not path.isdigit():
        raise ConfigurationError(f"the path of a redis URI is the database number "
                                 f"(redis://host:6379/0), not {path!r}")
    return int(path)


class RedisBackend(PathBasedBackend):
    """Logbooks in Redis; every key starts with ``prefix``."""

    DEFAULT_PATH = _ROOT
    OPTIONS = {"path": str, "db": int, "prefix": str, "socket_timeout": float}

    def __init__(self, conf: dict[str, Any] | None = None, *,
                 client: redis.Redis | None = None) -> None:
        super().__init__(conf)
        self._path = _ROOT            # the URI path names the database, not a root path
        self.prefix = self._options.get("prefix", "persistence:")
        if client is not None:
            self.client, self._owns_client = client, False
            self.where = "the redis client passed in"
        else:
            host = self._conf.get("host") or "127.0.0.1"
            port = int(self._conf.get("port") or 6379)
            self.client = redis.Redis(
                host=host, port=port, db=_db(self._conf, self._options),
                username=self._conf.get("username"), password=self._conf.get("password"),
                socket_timeout=self._options.get("socket_timeout", 10.0),
                socket_connect_timeout=self._options.get("socket_timeout", 10.0))
            self._owns_client = True
            self.where = f"redis at {host}:{port}"
        # Backends of this process naming the same keys share the token, so a
        # record loaded through one is written conditionally through another.
        kwargs = self.client.connection_pool.connection_kwargs
        self.token = store_token(f"redis:{kwargs.get('host')}:{kwargs.get('port')}/"
                                 f"{kwargs.get('db', 0)}/{self.prefix}")

    def get_connection(self) -> RedisConnection:
        return RedisConnection(self)

    def close(self) -> None:
        if self._owns_client:
            self.client.close()


class _Transaction:
    """Changes queued until commit; the pipeline WATCHes every record written."""

    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe
        self.ops: list[tuple] = []
        self.revisions: dict[str, int] = {}


class RedisConnection(PathBasedConnection):
    """Connection implementing the path primitives with redis-py (thread-safe)."""

    def __init__(self, backend: RedisBackend) -> None:
        super().__init__(backend, _ROOT)
        self._client = backend.client
        self._prefix = backend.prefix

    def _errors(self, what: str) -> contextlib.AbstractContextManager[None]:
        return translate_errors(f"{what} ({self._backend.where})", redis.RedisError)

    def _key(self, kind: str, path: str) -> str:
        return f"{self._prefix}{kind}:{path}"

    # -- reads -----------------------------------------------------------
    def _read(self, path: str) -> tuple[bytes, int]:
        raw = self._read_many([path])[0]
        if raw is None:
            raise NotFound(f"nothing stored at {path}")
        return raw

    def _read_many(self, paths: list[str]) -> list[tuple[bytes, int] | None]:
        with self._errors("read records"):
            pipe = self._client.pipeline(transaction=False)
            for path in paths:
                pipe.hmget(self._key("r", path), "data", "rev")
            rows = pipe.execute()
        return [None if data is None else (data, int(rev)) for data, rev in rows]

    def _children(self, path: str) -> list[str]:
        names = self._children_many([path])[0]
        if names is None:
            raise NotFound(f"nothing stored at {path}")
        return names

    def _children_many(self, paths: list[str]) -> list[list[str] | None]:
        with self._errors("list children"):
            pipe = self._client.pipeline(transaction=False)
            for path in paths:
                pipe.exists(self._key("r", path), self._key("d", path))
                pipe.smembers(self._key("c", path))
            replies = pipe.execute()
        out: list[list[str] | None] = []
        for exists, members in zip(replies[::2], replies[1::2]):
            out.append(sorted(m.decode() for m in members) if exists else None)
        return out

    def _exists(self, path: str) -> bool:
        with self._errors("check a path"):
            return bool(self._client.exists(self._key("r", path), self._key("d", path)))

    # -- writes ----------------------------------------------------------
    def _write(self, path: str, data: bytes, txn: _Transaction, *, create: bool,
               expected_revision: int | None) -> int:
        key = self._key("r", path)
        current = txn.revisions.get(path)
        if current is None:
            with self._errors("read a revision"):
                txn.pipe.watch(key)
                stored = txn.pipe.hget(key, "rev")
            current = int(stored) if stored is not None else 0
        revision = next_revision(path, current, create=create,
                                 expected_revision=expected_revision)
        txn.revisions[path] = revision
        parent, name = posixpath.split(path)
        txn.ops.append(("hset", key, {"data": data, "rev": revision}))
        txn.ops.append(("sadd", self._key("c", parent), name))
        return revision

    def _link(self, path: str, txn: _Transaction) -> None:
        parent, name = posixpath.split(path)
        txn.ops.append(("sadd", self._key("c", parent), name))

    def _delete(self, path: str, txn: _Transaction) -> None:
        # Records' children are links (set members), so this is everything under path.
        parent, name = posixpath.split(path)
        txn.ops.append(("delete", self._key("r", path), self._key("c", path),
                        self._key("d", path)))
        txn.ops.append(("srem", self._key("c", parent), name))

    def _ensure_dir(self, path: str) -> None:
        with self._errors("create a directory"):
            self._client.set(self._key("d", path), b"1")

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[_Transaction]:
        with self._errors("write"), self._client.pipeline(transaction=True) as pipe:
            txn = _Transaction(pipe)
            yield txn
            if not txn.ops:
                return
            pipe.multi()
            for op, *args in txn.ops:
                if op == "hset":
                    pipe.hset(args[0], mapping=args[1])
                else:
                    getattr(pipe, op)(*args)
            try:
                pipe.execute()
            except redis.WatchError:
                raise Conflict(f"records of this transaction were changed by another "
                               f"writer before it committed ({', '.join(txn.revisions)}); "
                               f"nothing was written") from None
