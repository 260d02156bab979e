"""The TaskFlow backend class: TaskFlow's configuration in, one of our backends inside.

Example configuration (what a TaskFlow application passes to
``taskflow.persistence.backends.fetch`` or to ``taskflow.engines.load``)::

    {"connection": "persistence+postgresql://user@db.example/flows"}
    {"connection": "persistence+sqlite:///var/lib/app/flows.db"}
    {"connection": "persistence+dir", "path": "/var/lib/app/flows"}
    {"connection": "persistence+file:///var/lib/app/flows"}
    {"connection": "persistence+zookeeper://zk1:2181,zk2:2181/app/flows"}
    {"connection": "persistence+memory://"}

Everything after ``persistence+`` is what :func:`persistence.fetch` takes;
the other keys are the backend's options (``history``, ``pool_size``, …).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from taskflow.persistence import base as tf_base
from taskflow.utils import misc as tf_misc

from ...backends.base import Backend
from ...backends.registry import fetch
from ...backends.url import mask_password
from ...exceptions import ConfigurationError
from .connection import TaskFlowConnection
from .errors import translated

__all__ = ["TaskFlowBackend", "PREFIX", "inner_configuration"]

#: The scheme prefix that sends TaskFlow's ``fetch()`` to this plugin.
PREFIX = "persistence+"

_SCHEME_ONLY = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


def _added_from_uri(connection: str) -> dict[str, Any]:
    """The keys TaskFlow's ``fetch()`` copied from the URI into the configuration
    (user, password, host, port and query parameters): our ``fetch()`` reads them
    from the URI again, and a key we do not know would be refused."""
    try:
        uri = tf_misc.parse_uri(connection)
    except (TypeError, ValueError):
        return {}
    return tf_misc.merge_uri(uri, {})


def inner_configuration(conf: Mapping[str, Any]) -> dict[str, Any]:
    """Our backend configuration for the plugin's TaskFlow configuration ``conf``.

    ``{"connection": "persistence+dir", "path": "/x"}`` gives
    ``{"connection": "dir", "path": "/x"}``; a URI keeps everything after the
    prefix, and the keys TaskFlow derived from it are dropped unless the
    application set them to other values itself.
    """
    connection = conf.get("connection")
    if not isinstance(connection, str) or not connection.lower().startswith(PREFIX):
        shown = mask_password(connection) if isinstance(connection, str) else repr(connection)
        raise ConfigurationError(
            f"the TaskFlow plugin's 'connection' must be '{PREFIX}<backend>…', e.g. "
            f"'{PREFIX}sqlite:///flows.db' or '{PREFIX}dir' with a 'path'; got {shown!r}")
    rest = connection[len(PREFIX):]
    if _SCHEME_ONLY.fullmatch(rest):     # TaskFlow style "memory:" names a backend
        rest = rest[:-1]
    if not rest or rest.startswith(":"):
        raise ConfigurationError(
            f"name the backend after '{PREFIX}', e.g. '{PREFIX}postgresql://host/db' "
            f"(got {mask_password(connection)!r})")
    derived = _added_from_uri(connection)
    inner: dict[str, Any] = {"connection": rest}
    for key, value in conf.items():
        if key == "connection" or (key in derived and derived[key] == value):
            continue
        inner[key] = value
    return inner


class TaskFlowBackend(tf_base.Backend):
    """A TaskFlow persistence backend storing through one of our backends.

    TaskFlow's ``fetch()`` reports any error raised while it builds a backend
    as ``NotFound("Could not find backend persistence")`` and only logs the
    reason.  So a configuration this plugin cannot build a backend from does
    not raise here: the error (ours, typed, saying what to fix) is raised by
    :meth:`get_connection` and every use after it.
    """

    def __init__(self, conf: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(dict(conf) if isinstance(conf, Mapping) else conf)
        self._owned = True
        self._backend: Backend | None = None
        self._error: BaseException | None = None
        try:
            self._backend = fetch(inner_configuration(self._conf), **kwargs)
        except Exception as err:    # kept for get_connection(), see the class docstring
            self._error = err

    @classmethod
    def wrap(cls, backend: Backend) -> TaskFlowBackend:
        """A TaskFlow backend storing through an existing ``backend`` (e.g. a memory
        backend the caller also reads directly); closing it leaves ``backend`` open."""
        adapter = cls.__new__(cls)
        tf_base.Backend.__init__(adapter, {})
        adapter._owned, adapter._backend, adapter._error = False, backend, None
        return adapter

    @property
    def persistence_backend(self) -> Backend:
        """Our backend underneath, for what TaskFlow's API does not offer
        (history, snapshots, claims, summaries)."""
        if self._backend is None:
            self._raise_error()
        return self._backend

    @property
    def store(self) -> object:
        """What identifies the store written to: the token our backends share per
        store (:func:`persistence.base.store_token`), else the backend itself."""
        backend = self.persistence_backend
        token = getattr(backend, "token", None)
        return token if token is not None else backend

    def _raise_error(self) -> None:
        assert self._error is not None
        with translated():
            raise self._error

    def get_connection(self) -> TaskFlowConnection:
        """A TaskFlow connection storing through a new connection of our backend."""
        backend = self.persistence_backend
        with translated():
            return TaskFlowConnection(self, backend.get_connection())

    def close(self) -> None:
        """Close our backend (unless it was :meth:`wrap`-ped: its owner closes it)."""
        if self._owned and self._backend is not None:
            with translated():
                self._backend.close()

    def __repr__(self) -> str:
        if self._backend is None:
            return f"<{type(self).__name__} unusable: {type(self._error).__name__}>"
        return f"<{type(self).__name__} over {type(self._backend).__name__}>"
