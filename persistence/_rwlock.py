"""A small reader/writer lock for threads.

Readers share it, a writer holds it alone; the writer may re-enter and may
read while writing.  Waiting writers are preferred so a stream of readers
cannot starve them.  Context managers are plain objects (no generators),
because this lock sits on the hot path of every memory-backend operation.
"""

from __future__ import annotations

import threading

__all__ = ["ReaderWriterLock"]


class _Guard:
    __slots__ = ("_enter", "_exit")

    def __init__(self, enter, exit_) -> None:
        self._enter = enter
        self._exit = exit_

    def __enter__(self) -> None:
        self._enter()

    def __exit__(self, *exc_info: object) -> None:
        self._exit()


class ReaderWriterLock:
    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers: dict[int, int] = {}
        self._writer: int | None = None
        self._writer_depth = 0
        self._waiting_writers = 0
        self._read_guard = _Guard(self.acquire_read, self.release_read)
        self._write_guard = _Guard(self.acquire_write, self.release_write)

    def read_lock(self) -> _Guard:
        return self._read_guard

    def write_lock(self) -> _Guard:
        return self._write_guard

    def acquire_read(self) -> None:
        me = threading.get_ident()
        with self._cond:
            if self._writer != me and me not in self._readers:
                while self._writer is not None or self._waiting_writers:
                    self._cond.wait()
            self._readers[me] = self._readers.get(me, 0) + 1

    def release_read(self) -> None:
        me = threading.get_ident()
        with self._cond:
            count = self._readers[me] - 1
            if count:
                self._readers[me] = count
            else:
                del self._readers[me]
                if not self._readers:
                    self._cond.notify_all()

    def acquire_write(self) -> None:
        me = threading.get_ident()
        with self._cond:
            if self._writer == me:
                self._writer_depth += 1
                return
            if me in self._readers:
                raise RuntimeError("a reader cannot upgrade to a writer lock")
            self._waiting_writers += 1
            try:
                while self._writer is not None or self._readers:
                    self._cond.wait()
            finally:
                self._waiting_writers -= 1
            self._writer = me
            self._writer_depth = 1

    def release_write(self) -> None:
        with self._cond:
            self._writer_depth -= 1
            if not self._writer_depth:
                self._writer = None
                self._cond.notify_all()
