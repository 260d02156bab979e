"""Read and write sections of :class:`~.storage.Storage`: one decorator each.

Storage's methods are the only places its lock is taken; the parts they
delegate to (details, results, retries...) assume it is held.  Readers share
the lock, a writer holds it alone and may re-enter it and read while writing
(:mod:`persistence._rwlock`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Concatenate, ParamSpec, Protocol, TypeVar

from .._rwlock import ReaderWriterLock

__all__ = ["Locked", "reading", "writing"]

P = ParamSpec("P")
R = TypeVar("R")


class Locked(Protocol):
    """What the decorators need of their object: its reader/writer lock."""

    _lock: ReaderWriterLock


H = TypeVar("H", bound=Locked)


def reading(method: Callable[Concatenate[H, P], R]) -> Callable[Concatenate[H, P], R]:
    """Run ``method`` holding its object's lock for reading."""
    @functools.wraps(method)
    def read_section(self: H, *args: P.args, **kwargs: P.kwargs) -> R:
        lock = self._lock
        lock.acquire_read()
        try:
            return method(self, *args, **kwargs)
        finally:
            lock.release_read()
    return read_section


def writing(method: Callable[Concatenate[H, P], R]) -> Callable[Concatenate[H, P], R]:
    """Run ``method`` holding its object's lock for writing."""
    @functools.wraps(method)
    def write_section(self: H, *args: P.args, **kwargs: P.kwargs) -> R:
        lock = self._lock
        lock.acquire_write()
        try:
            return method(self, *args, **kwargs)
        finally:
            lock.release_write()
    return write_section
