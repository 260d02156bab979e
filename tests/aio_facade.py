"""A synchronous Backend over a persistence.aio backend, for running the sync
contract suite (the same cases) through the async connections.

Each facade runs an event loop in a thread of its own; every call of a facade
connection submits the async connection's coroutine of the same name to that
loop and waits for it.  So every case exercises the async backend as an
asyncio engine would: the native driver (or the thread adapter) on a loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

from persistence import aio
from persistence.aio.connection import LISTS, METHODS
from persistence.backends.base import Backend, Connection


class _Loop:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True,
                                       name="aio-facade-loop")
        self.thread.start()

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def _forward(name: str):
    def method(self: FacadeConnection, *args: Any, **kwargs: Any) -> Any:
        result = self._run(getattr(self._aconn, name)(*args, **kwargs))
        return iter(result) if name in LISTS else result
    method.__name__ = name
    return method


def _connection_class() -> type:
    body: dict[str, Any] = {name: _forward(name) for name in METHODS}
    return type("FacadeConnectionBase", (Connection,), body)


class FacadeConnection(_connection_class()):
    """A Connection whose every method awaits the async connection's, on the facade's loop."""

    def __init__(self, backend: AsyncFacade, aconn: aio.AsyncConnection) -> None:
        self._backend = backend
        self._aconn = aconn
        self._run = backend.loop.run

    @property
    def backend(self) -> AsyncFacade:
        return self._backend

    @property
    def owner(self) -> str | None:  # type: ignore[override]
        return self._aconn.owner

    @owner.setter
    def owner(self, value: str | None) -> None:
        self._aconn.owner = value

    def close(self) -> None:
        self._run(self._aconn.close())


class AsyncFacade(Backend):
    """``AsyncFacade(conf)``: the async backend ``persistence.aio.fetch(conf)``, synchronously."""

    def __init__(self, conf: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self._conf = dict(conf or {})
        self._options = {}
        self.loop = _Loop()
        try:
            self.abackend = self.loop.run(aio.fetch(self._conf, **kwargs))
        except BaseException:
            self.loop.stop()
            raise

    def __getattr__(self, name: str) -> Any:
        if name.startswith("supports_"):
            return getattr(self.__dict__["abackend"].sync_backend, name)
        raise AttributeError(name)

    supports_claims = property(lambda self: self.abackend.supports_claims)
    supports_history = property(lambda self: self.abackend.supports_history)
    supports_snapshots = property(lambda self: self.abackend.supports_snapshots)

    def get_connection(self) -> FacadeConnection:
        return FacadeConnection(self, self.loop.run(self.abackend.get_connection()))

    def close(self) -> None:
        if self.loop.loop.is_closed():
            return
        try:
            self.loop.run(self.abackend.close())
        finally:
            self.loop.stop()


def facade_over(sync: Backend) -> Iterator[AsyncFacade]:
    """An upgraded facade on the store ``sync`` (a contract fixture's backend) points at."""
    facade = AsyncFacade(sync.conf)
    try:
        with facade.get_connection() as conn:
            conn.upgrade()
        yield facade
    finally:
        facade.close()
