"""A cancelled ``await storage.save(...)`` leaves the store before or after the write,
never half, and the flow detail in memory as the store has it — on every backend.

Each iteration cancels a save at a random point (before it starts, after a random
number of loop steps, after a random short delay), then compares the in-memory
atom detail with the stored one, and writes again through the same storage (a
record left inconsistent would raise Conflict there).
"""

import asyncio
import random

import pytest

from persistence import aio, models, states
from persistence.runtime.atom import Task

ITERATIONS = 60


async def _cancel_at_random(be: aio.AsyncBackend, rng: random.Random) -> dict[str, int]:
    async with be:
        conn = await be.get_connection()
        await conn.upgrade()
        book = models.LogBook("cancel")
        flow = models.FlowDetail("cancel", "cancel-" + str(rng.random()))
        book.add(flow)
        await conn.save_logbook(book)
        storage = aio.AsyncStorage(flow, be)
        await storage.ensure_atoms([Task("t")])
        uuid = await storage.get_atom_uuid("t")
        outcomes = {"before": 0, "after": 0}
        for i in range(ITERATIONS):
            before = storage.flow_detail.find(uuid).results
            task = asyncio.create_task(storage.save("t", {"i": i, "pad": "x" * rng.choice(
                (0, 10, 70_000))}))
            how = rng.randrange(3)
            if how == 1:
                for _ in range(rng.randrange(6)):
                    await asyncio.sleep(0)
            elif how == 2:
                await asyncio.sleep(rng.random() * 0.003)
            task.cancel()
            done = await asyncio.gather(task, return_exceptions=True)
            assert done[0] is None or isinstance(done[0], asyncio.CancelledError), done
            stored = await conn.get_atom_details(uuid)
            kept = storage.flow_detail.find(uuid)
            assert stored.results == kept.results, (i, stored.results, kept.results)
            assert stored.state == kept.state
            assert stored.results == before or stored.results["i"] == i, (i, stored.results)
            outcomes["after" if stored.results != before else "before"] += 1
            await storage.set_atom_state("t", states.RUNNING)   # no Conflict: in step
            await storage.set_atom_state("t", states.SUCCESS)
        await storage.close()
        await conn.close()
        return outcomes


def test_cancelled_saves_are_all_or_nothing(backend, backend_name):
    rng = random.Random(f"cancel-{backend_name}")

    async def main():
        return await _cancel_at_random(await aio.fetch(backend.conf), rng)
    outcomes = asyncio.run(main())
    assert sum(outcomes.values()) == ITERATIONS
    # Both ends happen: cancelled before the save started, and after it was sent.
    assert outcomes["before"] > 0 and outcomes["after"] > 0, outcomes


def test_a_write_cut_by_cancellation_in_flight_completes_and_is_kept(tmp_path):
    """Cancelled while the backend call is in flight: the call finishes, the record
    is marked saved, and CancelledError still reaches the caller."""
    async def main():
        async with aio.backend(f"sqlite:///{tmp_path}/c.db") as be:
            book = models.LogBook("b")
            flow = models.FlowDetail("f", "f-1")
            book.add(flow)
            conn = await be.get_connection()
            await conn.save_logbook(book)
            storage = aio.AsyncStorage(flow, be)
            await storage.ensure_atoms([Task("t")])
            task = asyncio.create_task(storage.save("t", 7))
            for _ in range(50):   # until the write is in flight (the storage lock is held)
                await asyncio.sleep(0)
                if storage._lock.locked():
                    break
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            stored = await conn.get_atom_details(await storage.get_atom_uuid("t"))
            assert stored.results == 7 and await storage.get_execute_result("t") == 7
            await storage.save("t", 8)   # its revision is the stored one
            await conn.close()
            await storage.close()
    asyncio.run(main())
