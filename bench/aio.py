"""persistence.aio against threads: ``python -m bench.aio [--flows N] [--atoms N]``.

1. Many concurrent flows: ``--flows`` flows (default 1,000) of ``--atoms`` atoms,
   all started at once in one event loop (AsyncStorage on the native driver),
   against the same flows on a pool of ``--threads`` threads (sync Storage), on
   PostgreSQL
   and ZooKeeper.  Each flow opens its storage, saves its atoms one by one and
   closes it (giving its database connection back: PostgreSQL here allows 100,
   the pool holds 20).  Reports aggregate atoms/s and the p50/p99 latency of
   one ``save`` (waiting for a pooled connection included).
2. Per-atom overhead at one flow: ``await storage.save`` against
   ``storage.save``, same backend, one flow, sequential, on the native driver
   and on the thread adapter (the ratio is the cost of the bridge and the
   async driver).

The thread adapter is not run with 1,000 flows: each of its connections holds
a pooled database connection between calls, so more open storages than the
pool holds leave every executor thread waiting for a connection that only a
coroutine waiting for a thread can give back (see doc/asyncio.rst).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import statistics
import time
import uuid
from typing import Any

import persistence
from persistence import aio, models
from persistence.runtime.atom import Task

from .services import Services

POOL = {"pool_size": 20, "max_overflow": 0, "pool_timeout": 120}


def _conf(base: dict[str, Any], backend: str) -> dict[str, Any]:
    return {**base, **POOL} if backend == "postgresql" else dict(base)


def _flow() -> tuple[models.LogBook, models.FlowDetail]:
    book = models.LogBook("bench", uuid=str(uuid.uuid4()))
    flow = models.FlowDetail("bench", str(uuid.uuid4()))
    book.add(flow)
    return book, flow


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def _async_flows(conf: dict[str, Any], flows: int, atoms: int,
                       io: str | None = None) -> tuple[float, list]:
    be = await aio.fetch(conf, io=io)
    latencies: list[float] = []
    tasks = [Task(f"t{i}") for i in range(atoms)]

    async def one() -> None:
        book, flow = _flow()
        conn = await be.get_connection()
        await conn.save_logbook(book)
        await conn.close()
        storage = aio.AsyncStorage(flow, be)
        await storage.ensure_atoms(tasks)
        for task in tasks:
            start = time.perf_counter()
            await storage.save(task.name, {"n": 1})
            latencies.append(time.perf_counter() - start)
        await storage.close()
    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(flows)))
    elapsed = time.perf_counter() - start
    await be.close()
    return elapsed, latencies


def _thread_flows(conf: dict[str, Any], flows: int, atoms: int,
                  threads: int) -> tuple[float, list]:
    be = persistence.fetch(conf)
    latencies: list[float] = []
    tasks = [Task(f"t{i}") for i in range(atoms)]

    def one(_: int) -> None:
        book, flow = _flow()
        with be.get_connection() as conn:
            conn.save_logbook(book)
        storage = persistence.Storage(flow, be)
        storage.ensure_atoms(tasks)
        for task in tasks:
            start = time.perf_counter()
            storage.save(task.name, {"n": 1})
            latencies.append(time.perf_counter() - start)
        storage.close()
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(flows)))
    elapsed = time.perf_counter() - start
    be.close()
    return elapsed, latencies


async def _async_one(conf: dict[str, Any], saves: int, io: str | None = None) -> float:
    be = await aio.fetch(conf, io=io)
    book, flow = _flow()
    conn = await be.get_connection()
    await conn.save_logbook(book)
    await conn.close()
    storage = aio.AsyncStorage(flow, be)
    await storage.ensure_atoms([Task("t")])
    await storage.save("t", 0)
    start = time.perf_counter()
    for i in range(saves):
        await storage.save("t", i)
    per = (time.perf_counter() - start) / saves
    await storage.close()
    await be.close()
    return per


def _sync_one(conf: dict[str, Any], saves: int) -> float:
    be = persistence.fetch(conf)
    book, flow = _flow()
    with be.get_connection() as conn:
        conn.save_logbook(book)
    storage = persistence.Storage(flow, be)
    storage.ensure_atoms([Task("t")])
    storage.save("t", 0)
    start = time.perf_counter()
    for i in range(saves):
        storage.save("t", i)
    per = (time.perf_counter() - start) / saves
    storage.close()
    be.close()
    return per


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.aio", description=__doc__.split("\n")[0])
    parser.add_argument("--flows", type=int, default=1000)
    parser.add_argument("--atoms", type=int, default=3)
    parser.add_argument("--saves", type=int, default=500, help="saves at one flow")
    parser.add_argument("--threads", type=int, default=200,
                        help="threads running the sync flows (default 200)")
    parser.add_argument("--backends", default="postgresql,zookeeper")
    args = parser.parse_args(argv)
    flows, atoms = args.flows, args.atoms
    services = Services()
    try:
        for backend in args.backends.split(","):
            why = services.check(backend)
            if why:
                print(f"{backend}: skipped ({why})")
                continue
            with services.fresh_store(backend, "persistence") as base:
                conf = _conf(base, backend)
                with persistence.backend(conf):
                    pass   # schema
                runs = (("asyncio", lambda c=conf: asyncio.run(_async_flows(c, flows, atoms)),
                         "native driver, one loop"),
                        ("threads", lambda c=conf: _thread_flows(c, flows, atoms, args.threads),
                         f"sync Storage, {args.threads} threads"))
                for label, run, how in runs:
                    elapsed, lat = run()
                    print(f"{backend:10} {label:8} {flows} flows x {atoms} atoms: "
                          f"{len(lat) / elapsed:8.0f} atoms/s  save p50 {_pct(lat, .5):7.2f} ms"
                          f"  p99 {_pct(lat, .99):7.2f} ms  ({how})")
                sync = statistics.median(_sync_one(conf, args.saves) for _ in range(3))
                for io in (None, "threads"):
                    asy = statistics.median(asyncio.run(_async_one(conf, args.saves, io))
                                            for _ in range(3))
                    print(f"{backend:10} one flow: sync {sync * 1e3:.3f} ms/atom, asyncio "
                          f"({io or 'native'}) {asy * 1e3:.3f} ms/atom, ratio {asy / sync:.2f}")
    finally:
        services.close()


if __name__ == "__main__":
    main()
