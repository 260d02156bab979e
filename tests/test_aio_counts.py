"""What one atom costs on the asyncio path, counted against the synchronous path
(never timed: ``python -m bench.aio`` times them).

On PostgreSQL the hot path writes an atom as one statement in autocommit: one
round trip, where the synchronous path blocks once.  Under ``persistence.aio``
the write must stay one round trip (no BEGIN/COMMIT the synchronous path
avoids), and the greenlet running the storage call must hand the event loop
one awaitable per round trip, then return, starting no greenlet of its own.
(It used to take a task, a second greenlet and one await per driver call:
autocommit on, cursor, execute, autocommit off.)  The engine's loop per atom is
``set_atom_state(RUNNING)`` then ``save(result)``, as in
``tests/test_checkpoint_counts.py``.
"""

from __future__ import annotations

import asyncio
import collections

import greenlet
import pytest

import persistence
from persistence import FlowDetail, LogBook, aio, states
from persistence.atom import Task

psycopg = pytest.importorskip("psycopg")

ATOMS = 20
CALLS = 2 * ATOMS   # storage calls: the RUNNING mark and the result


class _Protocol:
    """The frontend's messages on every psycopg connection opened while installed
    (libpq's trace): an extended-protocol round trip ends with Sync, a simple one
    is a Query."""

    def __init__(self, monkeypatch, path) -> None:
        from psycopg import pq
        if pq.version() < 140000:
            pytest.skip("libpq < 14 cannot trace without timestamps")
        self.flags = pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE
        self.file = open(path, "w+", encoding="utf-8")
        sync_connect = psycopg.Connection.connect.__func__
        async_connect = psycopg.AsyncConnection.connect.__func__

        def traced(cls, *args, **kwargs):
            return self._trace(sync_connect(cls, *args, **kwargs))

        async def atraced(cls, *args, **kwargs):
            return self._trace(await async_connect(cls, *args, **kwargs))
        monkeypatch.setattr(psycopg.Connection, "connect", classmethod(traced))
        monkeypatch.setattr(psycopg, "connect", psycopg.Connection.connect)
        monkeypatch.setattr(psycopg.AsyncConnection, "connect", classmethod(atraced))

    def _trace(self, conn):
        conn.pgconn.trace(self.file.fileno())
        conn.pgconn.set_trace_flags(self.flags)
        return conn

    def mark(self) -> int:
        self.file.flush()
        return self.file.seek(0, 2)

    def since(self, mark: int) -> collections.Counter:
        self.file.flush()
        self.file.seek(mark)
        sent = collections.Counter(line.split("\t")[2] for line in self.file.read().splitlines()
                                   if line.startswith("F\t") and line.count("\t") >= 2)
        return collections.Counter(round_trips=sent["Sync"] + sent["Query"],
                                   statements=sent["Bind"] + sent["Query"])


class _Switches:
    """Greenlet switches into the loop's greenlet (an awaitable handed over, or a
    greenlet returning), and greenlets run for the first time, while installed."""

    def __init__(self, seen: set) -> None:
        self.loop = greenlet.getcurrent()
        self.to_loop = self.started = 0
        self.seen = seen   # (kept alive: a new greenlet never reuses an old one's id)

    def __call__(self, event: str, args: tuple) -> None:
        origin, target = args
        if target is self.loop:
            self.to_loop += origin is not self.loop
        elif target not in self.seen:
            self.seen.add(target)
            self.started += 1


def _book() -> tuple[LogBook, FlowDetail]:
    book, flow = LogBook("counts"), FlowDetail("flow")
    book.add(flow)
    return book, flow


def _sync_atoms(conf, protocol: _Protocol) -> collections.Counter:
    backend = persistence.fetch(conf)
    try:
        book, flow = _book()
        with backend.get_connection() as conn:
            conn.save_logbook(book)
        with persistence.Storage(flow, backend) as storage:
            storage.ensure_atoms([Task(f"t{i}") for i in range(ATOMS)])
            for _ in range(2):   # the first time round, psycopg also prepares statements
                mark = protocol.mark()
                for i in range(ATOMS):
                    storage.set_atom_state(f"t{i}", states.RUNNING)
                    storage.save(f"t{i}", {"i": i})
            return protocol.since(mark)
    finally:
        backend.close()


async def _async_atoms(conf, protocol: _Protocol) -> tuple[collections.Counter, _Switches]:
    backend = await aio.fetch(conf)
    try:
        book, flow = _book()
        conn = await backend.get_connection()
        await conn.save_logbook(book)
        await conn.close()
        async with aio.AsyncStorage(flow, backend) as storage:
            await storage.ensure_atoms([Task(f"t{i}") for i in range(ATOMS)])
            seen: set = set()
            for _ in range(2):   # (and the bridge's greenlet exists the second time)
                switches = _Switches(seen)
                mark = protocol.mark()
                greenlet.settrace(switches)
                try:
                    for i in range(ATOMS):
                        await storage.set_atom_state(f"t{i}", states.RUNNING)
                        await storage.save(f"t{i}", {"i": i})
                finally:
                    greenlet.settrace(None)
            return protocol.since(mark), switches
    finally:
        await backend.close()


def test_postgresql_atom_writes_cost_the_async_path_what_they_cost_the_sync_path(
        backend_postgresql, monkeypatch, tmp_path):
    protocol = _Protocol(monkeypatch, tmp_path / "protocol.trace")
    sync = _sync_atoms(backend_postgresql.conf, protocol)
    trips, switches = asyncio.run(_async_atoms(backend_postgresql.conf, protocol))
    # One statement, one round trip per write, on both paths.
    assert sync == collections.Counter(round_trips=CALLS, statements=CALLS)
    assert trips == sync
    # The storage call's greenlet hands the loop one awaitable per round trip and
    # returns; it is reused, so no greenlet starts.
    assert (switches.to_loop, switches.started) == (trips["round_trips"] + CALLS, 0)


def test_a_busy_connection_is_waited_for_in_turn():
    """The turns GreenConnection takes (without awaiting when free): in order, and a
    waiter cancelled after being handed the turns passes them on."""
    from persistence.aio.greened import Turns

    async def main() -> list[str]:
        turns, order = Turns(), []
        assert turns.take_now() and not turns.take_now()

        async def user(name: str) -> None:
            async with turns:
                order.append(name)
                await asyncio.sleep(0)
        first, second, third = (asyncio.create_task(user(n)) for n in "abc")
        await asyncio.sleep(0)
        first.cancel()                   # waiting: leaves the line
        turns.give()                     # hands the turns to the second
        second.cancel()                  # handed the turns, cancelled: passes them on
        await asyncio.gather(first, second, third, return_exceptions=True)
        assert turns.take_now()          # free again
        return order
    assert asyncio.run(main()) == ["c"]
