"""An :class:`AsyncBackend` seen as a synchronous backend from inside the bridge.

:class:`~persistence.aio.storage.AsyncStorage` runs the unchanged
:class:`~persistence.runtime.storage.Storage` in a greenlet
(:func:`persistence.aio.bridge.run_sync`); Storage's collaborators call a
synchronous connection, and this one turns each call into an awaited call of
the async connection (:func:`persistence.aio.bridge.wait`).
"""

from __future__ import annotations

from typing import Any

from . import bridge
from .connection import METHODS, AsyncBackend, AsyncConnection

__all__ = ["AwaitingBackend", "AwaitingConnection"]


class AwaitingConnection:
    """A synchronous face of an AsyncConnection, usable only inside the bridge."""

    def __init__(self, backend: AwaitingBackend, aconn: AsyncConnection) -> None:
        self.backend = backend
        self.aconn = aconn

    @property
    def owner(self) -> str | None:
        return self.aconn.owner

    @owner.setter
    def owner(self, value: str | None) -> None:
        self.aconn.owner = value

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        aconn = self.aconn
        here = getattr(aconn, "_run_here", None)
        if name in METHODS and here is not None:   # a native backend: in this greenlet
            def call(*args: Any, **kwargs: Any) -> Any:
                return here(name, args, kwargs)
        elif name in METHODS:
            def call(*args: Any, **kwargs: Any) -> Any:
                return bridge.wait(aconn._submit(name, args, kwargs))
        else:
            method = getattr(aconn, name)

            def call(*args: Any, **kwargs: Any) -> Any:
                return bridge.wait(method(*args, **kwargs))
        call.__name__ = name
        self.__dict__[name] = call   # built once per name
        return call

    def close(self) -> None:
        """Close the async connection."""
        bridge.wait(self.aconn.close())


class AwaitingBackend:
    """A synchronous face of an AsyncBackend, usable only inside the bridge."""

    def __init__(self, abackend: AsyncBackend) -> None:
        self.abackend = abackend

    def __getattr__(self, name: str) -> Any:
        if name.startswith("supports_"):
            return getattr(self.abackend, name)
        raise AttributeError(name)

    def get_connection(self) -> AwaitingConnection:
        """A new connection of the async backend."""
        return AwaitingConnection(self, bridge.wait(self.abackend.get_connection()))

    def close(self) -> None:
        """Close the async backend."""
        bridge.wait(self.abackend.close())

    def __repr__(self) -> str:
        return f"<awaiting {self.abackend!r}>"
