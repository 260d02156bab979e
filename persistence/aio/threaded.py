"""Any synchronous backend under asyncio: its connection's calls in a thread.

This is what ``persistence.aio.fetch`` uses for a backend that publishes no
native async implementation (third-party ones included), and for ``dir``
and ``taskflow``, whose blocking parts are file system calls.  Each call of
a connection runs in the event loop's default executor, one at a time per
connection (a synchronous connection is not shared by threads at once).  A
cancelled call stops being awaited at once, but its thread finishes the
call, and the connection takes no other call until it has.

``memory`` runs inline (:class:`InlineBackend`): its operations are a few
microseconds of in-process work, cheaper than any hop to a thread.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any, ClassVar

from ..backends.base import Backend, Connection
from .connection import AsyncBackend, AsyncConnection, OverSyncConnection, run_method

__all__ = ["ThreadedBackend", "ThreadedConnection", "InlineBackend", "InlineConnection"]


class ThreadedConnection(OverSyncConnection):
    """A synchronous connection whose calls run in a thread, one at a time (a thread
    cannot be stopped: a call always ends)."""

    def __init__(self, backend: AsyncBackend, conn: Connection) -> None:
        super().__init__(backend, conn)
        self._lock = asyncio.Lock()

    async def _locked(self, fn: Any, *args: Any) -> Any:
        async with self._lock:
            return await asyncio.get_running_loop().run_in_executor(
                None, functools.partial(fn, *args))


class ThreadedBackend(AsyncBackend):
    """A synchronous backend whose blocking calls run in threads."""

    io: ClassVar[str] = "threads"

    def __init__(self, sync: Backend) -> None:
        super().__init__(sync)

    async def get_connection(self) -> ThreadedConnection:
        """A connection of the synchronous backend, wrapped (opened in a thread)."""
        return ThreadedConnection(self, await asyncio.to_thread(self._sync.get_connection))

    async def _close(self) -> None:
        await asyncio.to_thread(self._sync.close)


class InlineConnection(AsyncConnection):
    """A synchronous connection that never blocks, called on the event loop itself."""

    def __init__(self, backend: AsyncBackend, conn: Connection) -> None:
        super().__init__(backend)
        self._conn = conn

    def _owner(self) -> str | None:
        return self._conn.owner

    def _set_owner(self, value: str | None) -> None:
        self._conn.owner = value

    async def _call(self, name: str, args: tuple, kwargs: dict) -> Any:
        return run_method(self._conn, name, args, kwargs)

    async def close(self) -> None:
        """Close the synchronous connection."""
        self._conn.close()


class InlineBackend(AsyncBackend):
    """A synchronous backend whose calls do no blocking I/O (``memory``)."""

    io: ClassVar[str] = "inline"

    async def get_connection(self) -> InlineConnection:
        """A connection of the synchronous backend, wrapped."""
        return InlineConnection(self, self._sync.get_connection())

    async def _close(self) -> None:
        self._sync.close()
