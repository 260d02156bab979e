"""An asyncio reference engine: the demo flow through ``persistence.aio.AsyncStorage``.

The asyncio twin of :class:`persistence.tools.engine.Engine`: the same plan
(a task runs after the tasks providing what it requires), the same rules
(a task whose result is stored is skipped, any other runs, again if it was
interrupted), every value through the store.  Sync and asyncio engines share
stores: ``tests/test_aio_demo.py`` SIGKILLs this engine half-way through the
demo flow and resumes it with the sync demo engine, and the other way round.

Run it with the arguments of the demo's child (the backend URI from
``PERSISTENCE_URI``, as the CLI takes it, so a password never shows in a
process list)::

    PERSISTENCE_URI=sqlite:///demo.db \\
        python examples/asyncio_engine.py --flow FLOW_UUID --journal run.log \\
        --report outcomes.json [--crash-after N]

Each execution of a task is appended to the journal (name and pid) before
the task runs; with ``--crash-after N`` the engine kills itself (SIGKILL) in
the middle of the task after the first N have finished.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from persistence import aio, states
from persistence.models.failure import Failure
from persistence.tools.demo import build_flow, child_arguments, journaled
from persistence.tools.engine import RAN, SKIPPED, plan

ENV_URI = "PERSISTENCE_URI"


async def run_flow(tasks: list[Any], storage: aio.AsyncStorage,
                   on_done: Any = None) -> list[dict[str, Any]]:
    """Run every task not finished yet; what happened to each, in run order."""
    order, _ = plan(tasks)
    await storage.ensure_atoms(tasks)
    for task in tasks:
        if task.inject:
            await storage.inject_atom_args(task.name, task.inject, transient=False)
    before = await storage.get_atoms_states([t.name for t in order])
    if await storage.get_flow_state() == states.RUNNING:   # the last run died
        await storage.change_flow_state(states.RESUMING)
        await storage.change_flow_state(states.SUSPENDED)
    await storage.change_flow_state(states.RUNNING)
    outcomes = []
    for task in order:
        state = before[task.name][0]
        if state == states.SUCCESS:
            outcomes.append({"name": task.name, "before": state, "action": SKIPPED,
                             "result": await storage.get(task.name)})
            continue
        if state not in (states.PENDING, states.RUNNING):
            await storage.reset(task.name)
        await storage.set_atom_state(task.name, states.RUNNING)
        args = await storage.fetch_mapped_args(task.rebind, atom_name=task.name,
                                               optional_args=task.optional)
        try:
            result = task.execute(**args)
        except Exception:
            await storage.save(task.name, Failure(), states.FAILURE)
            await storage.change_flow_state(states.FAILURE)
            raise
        await storage.save(task.name, result)
        outcomes.append({"name": task.name, "before": state, "action": RAN, "result": result})
        if on_done is not None:
            on_done(task.name, result)
    await storage.change_flow_state(states.SUCCESS)
    return outcomes


async def main(argv: list[str]) -> int:
    args = child_arguments(argv, "python examples/asyncio_engine.py")
    tasks = build_flow()
    done = journaled(tasks, args.journal, args.crash_after)   # as the sync demo's child
    async with aio.backend(os.environ[ENV_URI]) as be:
        conn = await be.get_connection()
        try:
            flow = await conn.get_flow_details(args.flow)
        finally:
            await conn.close()
        async with aio.AsyncStorage(flow, be) as storage:
            outcomes = await run_flow(tasks, storage, done)
    with open(args.report, "w", encoding="utf-8") as fh:
        json.dump(outcomes, fh)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
