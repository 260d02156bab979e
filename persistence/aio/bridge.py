"""Running synchronous code on an event loop, awaiting where it would block.

The record, path and statement logic of this package is written once, as
synchronous code.  :func:`run_sync` runs such code in a greenlet on the
event loop's thread; where it needs I/O it calls :func:`wait` with an
awaitable, which hands the awaitable to the event loop and resumes the code
with its result (or raises its error at the call) when it is done.  No
thread is involved and the code in between runs unchanged.  SQLAlchemy's
``await_`` works in the same greenlet (it has SQLAlchemy's documented
``__sqlalchemy_greenlet_provider__`` mark), so a SQL driver's awaits go to
the same loop with no greenlet of their own.

The greenlet's awaits all run in one task that :func:`run_sync` starts and
nobody else can cancel, one after the other, each awaited directly (a
handed-over awaitable costs a greenlet switch each way, no task and no loop
iteration of its own).

Cancellation: an awaitable passed to :func:`wait` is never abandoned half
way.  When the caller of :func:`run_sync` is cancelled while an awaitable is
in flight, the awaitable runs to its end and the synchronous code sees its
real outcome (so it keeps its records consistent with the store); the next
:func:`wait` raises ``CancelledError`` in the synchronous code before
anything else starts (after the :func:`uninterrupted` block it is in, if
any), and :func:`run_sync` raises ``CancelledError`` once the code has
returned.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

try:
    import greenlet
except ImportError as err:  # pragma: no cover - depends on the installed extras
    from ..exceptions import MissingDependency
    raise MissingDependency(f"persistence.aio needs greenlet ({err}): "
                            f"pip install 'persistence[aio]'") from err

__all__ = ["run_sync", "drive", "wait", "in_bridge", "uninterrupted"]

T = TypeVar("T")


class _Bridged(greenlet.greenlet):
    """A greenlet of the bridge (what :func:`wait` checks for), reused: it runs one
    synchronous call after another (starting a greenlet costs ten times a switch)."""

    #: SQLAlchemy's ``await_`` may hand this greenlet's awaitables to its driver
    #: (SQLAlchemy >= 2.0.31: the same protocol as :func:`wait`).
    __sqlalchemy_greenlet_provider__ = True
    #: The caller stopped waiting: start no new step.
    cancelled = False
    #: Depth of :func:`uninterrupted` blocks running: a cancellation waits for them.
    holding = 0

    def run(self, *call: Any) -> None:
        job = list(call)
        while True:   # one call per round; idle (holding nothing) in the switch
            job = list(self.parent.switch(self._call(job)))

    def _call(self, job: list) -> _Done:
        fn, args, kwargs = job
        job.clear()
        try:
            return _Done(True, fn(*args, **kwargs))
        except greenlet.GreenletExit:
            raise
        except BaseException as err:
            return _Done(False, err)
        finally:
            self.cancelled, self.holding = False, 0


class _Done:
    """What a :class:`_Bridged` hands its driver when the call has returned or raised."""

    __slots__ = ("ok", "value")

    def __init__(self, ok: bool, value: Any) -> None:
        self.ok, self.value = ok, value


#: Idle greenlets of this thread's bridge (a greenlet runs on its own thread only).
_idle = threading.local()
#: How many idle greenlets a thread keeps.
_KEEP = 64


def _take() -> _Bridged:
    pool = getattr(_idle, "pool", None)
    if pool:
        bridged = pool.pop()
    else:
        bridged = _Bridged()
    bridged.parent = greenlet.getcurrent()
    return bridged


def _give_back(bridged: _Bridged) -> None:
    pool = getattr(_idle, "pool", None)
    if pool is None:
        pool = _idle.pool = []
    if len(pool) < _KEEP:
        pool.append(bridged)


def in_bridge() -> bool:
    """Whether the caller runs inside :func:`run_sync` (so it may :func:`wait`)."""
    return isinstance(greenlet.getcurrent(), _Bridged)


def _refuse(awaitable: Awaitable[Any], err: BaseException) -> BaseException:
    if asyncio.iscoroutine(awaitable):
        awaitable.close()
    return err


def wait(awaitable: Awaitable[T]) -> T:
    """The result of ``awaitable``, awaited by the event loop running this code."""
    current = greenlet.getcurrent()
    if not isinstance(current, _Bridged):
        raise _refuse(awaitable, RuntimeError(
            "persistence.aio: asynchronous I/O requested outside run_sync(); "
            "call this object's async methods with await instead"))
    if current.cancelled and not current.holding:
        raise _refuse(awaitable, asyncio.CancelledError())
    return current.parent.switch(awaitable)


class uninterrupted:  # noqa: N801 - used as a function: ``with uninterrupted():``
    """A block whose I/O runs to its end together (one backend call: a transaction
    and its answer): ``CancelledError`` is raised before it starts or after it
    ends, never between two of its awaits.  Outside the bridge it does nothing.
    (A class, not a generator: it runs once per backend call.)"""

    __slots__ = ("_bridged",)

    def __enter__(self) -> None:
        current = greenlet.getcurrent()
        if isinstance(current, _Bridged):
            if current.cancelled and not current.holding:
                raise asyncio.CancelledError()
            current.holding += 1
            self._bridged: _Bridged | None = current
        else:
            self._bridged = None

    def __exit__(self, *exc_info: object) -> None:
        if self._bridged is not None:
            self._bridged.holding -= 1


def _start(bridged: _Bridged, fn: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    """Run ``fn`` in ``bridged`` up to its first wait: what it hands over, or _Done."""
    bridged.parent = greenlet.getcurrent()
    return bridged.switch(fn, args, kwargs)


async def _steps(bridged: _Bridged, request: Any) -> _Done:
    """Go on running ``bridged``, awaiting what it hands over; its outcome."""
    while request.__class__ is not _Done:
        try:
            value = await request
        except BaseException as err:   # the awaitable's error, raised at its wait()
            request = bridged.throw(err)
        else:
            request = bridged.switch(value)
    _give_back(bridged)
    return request


def _result(done: _Done) -> Any:
    if done.ok:
        return done.value
    raise done.value


async def drive(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``fn(*args, **kwargs)`` in a greenlet, awaiting its :func:`wait` calls in
    the calling task.  Only for a task nobody cancels (one that is shielded, or
    :func:`run_sync`'s): cancelling it would cut the awaitable in flight."""
    bridged = _take()
    return _result(await _steps(bridged, _start(bridged, fn, args, kwargs)))


async def _report(bridged: _Bridged, request: Any, done: asyncio.Future) -> None:
    outcome = await _steps(bridged, request)
    if not done.done():   # else the caller stopped waiting: it waits for this task instead
        done.set_result(outcome)


async def run_sync(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``fn(*args, **kwargs)`` on this loop; its :func:`wait` calls are awaited
    here, in a task of its own that runs to its end (see the module docstring).
    Code that needs no I/O runs at once, with no task."""
    bridged = _take()
    request = _start(bridged, fn, args, kwargs)
    if request.__class__ is _Done:
        _give_back(bridged)
        return _result(request)
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    task = loop.create_task(_report(bridged, request, done))
    try:
        outcome = await done
    except asyncio.CancelledError:
        if not task.done():   # (once it is, the greenlet serves other calls)
            bridged.cancelled = True   # finish the step in flight, start no other
        while not task.done():
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                pass
        raise
    return _result(outcome)
