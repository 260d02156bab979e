"""50 threads saving, injecting and reading on one Storage lose nothing."""

from __future__ import annotations

import threading

import pytest

from persistence import states
from persistence.atom import Task
from persistence.storage import Storage
from tests.test_storage import reload, saved_flow

THREADS = 50


@pytest.mark.parametrize("policy", ["always", "batch"])
def test_fifty_threads_lose_nothing(backend, policy):
    flow = saved_flow(backend)
    s = Storage(flow, backend, policy=policy)
    barrier = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            name = f"t{i}"
            s.ensure_atom(Task(name, provides=f"v{i}"))
            s.set_atom_state(name, states.RUNNING)
            s.inject({f"k{i}": i})
            s.inject_atom_args(name, {"own": i}, transient=False)
            s.set_task_progress(name, 0.5)
            assert s.fetch(f"k{i}") == i
            s.save(name, i * 10)
            assert s.fetch(f"v{i}") == i * 10
            assert s.fetch_mapped_args({"own": "own", "mine": f"v{i}"}, atom_name=name) == {
                "own": i, "mine": i * 10}
            s.fetch_all()
            s.update_flow_metadata({f"m{i}": i})
        except BaseException as err:  # reported below, with the thread's traceback
            errors.append(err)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    if errors:
        raise errors[0]
    s.flush()
    assert not s.has_pending

    for view in (s.flow_detail, reload(backend, flow.uuid)):
        details = {ad.name: ad for ad in view}
        injector = details.pop(Storage.injector_name)
        assert injector.results == {f"k{i}": i for i in range(THREADS)}
        assert {name: (ad.state, ad.results) for name, ad in details.items()} == {
            f"t{i}": (states.SUCCESS, i * 10) for i in range(THREADS)}
        assert all(ad.meta["injected"] == {"own": int(name[1:])} and ad.meta["progress"] == 0.5
                   for name, ad in details.items())
        assert dict(view.meta) == {f"m{i}": i for i in range(THREADS)}
