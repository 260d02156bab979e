"""Sync and asyncio engines share stores: an engine SIGKILLed mid-flow is resumed by
an engine of the other kind, which takes the expired claim over and finishes
the flow without redoing what was saved."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import persistence
from persistence import models, states

ATOMS = 12
TTL = 1.0

ASYNC_ENGINE = textwrap.dedent('''
    import asyncio, json, sys
    from persistence import aio
    from persistence.runtime.atom import Task
    async def main(conf, flow_uuid):
        be = await aio.fetch(conf)
        conn = await be.get_connection()
        flow = await conn.get_flow_details(flow_uuid)
        async with aio.AsyncStorage(flow, be, owner="async-engine", claim=True, ttl={ttl}) as st:
            await st.ensure_atoms([Task(f"t{{i}}") for i in range({atoms})])
            for i in range({atoms}):
                if await st.get_atom_state(f"t{{i}}") != "SUCCESS":
                    await st.save(f"t{{i}}", {{"by": "async", "i": i}})
                    await asyncio.sleep(0.05)
    asyncio.run(main(json.loads(sys.argv[1]), sys.argv[2]))
''').format(ttl=TTL, atoms=ATOMS)

SYNC_ENGINE = textwrap.dedent('''
    import json, sys, time, persistence
    from persistence.runtime.atom import Task
    be = persistence.fetch(json.loads(sys.argv[1]))
    with be.get_connection() as conn:
        flow = conn.get_flow_details(sys.argv[2])
    with persistence.Storage(flow, be, owner="sync-engine", claim=True, ttl={ttl}) as st:
        st.ensure_atoms([Task(f"t{{i}}") for i in range({atoms})])
        for i in range({atoms}):
            if st.get_atom_state(f"t{{i}}") != "SUCCESS":
                st.save(f"t{{i}}", {{"by": "sync", "i": i}})
                time.sleep(0.05)
''').format(ttl=TTL, atoms=ATOMS)


def _done(be, flow_uuid):
    with be.get_connection() as conn:
        return [ad for ad in conn.get_atoms_for_flow(flow_uuid) if ad.state == states.SUCCESS]


def _kill_midway(script, uri, flow_uuid, be):
    child = subprocess.Popen([sys.executable, "-c", script, json.dumps(uri), flow_uuid])
    try:
        deadline = time.monotonic() + 60
        while len(_done(be, flow_uuid)) < 3:
            assert child.poll() is None, "the engine ended before it was killed"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    done = len(_done(be, flow_uuid))
    assert 3 <= done < ATOMS
    return done


async def _resume_async(uri, flow_uuid):
    from persistence import aio
    be = await aio.fetch(uri)
    conn = await be.get_connection()
    flow = await conn.get_flow_details(flow_uuid)
    async with aio.AsyncStorage(flow, be, owner="async-resumer", claim=True, ttl=TTL) as st:
        assert st.claim.taken_over_from == "sync-engine"
        for i in range(ATOMS):
            if await st.get_atom_state(f"t{i}") != states.SUCCESS:
                await st.save(f"t{i}", {"by": "async", "i": i})
    await conn.close()
    await be.close()


def _resume_sync(be, flow_uuid):
    with be.get_connection() as conn:
        flow = conn.get_flow_details(flow_uuid)
    with persistence.Storage(flow, be, owner="sync-resumer", claim=True, ttl=TTL) as st:
        assert st.claim.taken_over_from == "async-engine"
        for i in range(ATOMS):
            if st.get_atom_state(f"t{i}") != states.SUCCESS:
                st.save(f"t{i}", {"by": "sync", "i": i})


@pytest.fixture(params=["sqlite", "postgresql", "zookeeper"])
def store_uri(request, tmp_path):
    """The configuration of an empty store (a URI, or a dict for ZooKeeper)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/shared.db"
    if request.param == "zookeeper":
        return dict(request.getfixturevalue("backend_zookeeper").conf)
    from tests.fixtures.sql import _shared_url
    return _shared_url(request.getfixturevalue("sql_database_factory"), "postgresql")


@pytest.mark.parametrize("first", ["async", "sync"])
def test_an_engine_killed_midway_is_resumed_by_the_other_kind(store_uri, first):
    import asyncio
    with persistence.backend(store_uri) as be:
        book = models.LogBook("shared")
        flow = models.FlowDetail("shared", f"shared-{first}")
        book.add(flow)
        with be.get_connection() as conn:
            conn.save_logbook(book)
        killed_at = _kill_midway(ASYNC_ENGINE if first == "async" else SYNC_ENGINE,
                                 store_uri, flow.uuid, be)
        time.sleep(TTL + 0.2)   # the dead engine's claim expires
        if first == "async":
            _resume_sync(be, flow.uuid)
        else:
            asyncio.run(_resume_async(store_uri, flow.uuid))
        results = {ad.name: ad.results for ad in _done(be, flow.uuid)}
        assert sorted(results) == sorted(f"t{i}" for i in range(ATOMS))
        by_first = [n for n, r in results.items() if r["by"] == first]
        assert len(by_first) >= killed_at   # nothing saved by the killed engine was redone
