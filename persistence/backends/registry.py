"""Backend names -> backend classes; fetch() and backend() build one from a URI or dict.

A name is looked up, in order, among the backends registered in this process
(:func:`register_backend`: tests, applications embedding their own), the
built-in table :data:`BUILTIN` (name -> target and the extra that installs
its dependencies), then the ``persistence.backends`` entry points of installed
distributions (third-party plugins).  The class found turns a parsed URL into
its configuration (:meth:`Backend.conf_from_url <persistence.backends.base.Backend.conf_from_url>`).

Three failures stay apart, each with its own message: no backend of that name
(:class:`~persistence.exceptions.NotFound`, listing the installed ones), a
backend whose optional dependency is missing
(:class:`~persistence.exceptions.MissingDependency`, with the extra to install),
and bad configuration (the backend constructor's own error).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import importlib.metadata
import logging
from collections.abc import Iterator, Mapping
from typing import Any

from stevedore import driver
from stevedore.exception import NoMatches

from ..exceptions import MissingDependency, NotFound
from .base import Backend
from .url import BackendURL, make_url, mask_password

__all__ = ["fetch", "backend", "available_backends", "register_backend", "unregister_backend",
           "BUILTIN", "BackendEntry", "NAMESPACE"]

LOG = logging.getLogger(__name__)
NAMESPACE = "persistence.backends"


@dataclasses.dataclass(frozen=True)
class BackendEntry:
    """Where a backend class lives (``"module:Class"``) and the extra of
    ``persistence`` that installs its dependencies (None: nothing to install)."""

    target: str
    extra: str | None = None


_SQL = "persistence.backends.sql:SQLAlchemyBackend"
#: The backends shipped with persistence (pyproject's entry points name the same).
BUILTIN: Mapping[str, BackendEntry] = {
    "memory": BackendEntry("persistence.backends.memory:MemoryBackend"),
    "dir": BackendEntry("persistence.backends.dir:DirBackend"),
    "file": BackendEntry("persistence.backends.dir:DirBackend"),
    "sqlite": BackendEntry(_SQL, "sql"),
    "sqlalchemy": BackendEntry(_SQL, "sql"),
    "postgresql": BackendEntry(_SQL, "postgresql"),
    "postgres": BackendEntry(_SQL, "postgresql"),
    "mysql": BackendEntry(_SQL, "mysql"),
    "zookeeper": BackendEntry("persistence.backends.zookeeper:ZkBackend", "zookeeper"),
    "taskflow": BackendEntry("persistence.backends.taskflow:TaskFlowStoreBackend"),
}
_REGISTERED: dict[tuple[str, str], str | type[Backend]] = {}


def register_backend(name: str, target: str | type[Backend],
                     namespace: str = NAMESPACE) -> None:
    """Make ``fetch()`` find ``name`` in this process: ``target`` is a Backend
    subclass or its ``"module:Class"`` path (imported on first use).  Consulted
    before the built-in table and entry points; no distribution to install."""
    if not isinstance(name, str) or not name or name != name.lower() or "+" in name:
        raise ValueError(f"a backend name is a non-empty lower-case string without '+', "
                         f"not {name!r}")
    if isinstance(target, str):
        if ":" not in target:
            raise ValueError(f"target {target!r} must read 'module:Class'")
    elif not (isinstance(target, type) and issubclass(target, Backend)):
        raise TypeError(f"target must be a Backend subclass or a 'module:Class' string, "
                        f"not {target!r}")
    _REGISTERED[(namespace, name)] = target


def unregister_backend(name: str, namespace: str = NAMESPACE) -> None:
    """Forget a :func:`register_backend` registration (NotFound if there is none)."""
    if _REGISTERED.pop((namespace, name), None) is None:
        raise NotFound(f"no backend {name!r} registered in this process")


def available_backends(namespace: str = NAMESPACE) -> list[str]:
    """Names of the backends installed under ``namespace`` (and registered in this process)."""
    names = {ep.name for ep in importlib.metadata.entry_points(group=namespace)}
    names.update(n for ns, n in _REGISTERED if ns == namespace)
    return sorted(names)


def _resolve(conf: Any) -> tuple[str, BackendURL | None, dict[str, Any]]:
    """(backend name, parsed URL or None, the dict's own keys) of a configuration."""
    if isinstance(conf, str):
        url = make_url(conf)
        return url.backend, url, {}
    if isinstance(conf, Mapping):
        if "connection" not in conf:
            raise TypeError("a backend configuration dict needs a 'connection' key naming "
                            "the backend or holding a URI, e.g. {'connection': 'memory'}")
        connection = conf["connection"]
        if not isinstance(connection, str) or not connection:
            raise TypeError(f"conf['connection'] must be a backend name or URI string, "
                            f"not {type(connection).__name__}")
        if "://" in connection:
            url = make_url(connection)
            return url.backend, url, dict(conf)
        return connection.partition("+")[0].lower(), None, dict(conf)
    raise TypeError(f"fetch() expects a URI string or a dict with a 'connection' key, "
                    f"not {type(conf).__name__}")


def _reraise(manager: Any, entrypoint: Any, err: BaseException) -> None:
    raise err


def _import(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def _find(name: str, namespace: str) -> type[Backend]:
    registered = _REGISTERED.get((namespace, name))
    if registered is not None:
        return _import(registered) if isinstance(registered, str) else registered
    builtin = BUILTIN.get(name) if namespace == NAMESPACE else None
    if builtin is not None:
        return _import(builtin.target)
    try:
        return driver.DriverManager(namespace, name, invoke_on_load=False,
                                    on_load_failure_callback=_reraise).driver
    except NoMatches:
        installed = ", ".join(available_backends(namespace)) or "none"
        raise NotFound(f"no backend named {name!r} in entry-point group {namespace!r}; "
                       f"installed backends: {installed}") from None


def _load(name: str, namespace: str) -> type[Backend]:
    try:
        return _find(name, namespace)
    except MissingDependency:
        raise
    except ImportError as err:
        entry = BUILTIN.get(name)
        hint = (f"pip install 'persistence[{entry.extra}]'" if entry and entry.extra
                else "install the distribution that provides it and its dependencies")
        raise MissingDependency(f"backend {name!r} cannot be loaded: {err}; {hint}") from err
    except AttributeError as err:
        raise MissingDependency(f"backend {name!r} is registered in {namespace!r} but its "
                                f"entry point names something its module does not define "
                                f"({err}); reinstall the distribution that provides it") from err


def fetch(conf: str | Mapping[str, Any], namespace: str = NAMESPACE, **kwargs: Any) -> Backend:
    """Build a new backend from a URI or a configuration dict.

    ``fetch("memory://")``, ``fetch("sqlite:///flows.db")``,
    ``fetch({"connection": "dir", "path": "/var/lib/flows"})``.  Keyword
    arguments go to the backend's constructor (e.g. an existing client).
    A fresh backend is built on every call.
    """
    name, url, own = _resolve(conf)
    LOG.debug("Fetching backend %r from %s", name,
              mask_password(own.get("connection", url.raw if url else name)))
    cls = _load(name, namespace)
    backend_conf = cls.conf_from_url(url) if url is not None else {}
    backend_conf.update(own)
    return cls(backend_conf, **kwargs)


@contextlib.contextmanager
def backend(conf: str | Mapping[str, Any], namespace: str = NAMESPACE,
            **kwargs: Any) -> Iterator[Backend]:
    """Fetch a backend, upgrade its schema, yield it, and close it on exit (also on error)."""
    be = fetch(conf, namespace=namespace, **kwargs)
    try:
        with contextlib.closing(be.get_connection()) as conn:
            conn.upgrade()
        yield be
    finally:
        be.close()
