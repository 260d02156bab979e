"""A small reader/writer lock for threads.

Readers share it, a writer holds it alone; the writer may re-enter and may
read while writing.  Waiting writers are preferred so a stream of readers
cannot starve them.  Context managers are plain objects (no generators),
because this lock sits on the hot path of every Storage call and every
memory-backend operation: an uncontended acquire or release is one plain
mutex section, and the condition is notified only when a thread waits on it.
"""

from __future__ import annotations

import threading

__all__ = ["ReaderWriterLock"]

_ident = threading.get_ident


class _ReadGuard:
    __slots__ = ("_lock",)

    def __init__(self, lock: ReaderWriterLock) -> None:
        self._lock = lock

    def __enter__(self) -> None:
        self._lock.acquire_read()

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release_read()


class _WriteGuard(_ReadGuard):
    __slots__ = ()

    def __enter__(self) -> None:
        self._lock.acquire_write()

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release_write()


class ReaderWriterLock:
    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._cond = threading.Condition(self._mutex)
        self._readers: dict[int, int] = {}
        self._writer: int | None = None
        self._writer_depth = 0
        self._waiting_writers = 0
        self._waiting = 0   # threads waiting on _cond, readers and writers
        self._read_guard = _ReadGuard(self)
        self._write_guard = _WriteGuard(self)

    def read_lock(self) -> _ReadGuard:
        return self._read_guard

    def write_lock(self) -> _WriteGuard:
        return self._write_guard

    def acquire_read(self) -> None:
        me = _ident()
        with self._mutex:
            readers = self._readers
            count = readers.get(me)
            if count is not None:          # re-entered
                readers[me] = count + 1
                return
            if self._writer is not None and self._writer != me or self._waiting_writers:
                self._wait_to_read(me)
            readers[me] = 1

    def _wait_to_read(self, me: int) -> None:
        if self._writer == me:   # reading while writing
            return
        self._waiting += 1
        try:
            while self._writer is not None or self._waiting_writers:
                self._cond.wait()
        finally:
            self._waiting -= 1

    def release_read(self) -> None:
        me = _ident()
        with self._mutex:
            readers = self._readers
            count = readers[me] - 1
            if count:
                readers[me] = count
            else:
                del readers[me]
                if not readers and self._waiting:
                    self._cond.notify_all()

    def acquire_write(self) -> None:
        me = _ident()
        with self._mutex:
            writer = self._writer
            if writer == me:
                self._writer_depth += 1
                return
            if writer is not None or self._readers:
                if me in self._readers:
                    raise RuntimeError("a reader cannot upgrade to a writer lock")
                self._wait_to_write()
            self._writer = me
            self._writer_depth = 1

    def _wait_to_write(self) -> None:
        self._waiting_writers += 1
        self._waiting += 1
        try:
            while self._writer is not None or self._readers:
                self._cond.wait()
        finally:
            self._waiting_writers -= 1
            self._waiting -= 1

    def release_write(self) -> None:
        with self._mutex:
            depth = self._writer_depth - 1
            self._writer_depth = depth
            if not depth:
                self._writer = None
                if self._waiting:
                    self._cond.notify_all()
