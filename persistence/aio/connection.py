"""The asynchronous contract: :class:`AsyncBackend` and :class:`AsyncConnection`.

An ``AsyncConnection`` has every method of the synchronous
:class:`~persistence.backends.base.Connection`, by the same name and with the
same arguments and errors, as a coroutine: ``await conn.save_logbook(book)``.
Methods that return an iterator in the synchronous contract
(``get_logbooks``, ``get_flows_for_book``, ``get_atoms_for_flow``) return a
list.  Implementations provide one method, :meth:`AsyncConnection._call`,
which runs the synchronous method of that name the way the implementation
does its I/O (in a thread, or in a greenlet whose driver awaits: see
:mod:`.threaded` and :mod:`.greened`); the record, path and statement logic
is the synchronous backend's, never written twice.
"""

from __future__ import annotations

import abc
import asyncio
import inspect
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, ClassVar

from ..backends.base import Backend, Connection

__all__ = ["AsyncBackend", "AsyncConnection", "OverSyncConnection", "METHODS", "LISTS",
           "run_method"]

#: The contract's methods that return iterators: their async form returns a list.
LISTS = frozenset({"get_logbooks", "get_flows_for_book", "get_atoms_for_flow"})
#: Not mirrored as coroutines: closing is async (own method), the rest are attributes.
_NOT_MIRRORED = frozenset({"close", "backend", "owner"})


def _contract_methods() -> tuple[str, ...]:
    return tuple(sorted(name for name, member in inspect.getmembers(Connection)
                        if not name.startswith("_") and name not in _NOT_MIRRORED
                        and callable(member)))


#: Every public method of the synchronous Connection, mirrored by AsyncConnection.
METHODS: tuple[str, ...] = _contract_methods()


def _mirror(name: str) -> Callable[..., Any]:
    sync = getattr(Connection, name)

    async def method(self: AsyncConnection, *args: Any, **kwargs: Any) -> Any:
        return await self._call(name, args, kwargs)
    method.__name__ = method.__qualname__ = name
    method.__doc__ = (sync.__doc__ or "").strip() + (
        "\n\n(A coroutine; a list where the synchronous method returns an iterator.)"
        if name in LISTS else "\n\n(A coroutine.)")
    return method


def materialize(name: str, result: Any) -> Any:
    """A contract method's result as the async form returns it (iterators become lists)."""
    return list(result) if name in LISTS and isinstance(result, Iterator) else result


def run_method(conn: Connection, name: str, args: tuple, kwargs: dict) -> Any:
    """Call the synchronous method ``name`` of ``conn``; its result as the async form has it."""
    return materialize(name, getattr(conn, name)(*args, **kwargs))


class AsyncConnection(abc.ABC):
    """A connection whose methods are coroutines mirroring :class:`Connection`'s."""

    def __init__(self, backend: AsyncBackend) -> None:
        self._backend = backend

    @property
    def backend(self) -> AsyncBackend:
        """The async backend this connection belongs to."""
        return self._backend

    @property
    def owner(self) -> str | None:
        """Who writes through this connection (recorded in history entries)."""
        return self._owner()

    @owner.setter
    def owner(self, value: str | None) -> None:
        self._set_owner(value)

    @abc.abstractmethod
    def _owner(self) -> str | None:
        """The owner set on the underlying connection."""

    @abc.abstractmethod
    def _set_owner(self, value: str | None) -> None:
        """Set the owner on the underlying connection."""

    @abc.abstractmethod
    async def _call(self, name: str, args: tuple, kwargs: dict) -> Any:
        """Run the synchronous contract method ``name`` and return its (materialized) result."""

    def _submit(self, name: str, args: tuple, kwargs: dict) -> Awaitable[Any]:
        """Start contract method ``name``; what to await for its result.  An
        implementation whose calls run as tasks of their own returns the task, so
        the bridge (which shields what it awaits) adds no second one."""
        return self._call(name, args, kwargs)

    @abc.abstractmethod
    async def close(self) -> None:
        """Close this connection (the backend stays usable)."""

    def __getattr__(self, name: str) -> Any:
        # Public methods a backend adds beyond the contract, as coroutines too.
        if name.startswith("_"):
            raise AttributeError(name)
        async def extra(*args: Any, **kwargs: Any) -> Any:
            return await self._call(name, args, kwargs)
        extra.__name__ = name
        return extra

    async def __aenter__(self) -> AsyncConnection:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


for _name in METHODS:
    setattr(AsyncConnection, _name, _mirror(_name))


class AsyncBackend(abc.ABC):
    """An asynchronous backend over a synchronous one's configuration and logic.

    Its capability flags are the synchronous backend's.  Publish a native
    implementation for backend ``NAME`` under the ``persistence.aio_backends``
    entry-point group (see :mod:`persistence.aio.registry`); without one,
    ``persistence.aio.fetch`` runs the synchronous backend in threads.
    """

    #: How this backend does its I/O ("threads", "inline", "native"), for docs and benches.
    io: ClassVar[str] = "native"

    def __init__(self, sync: Backend) -> None:
        self._sync = sync
        self._closed = False

    @property
    def sync_backend(self) -> Backend:
        """The synchronous backend whose logic this one runs (and whose flags it has)."""
        return self._sync

    @property
    def conf(self) -> dict[str, Any]:
        """The configuration (may hold secrets: never log it)."""
        return self._sync.conf

    def __getattr__(self, name: str) -> Any:
        if name.startswith("supports_"):
            return getattr(self._sync, name)
        raise AttributeError(name)

    @abc.abstractmethod
    async def get_connection(self) -> AsyncConnection:
        """A new connection; close it (``await conn.close()``) when done."""

    async def close(self) -> None:
        """Release everything the backend holds (pools, clients)."""
        if not self._closed:
            self._closed = True
            await self._close()

    @abc.abstractmethod
    async def _close(self) -> None:
        """Close the synchronous backend the way this implementation does I/O."""

    async def __aenter__(self) -> AsyncBackend:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} ({self.io}) over {self._sync!r}>"


def new_lock() -> asyncio.Lock:
    """The lock that keeps one connection's calls one at a time."""
    return asyncio.Lock()


class OverSyncConnection(AsyncConnection):
    """An async connection over a synchronous one.  A subclass says how one call
    runs (:meth:`_locked`: one at a time); each runs as a task of its own, to its
    end, whoever stops waiting for it."""

    def __init__(self, backend: AsyncBackend, conn: Connection) -> None:
        super().__init__(backend)
        self._conn = conn

    def _owner(self) -> str | None:
        return self._conn.owner

    def _set_owner(self, value: str | None) -> None:
        self._conn.owner = value

    @abc.abstractmethod
    async def _locked(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` the way this connection does I/O, after any call before it."""

    def _submit(self, name: str, args: tuple, kwargs: dict) -> asyncio.Future:
        return asyncio.ensure_future(self._locked(run_method, self._conn, name, args, kwargs))

    async def _call(self, name: str, args: tuple, kwargs: dict) -> Any:
        return await asyncio.shield(self._submit(name, args, kwargs))

    async def close(self) -> None:
        """Close the synchronous connection (giving back what it holds)."""
        await asyncio.shield(asyncio.ensure_future(self._locked(self._conn.close)))
