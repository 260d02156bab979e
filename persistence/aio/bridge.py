"""Running synchronous code on an event loop, awaiting where it would block.

The record, path and statement logic of this package is written once, as
synchronous code.  :func:`run_sync` runs such code in a greenlet on the
event loop's thread; where it needs I/O it calls :func:`wait` with an
awaitable, which hands the awaitable to the event loop and resumes the code
with its result (or raises its error at the call) when it is done.  No
thread is involved and the code in between runs unchanged.

Cancellation: an awaitable passed to :func:`wait` is never abandoned half
way.  When the task running :func:`run_sync` is cancelled while an
awaitable is in flight, the awaitable runs to its end and the synchronous
code sees its real outcome (so it keeps its records consistent with the
store); the next :func:`wait` raises ``CancelledError`` in the synchronous
code before anything else starts, and :func:`run_sync` raises
``CancelledError`` once the code has returned.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

try:
    import greenlet
except ImportError as err:  # pragma: no cover - depends on the installed extras
    from ..exceptions import MissingDependency
    raise MissingDependency(f"persistence.aio needs greenlet ({err}): "
                            f"pip install 'persistence[aio]'") from err

__all__ = ["run_sync", "wait", "in_bridge"]

T = TypeVar("T")


class _Bridged(greenlet.greenlet):
    """A greenlet started by :func:`run_sync` (what :func:`wait` checks for)."""

    cancelled = False


def in_bridge() -> bool:
    """Whether the caller runs inside :func:`run_sync` (so it may :func:`wait`)."""
    return isinstance(greenlet.getcurrent(), _Bridged)


def wait(awaitable: Awaitable[T]) -> T:
    """The result of ``awaitable``, awaited by the event loop running this code."""
    current = greenlet.getcurrent()
    if not isinstance(current, _Bridged):
        if asyncio.iscoroutine(awaitable):
            awaitable.close()
        raise RuntimeError("persistence.aio: asynchronous I/O requested outside run_sync(); "
                           "call this object's async methods with await instead")
    if current.cancelled:
        if asyncio.iscoroutine(awaitable):
            awaitable.close()
        raise asyncio.CancelledError()
    return current.parent.switch(awaitable)


async def _settle(awaitable: Awaitable[Any], bridged: _Bridged) -> tuple[bool, Any]:
    """Await ``awaitable`` to its end even if we are cancelled meanwhile; (ok, value)."""
    future = asyncio.ensure_future(awaitable)
    while True:
        try:
            await asyncio.shield(future)
            break
        except asyncio.CancelledError:
            if future.cancelled():
                return False, asyncio.CancelledError()
            if future.done():
                break
            bridged.cancelled = True   # finish this step, start no other
    if future.cancelled():
        return False, asyncio.CancelledError()
    err = future.exception()
    return (False, err) if err is not None else (True, future.result())


async def run_sync(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``fn(*args, **kwargs)`` on this loop; its :func:`wait` calls are awaited here."""
    bridged = _Bridged(fn, greenlet.getcurrent())
    request = bridged.switch(*args, **kwargs)
    while not bridged.dead:
        ok, value = await _settle(request, bridged)
        request = bridged.switch(value) if ok else bridged.throw(value)
    if bridged.cancelled:
        raise asyncio.CancelledError()
    return request
