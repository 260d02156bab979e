"""AsyncStorage: :class:`~persistence.runtime.storage.Storage` for asyncio engines.

One implementation: an ``AsyncStorage`` holds a plain ``Storage`` (its
collaborators, policies, batching, undo of failed writes, listeners — all
unchanged) over a synchronous face of the async backend
(:mod:`.awaiting`).  Each method runs the Storage method of the same name in
a greenlet on the event loop (:func:`persistence.aio.bridge.run_sync`): the
in-memory work is the same code, and the one backend call it makes is
awaited.  Calls on one AsyncStorage run one at a time (an asyncio lock, the
counterpart of Storage's reader/writer lock).

Cancellation: a cancelled ``await storage.save(...)`` (or any write) leaves
the store before or after the write, never half of it, and the flow detail
in memory as the store has it: a backend call that has started is finished
(it is shielded) and its outcome applied to the record (rolled back if it
failed, marked saved if it succeeded) before ``CancelledError`` is raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any

from ..exceptions import ConfigurationError
from ..models import claim as claims
from ..models import records as models
from ..models.claim import Claim
from ..runtime.listeners import Change
from ..runtime.storage import Storage
from ..runtime.write_policy import NEVER
from . import bridge
from .awaiting import AwaitingBackend
from .claims import AsyncClaimKeeper
from .connection import AsyncBackend

__all__ = ["AsyncStorage", "METHODS"]

#: Storage methods that need no lock nor I/O: AsyncStorage keeps them synchronous.
_PLAIN = frozenset({"add_listener", "remove_listener", "batch", "close"})
#: Every other public Storage method, mirrored by AsyncStorage as a coroutine.
METHODS: tuple[str, ...] = tuple(sorted(
    name for name, member in inspect.getmembers(Storage)
    if not name.startswith("_") and inspect.isfunction(member) and name not in _PLAIN))


def _mirror(name: str) -> Callable[..., Any]:
    sync = getattr(Storage, name)

    async def method(self: AsyncStorage, *args: Any, **kwargs: Any) -> Any:
        return await self._run(getattr(self._storage, name), *args, **kwargs)
    method.__name__ = method.__qualname__ = name
    method.__doc__ = (sync.__doc__ or "").strip() + "\n\n(A coroutine.)"
    return method


class AsyncStorage:
    """Storage for an asyncio engine: ``await storage.save(name, result)``.

    Arguments as :class:`~persistence.runtime.storage.Storage`, with an
    :class:`~persistence.aio.connection.AsyncBackend` (``persistence.aio.fetch``)
    or None (a private in-memory store).  Opening does I/O (the claim, with
    ``claim=True``), so it happens on the first call, or on ``await
    storage.open()``, or by ``async with AsyncStorage(...) as storage``.
    With ``claim=True`` the claim is renewed by an asyncio task.
    """

    injector_name = Storage.injector_name

    def __init__(self, flow_detail: models.FlowDetail, backend: AsyncBackend | None = None,
                 scope_fetcher: Callable[[str], Any] | None = None, policy: str = "always",
                 *, scope_lookup: Callable[[str], Any] | None = None,
                 owner: str | None = None, claim: bool = False,
                 ttl: float = claims.DEFAULT_TTL, at_most_once: bool = False) -> None:
        if backend is not None and not isinstance(backend, AsyncBackend):
            raise TypeError(f"backend must be a persistence.aio backend (await "
                            f"persistence.aio.fetch(...)), not {type(backend).__name__}")
        if claim and (owner is None or policy == NEVER):
            raise ConfigurationError("claim=True needs an owner= and a policy that writes "
                                     "(not 'never')")
        self._abackend = backend
        self._storage = Storage(flow_detail,
                                AwaitingBackend(backend) if backend is not None else None,
                                scope_fetcher, policy, scope_lookup=scope_lookup, owner=owner,
                                at_most_once=at_most_once)
        self._keeper = (AsyncClaimKeeper(backend, flow_detail.uuid, owner, ttl)
                        if claim and backend is not None else None)
        if claim and backend is None:
            raise ConfigurationError("claim=True needs a backend shared with other engines")
        self._lock = asyncio.Lock()
        self._opened = self._keeper is None

    # -- life cycle ---------------------------------------------------------
    async def open(self) -> AsyncStorage:
        """Claim the flow detail (with ``claim=True``) and reload it; idempotent."""
        async with self._lock:
            await self._open()
        return self

    async def _open(self) -> None:
        if self._opened:
            return
        keeper = self._keeper
        await keeper.start()
        try:
            self._storage._writes.keeper = keeper   # Storage checks it before each write
            await bridge.run_sync(self._storage.refresh)
        except BaseException:
            self._storage._writes.keeper = None
            await keeper.aclose()
            raise
        self._opened = True

    async def _run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        async with self._lock:
            if not self._opened:
                await self._open()
            return await bridge.run_sync(fn, *args, **kwargs)

    async def close(self) -> None:
        """Release the claim (if held) and close the connection."""
        async with self._lock:
            await bridge.run_sync(self._storage.close)

    async def __aenter__(self) -> AsyncStorage:
        return await self.open()

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            await self.flush()
        finally:
            await self.close()

    @contextlib.asynccontextmanager
    async def batch(self) -> AsyncIterator[AsyncStorage]:
        """Defer writes until the block ends, then write them in one transaction."""
        block = self._storage.batch()
        await self._run(block.__enter__)
        try:
            yield self
        except BaseException as err:
            await self._run(block.__exit__, type(err), err, err.__traceback__)
            raise
        else:
            await self._run(block.__exit__, None, None, None)

    # -- what needs no I/O ----------------------------------------------------
    @property
    def storage(self) -> Storage:
        """The synchronous Storage this object runs (its state; do not call it from a loop)."""
        return self._storage

    @property
    def backend(self) -> AsyncBackend | None:
        """The async backend (None: a private in-memory store)."""
        return self._abackend

    @property
    def policy(self) -> str:
        """When changes are written: ``"always"``, ``"batch"`` or ``"never"``."""
        return self._storage.policy

    @property
    def flow_detail(self) -> models.FlowDetail:
        """The flow detail this object keeps (updated in place)."""
        return self._storage.flow_detail

    @property
    def flow_name(self) -> str:
        """The flow detail's name."""
        return self._storage.flow_name

    @property
    def flow_uuid(self) -> str:
        """The flow detail's uuid."""
        return self._storage.flow_uuid

    @property
    def flow_meta(self) -> dict[str, Any]:
        """The flow detail's metadata."""
        return self._storage.flow_meta

    @property
    def owner(self) -> str | None:
        """Who writes through this object (``owner=``), or None."""
        return self._storage.owner

    @property
    def claim(self) -> Claim | None:
        """The claim held on the flow detail (None without ``claim=True`` or before opening)."""
        return self._storage.claim

    @property
    def has_pending(self) -> bool:
        """Whether changes are waiting for :meth:`flush`."""
        return self._storage._writes.pending

    def add_listener(self, listener: Callable[[Change], Any]) -> None:
        """Call ``listener(change)`` after each durable change (on the event loop)."""
        self._storage.add_listener(listener)

    def remove_listener(self, listener: Callable[[Change], Any]) -> None:
        """Stop calling ``listener``; ValueError if it was not added."""
        self._storage.remove_listener(listener)

    def __repr__(self) -> str:
        return f"<AsyncStorage {self.flow_name!r} over {self._abackend!r}>"


for _name in METHODS:
    setattr(AsyncStorage, _name, _mirror(_name))
