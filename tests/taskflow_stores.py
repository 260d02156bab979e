"""Fill real TaskFlow stores by running real TaskFlow 6.5.0 flows against TaskFlow's
own persistence backends (SQL, dir, ZooKeeper), and read them back with TaskFlow.

Nothing here imports ``persistence``'s TaskFlow reader: what TaskFlow itself stores
and reads back is the reference the migration tests compare against.

The flows cover what an engine leaves in a store: a linear flow whose task reads
a value injected with ``store=`` and reports progress (atom meta), a graph flow,
a retry whose history holds two failed attempts, a flow that failed and was
reverted (a Failure with a cause; revert results), a flow whose revert failed
too (a revert failure), and a flow suspended half-way (resumable).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

taskflow = __import__("pytest").importorskip("taskflow")

from taskflow import engines, retry, task  # noqa: E402
from taskflow.patterns import graph_flow, linear_flow, unordered_flow  # noqa: E402
from taskflow.persistence import backends as tf_backends  # noqa: E402
from taskflow.persistence import models as tf_models  # noqa: E402


class Double(task.Task):
    """Doubles an injected value and reports progress on the way (atom meta)."""

    default_provides = "doubled"

    def execute(self, x):
        self.update_progress(0.5)
        return {"value": x * 2, "unicode": "naïve ✓", "nested": [1, 2.5, None, True]}

    def revert(self, x, result, **kwargs):
        return f"undid {x}"


class AddOne(task.Task):
    def execute(self, doubled):
        return doubled["value"] + 1


class Echo(task.Task):
    def execute(self, **kwargs):
        return sorted(kwargs.items())


class Flaky(task.Task):
    """Fails the first ``failures`` times it runs in this process, then succeeds."""

    def __init__(self, name: str, failures: int) -> None:
        super().__init__(name=name)
        self.failures = failures
        self.calls = 0

    def execute(self, attempt_value):
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError(f"flaky attempt {self.calls} with {attempt_value}")
        return f"done with {attempt_value}"


class Boom(task.Task):
    """Fails with an exception that has a cause (``raise ... from``)."""

    def execute(self, doubled):
        try:
            {}["missing"]
        except KeyError as err:
            raise ValueError(f"cannot use {doubled['value']}") from err


class BadRevert(task.Task):
    def execute(self):
        return "ran"

    def revert(self, **kwargs):
        raise OSError(5, "revert could not undo")


class Stop(task.Task):
    """Suspends its engine from inside the flow (what a shutdown does)."""

    def __init__(self, name: str, engine_box: list) -> None:
        super().__init__(name=name)
        self.engine_box = engine_box

    def execute(self):
        self.engine_box[0].suspend()
        return "asked to suspend"


def _run(flow, backend, book, store=None, expect_failure: type | None = None,
         suspend_box: list | None = None) -> str:
    engine = engines.load(flow, store=store, backend=backend, book=book)
    if suspend_box is not None:
        suspend_box.append(engine)
    if expect_failure is None:
        engine.run()
    else:
        try:
            engine.run()
        except expect_failure:
            pass
        else:
            raise AssertionError(f"{flow.name} did not fail")
    return engine.storage.flow_uuid


def run_flows(backend, book) -> list[str]:
    """Run every sample flow into ``book``; return the flow detail uuids."""
    flows = []
    linear = linear_flow.Flow("linear").add(Double("double"), AddOne("add-one"))
    flows.append(_run(linear, backend, book, store={"x": 21, "extra": ["a", "b"]}))

    graph = graph_flow.Flow("graph").add(
        Double("g-double"), AddOne("g-add-one"),
        Echo("g-echo", requires=("doubled", "y"), provides="echoed"))
    flows.append(_run(graph, backend, book, store={"x": 4, "y": {"k": "v"}}))

    retried = linear_flow.Flow("retried", retry=retry.ForEach(
        ["first", "second", "third"], name="attempts", provides="attempt_value")).add(
        Flaky("flaky", failures=2))
    flows.append(_run(retried, backend, book))

    failed = linear_flow.Flow("failed").add(Double("f-double"), Boom("boom"))
    flows.append(_run(failed, backend, book, store={"x": 5}, expect_failure=ValueError))

    revert_failed = unordered_flow.Flow("revert-failed").add(
        BadRevert("bad-revert"))
    revert_failed = linear_flow.Flow("revert-failed").add(
        revert_failed, Boom("boom2", inject={"doubled": {"value": 1}}))
    flows.append(_run(revert_failed, backend, book, expect_failure=Exception))

    box: list = []
    suspended = linear_flow.Flow("suspended").add(
        Double("s-double"), Stop("stop", box), AddOne("s-add-one"))
    flows.append(_run(suspended, backend, book, store={"x": 8}, suspend_box=box))
    return flows


@contextlib.contextmanager
def taskflow_backend(conf: Mapping[str, Any], upgrade: bool = True) -> Iterator[Any]:
    """TaskFlow's own backend for ``conf`` (schema/layout created when ``upgrade``)."""
    backend = tf_backends.fetch(dict(conf))
    try:
        if upgrade:
            with contextlib.closing(backend.get_connection()) as conn:
                conn.upgrade()
        yield backend
    finally:
        backend.close()


def fill(conf: Mapping[str, Any], books: int = 1, meta: Mapping[str, Any] | None = None
         ) -> list[str]:
    """Create ``books`` logbooks in TaskFlow's store ``conf``, each holding every sample
    flow run by a real engine; return the logbook uuids."""
    uuids = []
    with taskflow_backend(conf) as backend:
        for i in range(books):
            book = tf_models.LogBook(f"book-{i}")
            book.meta.update(meta or {"owner": "tests", "index": i})
            with contextlib.closing(backend.get_connection()) as conn:
                conn.save_logbook(book)
            run_flows(backend, book)
            uuids.append(book.uuid)
    return uuids


def fill_plain(conf: Mapping[str, Any], books: int, atoms: int = 4) -> list[str]:
    """Many small logbooks written through TaskFlow's backend API (no engine): fast
    enough to make a store big enough to kill a migration in the middle of."""
    uuids = []
    with taskflow_backend(conf) as backend, \
            contextlib.closing(backend.get_connection()) as conn:
        for i in range(books):
            book = tf_models.LogBook(f"plain-{i}")
            fd = tf_models.FlowDetail(f"flow-{i}", uuid=f"flow-{i}-{book.uuid[:8]}")
            fd.state = "SUCCESS"
            for a in range(atoms):
                ad = tf_models.TaskDetail(f"task-{a}", uuid=f"atom-{a}-{fd.uuid}")
                ad.put("SUCCESS", {"i": i, "a": a})
                fd.add(ad)
            book.add(fd)
            conn.save_logbook(book)
            uuids.append(book.uuid)
    return uuids


def read_back(conf: Mapping[str, Any]) -> dict[str, Any]:
    """Every logbook in TaskFlow's store ``conf`` as TaskFlow's own backend reads it."""
    with taskflow_backend(conf, upgrade=False) as backend, \
            contextlib.closing(backend.get_connection()) as conn:
        return {book.uuid: book for book in conn.get_logbooks()}
