"""More Storages than pooled connections: they share the pool instead of waiting.

Each ``Storage`` keeps its backend connection between calls; once the pool's
idle capacity is all checked out, a connection goes back to the pool after
each operation, so an engine running more flows than ``pool_size`` (and
``max_overflow``) allows never waits ``pool_timeout`` for a connection nobody
is using.
"""

from __future__ import annotations

import threading

import pytest

import persistence
from persistence import FlowDetail, LogBook, states
from persistence.atom import Task
from persistence.storage import Storage

FLOWS = 12


@pytest.mark.parametrize("kind", ["postgresql", "mysql"])
def test_more_flows_than_connections_share_the_pool(sql_database_factory, kind):
    url = sql_database_factory(kind)
    conf = {"connection": url, "pool_size": 2, "max_overflow": 1, "pool_timeout": 5,
            "retry_attempts": 0}
    with persistence.backend(conf) as be:
        with be.get_connection() as conn:
            conn.upgrade()
            flows = []
            for i in range(FLOWS):
                book, flow = LogBook(f"b{i}"), FlowDetail(f"f{i}")
                book.add(flow)
                conn.save_logbook(book)
                flows.append(flow)
        storages = [Storage(flow, be) for flow in flows]
        errors: list[BaseException] = []
        start = threading.Barrier(FLOWS)

        def run(storage: Storage) -> None:
            try:
                storage.ensure_atoms([Task(f"t{i}") for i in range(5)])
                start.wait(timeout=30)
                for i in range(5):
                    storage.set_atom_state(f"t{i}", states.RUNNING)
                    storage.save(f"t{i}", i)
            except BaseException as err:  # reported below
                errors.append(err)

        threads = [threading.Thread(target=run, args=(s,)) for s in storages]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors[:3]
        assert be.engine.pool.checkedout() <= 3      # never more than the pool allows
        for s in storages:
            s.close()
        with be.get_connection() as conn:
            for flow in flows:
                stored = conn.get_flow_details(flow.uuid)
                assert sorted(ad.results for ad in stored) == [0, 1, 2, 3, 4]
