"""A small reference engine: runs a flow of tasks through :class:`Storage`, resuming.

Not a production workflow engine — it shows how an engine uses ``Storage``
and what resumption looks like.  Dependencies come from names: a task that
requires ``x`` runs after the task that provides ``x``, so a flow is just a
list of tasks (a chain, a diamond, any DAG).  Values travel only through
``Storage``: results are saved there and arguments fetched from there.  A task
whose result is already stored (state SUCCESS) is skipped; any other task
runs, again if it was interrupted.

Tasks are :class:`~persistence.atom.Task` objects with an ``execute(**args)``
method.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from ..backends.base import Backend
from ..exceptions import NotFound
from ..models import records as models
from ..models import states
from ..models.claim import DEFAULT_TTL
from ..models.failure import Failure
from ..runtime.storage import Storage

__all__ = ["Engine", "Outcome", "plan"]

SKIPPED, RAN = "skipped", "ran"


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What the engine did with one task in one run."""

    name: str
    before: str | None   # the task's state in storage when the run started
    action: str          # SKIPPED (result already stored) or RAN
    result: Any


def plan(tasks: Sequence[Any]) -> tuple[list[Any], dict[str, list[str]]]:
    """Tasks in a runnable order (declaration order where free) and each one's predecessors."""
    providers: dict[str, list[str]] = {}
    for task in tasks:
        for name in task.save_as:
            providers.setdefault(name, []).append(task.name)
    preds = {task.name: sorted({p for value in task.rebind.values()
                                for p in providers.get(value, ()) if p != task.name})
             for task in tasks}
    order, done = [], set()
    pending = list(tasks)
    while pending:
        ready = next((t for t in pending if set(preds[t.name]) <= done), None)
        if ready is None:
            raise ValueError(f"tasks {', '.join(t.name for t in pending)} depend on each "
                             f"other in a cycle")
        pending.remove(ready)
        order.append(ready)
        done.add(ready.name)
    return order, preds


class Engine:
    """Runs ``tasks`` against ``flow_detail`` (saved in ``backend``, if one is given).

    ``on_done(name, result)`` is called after each task's result is saved.
    With ``claim=True`` the engine runs the flow as its only writer, ``owner``
    (NotOwner when another engine holds it; see :class:`Storage`); close
    ``engine.storage`` afterwards to release the claim.
    """

    def __init__(self, tasks: Sequence[Any], flow_detail: models.FlowDetail,
                 backend: Backend | None = None, policy: str = "always",
                 on_done: Callable[[str, Any], None] | None = None, *,
                 owner: str | None = None, claim: bool = False,
                 ttl: float = DEFAULT_TTL) -> None:
        self.tasks = list(tasks)
        self.order, self.predecessors = plan(self.tasks)
        self.on_done = on_done
        self.storage = Storage(flow_detail, backend, scope_lookup=self.scope_of, policy=policy,
                               owner=owner, claim=claim, ttl=ttl)

    def scope_of(self, atom_name: str) -> list[list[str]]:
        """Atoms visible to ``atom_name``: its predecessors, nearest level first."""
        levels, seen = [], {atom_name}
        level = self.predecessors.get(atom_name, [])
        while level:
            levels.append(level)
            seen.update(level)
            level = sorted({p for name in level for p in self.predecessors[name]} - seen)
        return levels

    def _prepare(self) -> None:
        storage = self.storage
        storage.ensure_atoms(self.tasks)
        for task in self.tasks:
            if task.inject:
                storage.inject_atom_args(task.name, task.inject, transient=False)
        for task in self.tasks:
            missing = storage.fetch_unsatisfied_args(task.name, task.rebind,
                                                     optional_args=task.optional)
            if missing:
                raise NotFound(f"task {task.name!r} needs {', '.join(sorted(missing))}, "
                               f"which no task provides and nothing injected")

    def run(self) -> list[Outcome]:
        """Run every task not finished yet; return what happened to each, in run order."""
        storage = self.storage
        self._prepare()
        before = storage.get_atoms_states(t.name for t in self.order)
        if storage.get_flow_state() == states.RUNNING:   # the last run died
            storage.change_flow_state(states.RESUMING)
            storage.change_flow_state(states.SUSPENDED)
        storage.change_flow_state(states.RUNNING)
        outcomes = []
        for task in self.order:
            state = before[task.name][0]
            if state == states.SUCCESS:
                outcomes.append(Outcome(task.name, state, SKIPPED, storage.get(task.name)))
                continue
            if state not in (states.PENDING, states.RUNNING):
                storage.reset(task.name)
            storage.set_atom_state(task.name, states.RUNNING)
            args = storage.fetch_mapped_args(task.rebind, atom_name=task.name,
                                             optional_args=task.optional)
            try:
                result = task.execute(**args)
            except Exception:
                storage.save(task.name, Failure(), states.FAILURE)
                storage.change_flow_state(states.FAILURE)
                raise
            storage.save(task.name, result)
            outcomes.append(Outcome(task.name, state, RAN, result))
            if self.on_done is not None:
                self.on_done(task.name, result)
        storage.change_flow_state(states.SUCCESS)
        return outcomes
