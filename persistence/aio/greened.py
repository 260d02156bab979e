"""Native async backends: the synchronous backend's code, with a driver that awaits.

A native implementation builds the *synchronous* backend over a client whose
I/O is asynchronous (SQLAlchemy's asyncio engine; kazoo's ``*_async`` calls
bridged to asyncio futures) and runs each connection method in a greenlet
on the event loop (:func:`persistence.aio.bridge.run_sync`, or SQLAlchemy's
own ``greenlet_spawn`` for its drivers).  The statements, codec, path layout
and record logic are the synchronous backend's; only the lowest call, the
one that would block on the network, is awaited.

Each call runs to its end as a task of its own: a caller cancelled while
waiting stops waiting at once, but the transaction is neither cut in half
nor left unknown; the connection takes its next call once it is over.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from ..backends.base import Backend, Connection
from .connection import AsyncBackend, AsyncConnection, materialize

__all__ = ["GreenBackend", "GreenConnection", "Spawn"]

#: Runs a synchronous callable in a greenlet on the running loop, awaiting its I/O.
Spawn = Callable[..., Awaitable[Any]]


def _run(conn: Connection, name: str, args: tuple, kwargs: dict) -> Any:
    return materialize(name, getattr(conn, name)(*args, **kwargs))


class GreenConnection(AsyncConnection):
    """A synchronous connection of a native backend, its methods run in greenlets."""

    def __init__(self, backend: GreenBackend, conn: Connection) -> None:
        super().__init__(backend)
        self._conn = conn
        self._spawn = backend.spawn
        self._lock = backend.shared_lock or asyncio.Lock()

    def _owner(self) -> str | None:
        return self._conn.owner

    def _set_owner(self, value: str | None) -> None:
        self._conn.owner = value

    async def _locked(self, fn: Callable[..., Any], *args: Any) -> Any:
        async with self._lock:
            return await self._spawn(fn, *args)

    def _submit(self, name: str, args: tuple, kwargs: dict) -> asyncio.Future:
        # A task of its own: it runs to its end whoever stops waiting for it.
        return asyncio.ensure_future(self._locked(_run, self._conn, name, args, kwargs))

    async def _call(self, name: str, args: tuple, kwargs: dict) -> Any:
        return await asyncio.shield(self._submit(name, args, kwargs))

    async def close(self) -> None:
        """Close the synchronous connection (giving back its pooled connection)."""
        await asyncio.shield(asyncio.ensure_future(self._locked(self._conn.close)))


class GreenBackend(AsyncBackend):
    """A synchronous backend built over an asynchronous driver (see the module docstring)."""

    io: ClassVar[str] = "native"

    def __init__(self, sync: Backend, spawn: Spawn, shared: bool = False) -> None:
        super().__init__(sync)
        self.spawn = spawn
        #: One lock for every connection, where the store is one connection (sqlite
        #: in memory): greenlets share a thread, so the sync backend's RLock cannot.
        self.shared_lock = asyncio.Lock() if shared else None

    async def get_connection(self) -> GreenConnection:
        """A connection of the synchronous backend (opening it does no I/O)."""
        return GreenConnection(self, await self.spawn(self._sync.get_connection))

    async def _close(self) -> None:
        await self.spawn(self._sync.close)
