"""Native async backends: the synchronous backend's code, with a driver that awaits.

A native implementation builds the *synchronous* backend over a client whose
I/O is asynchronous (SQLAlchemy's asyncio engine; kazoo's ``*_async`` calls
bridged to asyncio futures) and runs each connection method in a greenlet
on the event loop (:mod:`persistence.aio.bridge`).  The statements, codec,
path layout and record logic are the synchronous backend's; only the lowest
call, the one that would block on the network, is awaited.

A call on the async connection runs to its end as a task of its own: a
caller cancelled while waiting stops waiting at once, but the transaction is
neither cut in half nor left unknown; the connection takes its next call
once it is over.  AsyncStorage's calls (:mod:`.awaiting`) run in the
storage call's own greenlet instead (:meth:`GreenConnection._run_here`),
which already runs to its end: no task, no greenlet and, when the
connection is free, no await beyond the backend's own I/O.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from ..backends.base import Backend, Connection
from . import bridge
from .connection import AsyncBackend, OverSyncConnection, run_method

__all__ = ["GreenBackend", "GreenConnection", "Spawn", "Turns"]

#: Runs a synchronous callable in a greenlet on the running loop, awaiting its I/O.
Spawn = Callable[..., Awaitable[Any]]


class Turns:
    """One call at a time (on a connection, or on the one connection of a store), in
    the order asked.  Used as ``async with turns:``, like asyncio.Lock, and by the
    bridge with :meth:`take_now`, which takes free turns without handing the event
    loop anything (asyncio.Lock can only be taken by awaiting)."""

    def __init__(self) -> None:
        self._held = False
        self._waiting: collections.deque[asyncio.Future] = collections.deque()

    def take_now(self) -> bool:
        """Take the turns if nobody holds nor waits for them; whether it did."""
        if self._held or self._waiting:
            return False
        self._held = True
        return True

    async def take(self) -> None:
        """Take the turns, after those who asked before."""
        if self.take_now():
            return
        turn = asyncio.get_running_loop().create_future()
        self._waiting.append(turn)
        try:
            await turn   # give() hands the turns over: still held
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():   # handed over as we were cancelled
                self.give()
            else:
                with contextlib.suppress(ValueError):
                    self._waiting.remove(turn)
            raise

    def give(self) -> None:
        """Hand the turns to the first one waiting, or free them."""
        while self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        self._held = False

    async def __aenter__(self) -> None:
        await self.take()

    async def __aexit__(self, *exc_info: object) -> None:
        self.give()


class GreenConnection(OverSyncConnection):
    """A synchronous connection of a native backend, its methods run in greenlets."""

    def __init__(self, backend: GreenBackend, conn: Connection) -> None:
        super().__init__(backend, conn)
        self._spawn = backend.spawn
        self._lock = backend.shared_lock or Turns()

    async def _locked(self, fn: Callable[..., Any], *args: Any) -> Any:
        async with self._lock:
            return await self._spawn(fn, *args)

    def _run_here(self, name: str, args: tuple, kwargs: dict) -> Any:
        """Run contract method ``name`` in the calling greenlet of
        :func:`~persistence.aio.bridge.run_sync` (AsyncStorage's): its I/O is awaited
        by that greenlet's task, with no task nor greenlet of its own.  Once started
        it runs to its end, whoever stops waiting."""
        lock = self._lock
        if not lock.take_now():
            bridge.wait(lock.take())
        try:
            with bridge.uninterrupted():
                return run_method(self._conn, name, args, kwargs)
        finally:
            lock.give()


class GreenBackend(AsyncBackend):
    """A synchronous backend built over an asynchronous driver (see the module docstring)."""

    io: ClassVar[str] = "native"

    def __init__(self, sync: Backend, spawn: Spawn, shared: bool = False) -> None:
        super().__init__(sync)
        self.spawn = spawn
        #: One lock for every connection, where the store is one connection (sqlite
        #: in memory): greenlets share a thread, so the sync backend's RLock cannot.
        self.shared_lock = Turns() if shared else None

    async def get_connection(self) -> GreenConnection:
        """A connection of the synchronous backend (opening it does no I/O)."""
        return GreenConnection(self, await self.spawn(self._sync.get_connection))

    async def _close(self) -> None:
        # run_sync, not spawn: the caller runs no task of its own that nobody cancels.
        await bridge.run_sync(self._sync.close)
