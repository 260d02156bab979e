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
from . import bridge
from .connection import AsyncBackend, OverSyncConnection, run_method

__all__ = ["GreenBackend", "GreenConnection", "Spawn"]

#: Runs a synchronous callable in a greenlet on the running loop, awaiting its I/O.
Spawn = Callable[..., Awaitable[Any]]


class GreenConnection(OverSyncConnection):
    """A synchronous connection of a native backend, its methods run in greenlets."""

    def __init__(self, backend: GreenBackend, conn: Connection) -> None:
        super().__init__(backend, conn)
        self._spawn = backend.spawn
        self._lock = backend.shared_lock or asyncio.Lock()

    async def _locked(self, fn: Callable[..., Any], *args: Any) -> Any:
        async with self._lock:
            return await self._spawn(fn, *args)

    def _run_here(self, name: str, args: tuple, kwargs: dict) -> Any:
        """Run contract method ``name`` in the calling greenlet of
        :func:`~persistence.aio.bridge.run_sync` (AsyncStorage's): its I/O is awaited
        by that greenlet's task, with no task nor greenlet of its own.  Once started
        it runs to its end, whoever stops waiting."""
        lock = self._lock
        bridge.wait(lock.acquire())
        try:
            with bridge.uninterrupted():
                return run_method(self._conn, name, args, kwargs)
        finally:
            lock.release()


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
