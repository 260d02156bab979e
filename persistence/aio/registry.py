"""``persistence.aio.fetch`` / ``backend``: an async backend from a URI or dict.

The configuration is read exactly as :func:`persistence.fetch` reads it (the
synchronous backend class's ``conf_from_url``).  Then, for backend name
``NAME``:

1. a native implementation registered in this process
   (:func:`register_async_backend`), shipped with persistence
   (:data:`NATIVE`: the SQL databases and ZooKeeper; ``memory`` inline), or
   published by a distribution under the ``persistence.aio_backends``
   entry-point group as ``NAME = "module:Class"``.  The class has a
   classmethod ``build(conf, **kwargs)`` returning an
   :class:`~persistence.aio.connection.AsyncBackend`, or None to decline
   (e.g. a SQL URL whose driver has no async counterpart);
2. otherwise the synchronous backend in threads
   (:class:`~persistence.aio.threaded.ThreadedBackend`): every backend,
   third-party ones included, works under asyncio with nothing to write.

``fetch(conf, io="threads")`` skips step 1 (the synchronous backend in
threads, whatever native implementation exists); ``io="native"`` requires
one (ConfigurationError if there is none).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
from collections.abc import AsyncIterator, Mapping
from typing import Any

from ..backends import registry as sync_registry
from ..exceptions import ConfigurationError
from .connection import AsyncBackend
from .threaded import InlineBackend, ThreadedBackend

__all__ = ["fetch", "backend", "register_async_backend", "NATIVE", "NAMESPACE"]

NAMESPACE = "persistence.aio_backends"

_SQL = "persistence.aio.sql:AsyncSQLBackend"
#: The native implementations shipped with persistence (pyproject's entry points agree).
NATIVE: Mapping[str, str] = {
    "sqlite": _SQL, "sqlalchemy": _SQL, "postgresql": _SQL, "postgres": _SQL, "mysql": _SQL,
    "zookeeper": "persistence.aio.zookeeper:AsyncZkBackend",
}
#: Backends whose calls never block: run on the loop itself.
_INLINE = frozenset({"memory"})
_REGISTERED: dict[str, Any] = {}
#: The values of fetch(io=...).
IO_CHOICES = (None, "native", "threads")


def register_async_backend(name: str, target: Any) -> None:
    """Use ``target`` (a class with ``build(conf, **kwargs)``, or its ``"module:Class"``)
    for backend ``name`` in this process, before the shipped table and entry points."""
    if not isinstance(name, str) or not name or name != name.lower():
        raise ValueError(f"a backend name is a non-empty lower-case string, not {name!r}")
    if isinstance(target, str) and ":" not in target:
        raise ValueError(f"target {target!r} must read 'module:Class'")
    _REGISTERED[name] = target


def _native(name: str) -> Any:
    target = _REGISTERED.get(name) or NATIVE.get(name)
    if target is None:
        found = [ep for ep in importlib.metadata.entry_points(group=NAMESPACE)
                 if ep.name == name]
        if not found:
            return None
        return found[0].load()
    return sync_registry._import(target) if isinstance(target, str) else target


def _build(conf: str | Mapping[str, Any], io: str | None,
           kwargs: dict[str, Any]) -> AsyncBackend:
    if io not in IO_CHOICES:
        raise ConfigurationError(f"io={io!r}: choose one of None (native where there is an "
                                 f"implementation), 'native' or 'threads'")
    name, url, own = sync_registry._resolve(conf)
    cls = sync_registry._load(name, sync_registry.NAMESPACE)
    backend_conf = cls.conf_from_url(url) if url is not None else {}
    backend_conf.update(own)
    native = _native(name) if io != "threads" else None
    if native is not None:
        built = native.build(backend_conf, **kwargs)
        if built is not None:
            return built
    if io == "native":
        raise ConfigurationError(f"backend {name!r} has no native async implementation for "
                                 f"this configuration (a driver without an async "
                                 f"counterpart, or an engine passed in); leave io= unset to "
                                 f"run it in threads")
    sync = cls(backend_conf, **kwargs)
    return InlineBackend(sync) if name in _INLINE and io is None else ThreadedBackend(sync)


async def fetch(conf: str | Mapping[str, Any], *, io: str | None = None,
                **kwargs: Any) -> AsyncBackend:
    """A new async backend from a URI or configuration dict (see the module docstring).

    ``io``: None (native where there is an implementation, else threads),
    ``"native"`` or ``"threads"``.  Other keyword arguments go to the backend's
    constructor, as with :func:`persistence.fetch`.
    """
    return await asyncio.to_thread(_build, conf, io, kwargs)


@contextlib.asynccontextmanager
async def backend(conf: str | Mapping[str, Any], *, io: str | None = None,
                  **kwargs: Any) -> AsyncIterator[AsyncBackend]:
    """Fetch an async backend (``io`` as :func:`fetch`), upgrade its schema, yield it,
    close it on exit."""
    be = await fetch(conf, io=io, **kwargs)
    try:
        conn = await be.get_connection()
        try:
            await conn.upgrade()
        finally:
            await conn.close()
        yield be
    finally:
        await be.close()
