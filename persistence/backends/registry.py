"""fetch() and backend(): a URI or dict → entry point → configured backend.

Three failures stay apart, each with its own message: no backend of that name
(:class:`~persistence.exceptions.NotFound`, listing the installed ones), a
backend whose optional dependency is missing
(:class:`~persistence.exceptions.MissingDependency`, with the extra to install),
and bad configuration (the backend constructor's own error).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
from collections.abc import Iterator, Mapping
from typing import Any

from stevedore import driver
from stevedore.exception import NoMatches

from ..exceptions import MissingDependency, NotFound
from .base import Backend
from .url import make_url, mask_password

__all__ = ["fetch", "backend", "available_backends", "NAMESPACE"]

LOG = logging.getLogger(__name__)
NAMESPACE = "persistence.backends"

# Extras that provide the dependencies of the built-in backends.
_EXTRAS = {"sqlite": "sql", "sqlalchemy": "sql", "postgresql": "postgresql",
           "postgres": "postgresql", "mysql": "mysql", "zookeeper": "zookeeper"}


def available_backends(namespace: str = NAMESPACE) -> list[str]:
    """Names of the backends installed under ``namespace``."""
    return sorted({ep.name for ep in importlib.metadata.entry_points(group=namespace)})


def _resolve(conf: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(conf, str):
        url = make_url(conf)
        return url.backend, url.to_conf()
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
            merged = url.to_conf()
            merged.update(conf)
            return url.backend, merged
        return connection.partition("+")[0].lower(), dict(conf)
    raise TypeError(f"fetch() expects a URI string or a dict with a 'connection' key, "
                    f"not {type(conf).__name__}")


def _reraise(manager: Any, entrypoint: Any, err: BaseException) -> None:
    raise err


def fetch(conf: str | Mapping[str, Any], namespace: str = NAMESPACE, **kwargs: Any) -> Backend:
    """Build a new backend from a URI or a configuration dict.

    ``fetch("memory://")``, ``fetch("sqlite:///flows.db")``,
    ``fetch({"connection": "dir", "path": "/var/lib/flows"})``.  Keyword
    arguments go to the backend's constructor (e.g. an existing client).
    A fresh backend is built on every call.
    """
    name, backend_conf = _resolve(conf)
    LOG.debug("Fetching backend %r from %s", name,
              mask_password(backend_conf.get("connection", name)))
    try:
        manager = driver.DriverManager(namespace, name, invoke_on_load=False,
                                       on_load_failure_callback=_reraise)
    except NoMatches:
        installed = ", ".join(available_backends(namespace)) or "none"
        raise NotFound(f"no backend named {name!r} in entry-point group {namespace!r}; "
                       f"installed backends: {installed}") from None
    except MissingDependency:
        raise
    except ImportError as err:
        extra = _EXTRAS.get(name)
        hint = (f"pip install 'persistence[{extra}]'" if extra
                else "install the distribution that provides it and its dependencies")
        raise MissingDependency(f"backend {name!r} cannot be loaded: {err}; {hint}") from err
    except AttributeError as err:
        raise MissingDependency(f"backend {name!r} is registered in {namespace!r} but its "
                                f"entry point names something its module does not define "
                                f"({err}); reinstall the distribution that provides it") from err
    return manager.driver(backend_conf, **kwargs)


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
