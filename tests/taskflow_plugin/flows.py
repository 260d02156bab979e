"""TaskFlow flows the plugin tests run: plain TaskFlow code, nothing of ours.

``order_flow``: a linear flow holding a graph flow and a retried subflow,
with arguments injected per atom and a flow-level ``store``.
``refund_flow``: a flow whose last task fails (its error raised from
another one), so the engine reverts the tasks before it.
"""

from __future__ import annotations

from taskflow import retry, task
from taskflow.patterns import graph_flow, linear_flow

#: What ``order_flow`` with ``store={"seed": 5}`` produces.
ORDER_RESULTS = {"seed": 5, "x": 10, "a": 11, "b": 12, "c": 230, "attempt": 3, "flaky": 3}


class Fetch(task.Task):
    default_provides = "x"

    def execute(self, seed):
        return seed * 2


class Add(task.Task):
    def execute(self, x, offset):
        return x + offset


class Multiply(task.Task):
    def execute(self, a, b, factor):
        return (a + b) * factor


class Flaky(task.Task):
    """Fails on the first two attempts of its retry."""

    default_provides = "flaky"

    def execute(self, attempt):
        if attempt < 3:
            raise RuntimeError(f"attempt {attempt} failed")
        return attempt


def order_flow() -> linear_flow.Flow:
    graph = graph_flow.Flow("combine").add(
        Add("a", provides="a", inject={"offset": 1}),
        Add("b", provides="b", inject={"offset": 2}),
        Multiply("c", provides="c", inject={"factor": 10}))
    retried = linear_flow.Flow("retried", retry=retry.Times(5, "retry", provides="attempt"))
    retried.add(Flaky("flaky"))
    return linear_flow.Flow("order").add(Fetch("fetch"), graph, retried)


class Reserve(task.Task):
    default_provides = "reservation"

    def execute(self, item):
        return f"reserved-{item}"

    def revert(self, item, result, flow_failures):
        return {"released": result, "because": sorted(flow_failures)}


class Charge(task.Task):
    def execute(self, reservation):
        try:
            {}["card"]
        except KeyError as err:
            raise ValueError(f"cannot charge {reservation}") from err


def refund_flow() -> linear_flow.Flow:
    return linear_flow.Flow("refund").add(Reserve("reserve"), Charge("charge"))


def atoms_of(flow) -> list:
    """Every atom of ``flow`` and its subflows, retry controllers included."""
    from taskflow import flow as tf_flow

    found = [flow.retry] if flow.retry is not None else []
    for item, _ in flow.iter_nodes():
        found.extend(atoms_of(item) if isinstance(item, tf_flow.Flow) else [item])
    return found
