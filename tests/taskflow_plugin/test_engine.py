"""TaskFlow's engine, unchanged, storing through the plugin on every backend.

``taskflow.engines.load(flow, backend=conf, book=book)`` runs a flow with
linear and graph patterns, a retry, injected arguments and a revert; what it
stored is then read twice: with our API (``persistence.fetch``'s backend)
and with TaskFlow's own ``Storage`` over a fresh plugin backend.
"""

from __future__ import annotations

import contextlib

import pytest
import taskflow.engines
from taskflow import states as tf_states
from taskflow import storage as tf_storage
from taskflow.persistence import models as tf_models

from persistence import states
from tests.taskflow_plugin.flows import ORDER_RESULTS, atoms_of, order_flow, refund_flow


def _run(plugin_store, flow, book, **kwargs):
    engine = taskflow.engines.load(flow, book=book, backend=plugin_store.engine_backend(),
                                   **kwargs)
    return engine


def _atom_name(details):
    return details.get("task_name") or details.get("retry_name")


def _ours(plugin_store, book_uuid):
    with contextlib.closing(plugin_store.backend.get_connection()) as conn:
        return conn.get_logbook(book_uuid)


@contextlib.contextmanager
def _taskflow_storage(plugin_store, book_uuid, flow):
    """TaskFlow's own Storage on the stored flow, through a fresh plugin backend,
    knowing ``flow``'s atoms as an engine makes it (nothing new is written)."""
    with contextlib.closing(plugin_store.taskflow_backend()) as backend:
        with contextlib.closing(backend.get_connection()) as conn:
            (flow_detail,) = list(conn.get_logbook(book_uuid))
        storage = tf_storage.Storage(flow_detail, backend=backend)
        storage.ensure_atoms(atoms_of(flow))
        yield storage


@pytest.mark.parametrize("kind", ["serial", "parallel"])
def test_flow_with_graph_retry_and_injection_runs_and_is_stored(plugin_store, kind):
    book = tf_models.LogBook("orders")
    engine = _run(plugin_store, order_flow(), book, store={"seed": 5}, inject_transient=False,
                  engine=kind)
    engine.run()
    assert engine.storage.fetch_all() == ORDER_RESULTS

    # Our API reads what TaskFlow's engine stored.
    stored = _ours(plugin_store, book.uuid)
    (flow,) = list(stored)
    assert (flow.name, flow.state) == ("order", states.SUCCESS)
    atoms = {ad.name: ad for ad in flow}
    assert {n: ad.results for n, ad in atoms.items()
            if n in ("fetch", "a", "b", "c", "flaky")} == {
        "fetch": 10, "a": 11, "b": 12, "c": 230, "flaky": 3}
    assert all(ad.state == states.SUCCESS for ad in atoms.values())
    assert atoms["a"].meta["injected"] == {"offset": 1}
    assert atoms["c"].meta["injected"] == {"factor": 10}
    assert atoms["_TaskFlow_INJECTOR"].results == {"seed": 5}
    assert atoms["fetch"].version == "1.0"
    history = atoms["retry"].results
    assert [data for data, _ in history] == [1, 2, 3]
    assert [sorted(failures) for _, failures in history] == [["flaky"], ["flaky"], []]
    first = history[0][1]["flaky"]
    assert first.check(RuntimeError) and first.exception_str == "attempt 1 failed"

    # TaskFlow's own Storage reads it back through the plugin.
    with _taskflow_storage(plugin_store, book.uuid, order_flow()) as storage:
        assert storage.get("c") == 230
        assert storage.fetch_all() == ORDER_RESULTS
        assert storage.get_flow_state() == tf_states.SUCCESS
        assert storage.get_atom_state("flaky") == tf_states.SUCCESS
        retry_history = storage.get_retry_history("retry")
        assert [data for data, _ in retry_history] == [1, 2, 3]
        failure = retry_history.caused_by(RuntimeError)
        assert failure
        assert storage.fetch("c") == 230


def test_failing_flow_reverts_and_stores_failure_and_revert_results(plugin_store):
    book = tf_models.LogBook("refunds")
    engine = _run(plugin_store, refund_flow(), book, store={"item": "book-42"})
    with pytest.raises(ValueError, match="cannot charge reserved-book-42"):
        engine.run()

    stored = _ours(plugin_store, book.uuid)
    (flow,) = list(stored)
    assert flow.state == states.REVERTED
    atoms = {ad.name: ad for ad in flow}
    assert atoms["charge"].state == atoms["reserve"].state == states.REVERTED
    assert atoms["reserve"].revert_results == {"released": "reserved-book-42",
                                               "because": ["charge"]}
    failure = atoms["charge"].failure
    assert failure.check(ValueError) and failure.exception_str == \
        "cannot charge reserved-book-42"
    assert failure.cause is not None and failure.cause.check(KeyError)
    assert "raise ValueError" in failure.traceback_str

    with _taskflow_storage(plugin_store, book.uuid, refund_flow()) as storage:
        assert storage.get_flow_state() == tf_states.REVERTED
        assert storage.get_revert_result("reserve") == atoms["reserve"].revert_results
        (name, tf_failure), = storage.get_execute_failures().items()
        assert name == "charge" and tf_failure.check(ValueError)
        assert [c.check(KeyError) for c in tf_failure.causes] == [KeyError]


def test_second_run_of_a_finished_flow_runs_nothing(plugin_store):
    """A finished flow detail loaded back through the plugin: the engine finds every
    atom done and runs none of them (the results come from the store)."""
    book = tf_models.LogBook("again")
    first = _run(plugin_store, order_flow(), book, store={"seed": 5})
    ran = []
    first.atom_notifier.register("*", lambda state, details: ran.append(_atom_name(details)))
    first.run()
    assert {"fetch", "a", "b", "c", "retry", "flaky"} <= set(ran)
    ran.clear()
    with contextlib.closing(plugin_store.taskflow_backend()) as backend:
        with contextlib.closing(backend.get_connection()) as conn:
            loaded = conn.get_logbook(book.uuid)
        (flow_detail,) = list(loaded)
        engine = taskflow.engines.load(order_flow(), flow_detail=flow_detail, book=loaded,
                                       backend=backend)
        engine.atom_notifier.register("*", lambda state, details: ran.append(
            _atom_name(details)))
        engine.run()
        assert engine.storage.fetch_all() == ORDER_RESULTS
    assert ran == []


def test_a_memory_store_needs_no_upgrade_as_with_taskflow():
    """TaskFlow's engines never call upgrade(); a fresh memory store works anyway."""
    engine = taskflow.engines.load(order_flow(), store={"seed": 5},
                                   book=tf_models.LogBook("memory"),
                                   backend={"connection": "persistence+memory://"})
    engine.run()
    assert engine.storage.fetch_all() == ORDER_RESULTS
