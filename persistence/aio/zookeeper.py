"""The ZooKeeper backend under asyncio: kazoo's ``*_async`` results bridged to
asyncio futures, no thread per call.

It *is* the synchronous :class:`~persistence.backends.zookeeper.ZkBackend`
(paths, chunking, transaction plans, claims), run in a greenlet on the event
loop (:mod:`persistence.aio.bridge`).  That backend sends every request with
kazoo's ``*_async`` calls and waits for each answer in one place,
:meth:`ZkBackend.result`; here that wait hands the loop a future which
kazoo's I/O thread completes with ``loop.call_soon_threadsafe``, so the
loop runs other flows meanwhile.  Timeouts and error translation are the
synchronous backend's.  Only starting the client (once per backend) runs
in a thread.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ..backends.zookeeper import ZkBackend
from . import bridge
from .greened import GreenBackend

__all__ = ["AsyncZkBackend"]

#: How often a request waiting for a session looks again (seconds).
_LIVE_POLL = 0.01


async def _answered(async_result: Any, deadline: float) -> None:
    """Return once kazoo has set ``async_result`` (or ``deadline`` has passed)."""
    loop = asyncio.get_running_loop()
    answered = loop.create_future()

    def wake(_: Any) -> None:
        loop.call_soon_threadsafe(lambda: answered.done() or answered.set_result(None))
    async_result.rawlink(wake)
    # At the deadline, stop waiting: the synchronous result() reports the timeout.
    timer = loop.call_later(max(0.0, deadline - time.monotonic()),
                            lambda: answered.done() or answered.set_result(None))
    try:
        await answered
    finally:
        timer.cancel()
        async_result.unlink(wake)


async def _live(backend: ZkBackend, deadline: float) -> None:
    while not backend._live.is_set() and time.monotonic() < deadline:
        await asyncio.sleep(_LIVE_POLL)


class _OnBridge(ZkBackend):
    """The synchronous backend whose waits are awaited when run in :func:`bridge.run_sync`."""

    def wait_live(self, deadline: float) -> None:
        if bridge.in_bridge() and not self._live.is_set():
            bridge.wait(_live(self, deadline))
        super().wait_live(deadline)

    def result(self, what: str, async_result: Any, deadline: float) -> Any:
        if bridge.in_bridge() and not async_result.ready():
            bridge.wait(_answered(async_result, deadline))
        return super().result(what, async_result, deadline)


class AsyncZkBackend(GreenBackend):
    """A ZooKeeper ensemble through kazoo's asynchronous calls (see the module docstring)."""

    def __init__(self, sync: ZkBackend) -> None:
        super().__init__(sync, bridge.drive)

    @classmethod
    def build(cls, conf: dict[str, Any], **kwargs: Any) -> AsyncZkBackend:
        """The native backend of ``conf`` (``client=`` as the synchronous backend takes it)."""
        return cls(_OnBridge(conf, **kwargs))

    async def get_connection(self) -> Any:
        """A connection; the first one starts the kazoo client (in a thread: kazoo blocks)."""
        await asyncio.to_thread(lambda: self._sync.client)
        return await super().get_connection()
