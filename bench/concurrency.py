"""W6: many flows checkpointing at once through one backend object.

An engine runs many flows at the same time, each with its own ``Storage``, all
on the one backend it fetched.  Here each flow is a thread: it saves its flow
detail, creates its ``Storage`` (policy ``always``), declares a pool of atoms,
waits at a common start line, then runs the per-atom checkpoint (RUNNING, then
``save`` of a small dict) over its atoms in turn until the window closes.
Aggregate atoms/s is every flow's atoms divided by the time from the start
line to the last flow's last atom.

Errors are never allowed to stop the measurement silently: an error that
escapes a Storage call is counted by its first line (verbatim), the flow goes
on with its next atom, and the figures say how many atoms failed.  Runs inside
a worker process (``bench/worker.py --part w6`` / ``w6proc``) with the
project's interpreter.
"""

from __future__ import annotations

import collections
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

__all__ = ["LEVELS", "run_levels", "FlowGroup", "error_line"]

LEVELS = (1, 2, 4, 8, 16)


def error_line(err: BaseException) -> str:
    """``Type: first line of the message`` (what the report shows verbatim)."""
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:240] if text else ''}"


def is_lock_error(line: str) -> bool:
    """Whether an error line is about a lock (sqlite 'database is locked', a lock
    file, a lock wait timeout, a deadlock)."""
    lowered = line.lower()
    return "lock" in lowered or "busy" in lowered


class _Flow:
    """One flow: its own flow detail and Storage on the shared backend."""

    def __init__(self, api: Any, backend: Any, tag: str, atoms: int) -> None:
        book = api.models.LogBook(f"w6-{tag}")
        self.fd = api.models.FlowDetail(f"w6-{tag}-flow", str(uuid.uuid4()))
        self.fd.state = api.states.RUNNING
        book.add(self.fd)
        conn = backend.get_connection()
        try:
            conn.save_logbook(book)
        finally:
            conn.close()
        self.api = api
        self.storage = api.make_storage(self.fd, backend, "always")
        self.names = [f"w6-{tag}-atom-{i}" for i in range(atoms)]
        self.storage.ensure_atoms(api.make_tasks(self.names))
        self.done = 0
        self.finished = 0.0
        self.errors: collections.Counter[str] = collections.Counter()

    def run(self, start: threading.Barrier, deadline: Callable[[], float]) -> None:
        """Checkpoint atoms in turn (cycling through the pool) until the deadline."""
        running, storage = self.api.states.RUNNING, self.storage
        try:
            start.wait()
        except threading.BrokenBarrierError:  # the window never opened
            return
        end = deadline()
        i = 0
        while time.perf_counter() < end:
            name = self.names[i % len(self.names)]
            try:
                storage.set_atom_state(name, running)
                storage.save(name, {"value": i, "ok": True, "note": "small result"})
                self.done += 1
            except Exception as err:  # counted and reported, the flow goes on
                self.errors[error_line(err)] += 1
            i += 1
        self.finished = time.perf_counter()

    def close(self) -> None:
        try:
            self.storage.close()
        except Exception as err:
            self.errors[f"close: {error_line(err)}"] += 1


class FlowGroup:
    """``flows`` flows (threads) on one backend, measured over one window."""

    def __init__(self, api: Any, backend: Any, flows: int, pool: int, tag: str) -> None:
        self.flows: list[_Flow] = []
        self.setup_errors: collections.Counter[str] = collections.Counter()
        for f in range(flows):
            try:
                self.flows.append(_Flow(api, backend, f"{tag}-{f}", pool))
            except Exception as err:
                self.setup_errors[error_line(err)] += 1

    def measure(self, window_s: float, wait_until: Callable[[], None] | None = None
                ) -> dict[str, Any]:
        """Run every flow for ``window_s`` seconds from a common start line.

        ``wait_until`` (if given) is called by the main thread once every flow is
        at the start line, and returns when the window may open (a cross-process
        start signal).
        """
        barrier = threading.Barrier(len(self.flows) + 1)
        opened: list[float] = []

        def deadline() -> float:
            return opened[0] + window_s

        threads = [threading.Thread(target=f.run, args=(barrier, deadline), daemon=True)
                   for f in self.flows]
        for th in threads:
            th.start()
        if wait_until is not None:
            try:
                wait_until()
            except BaseException:
                barrier.abort()
                raise
        opened.append(time.perf_counter())
        barrier.wait()
        for th in threads:
            th.join()
        elapsed = max((f.finished for f in self.flows), default=opened[0]) - opened[0]
        errors: collections.Counter[str] = collections.Counter(self.setup_errors)
        for f in self.flows:
            errors.update(f.errors)
            f.errors.clear()
        done = sum(f.done for f in self.flows)
        for f in self.flows:
            f.done = 0
        return summary(done, elapsed, errors, len(self.flows))

    def close(self) -> None:
        for f in self.flows:
            f.close()


def summary(atoms: int, elapsed: float, errors: collections.Counter[str],
            flows: int) -> dict[str, Any]:
    failed = sum(errors.values())
    return {"atoms": atoms, "seconds": elapsed, "flows": flows,
            "atoms_per_s": atoms / elapsed if elapsed > 0 else None,
            "errors": failed,
            "lock_errors": sum(n for line, n in errors.items() if is_lock_error(line)),
            "error_lines": dict(errors.most_common(10))}


def run_levels(api: Any, backend: Any, levels: tuple[int, ...], window_s: float,
               reps: int, pool: int, budget_s: float) -> dict[str, Any]:
    """Each level (number of flows) up to ``reps`` times, levels interleaved repetition
    by repetition (no repetition starts that would end past ``budget_s``); per level
    the median atoms/s and every repetition's figures."""
    from .workloads import median

    started = time.perf_counter()
    runs: dict[int, list[dict[str, Any]]] = {n: [] for n in levels}
    for rep in range(reps):
        begun = time.perf_counter()
        for n in (levels if rep % 2 == 0 else tuple(reversed(levels))):
            # One level's flows at a time: each Storage holds its connection.
            group = FlowGroup(api, backend, n, pool, f"t{n}-r{rep}")
            try:
                runs[n].append(group.measure(window_s))
            finally:
                group.close()
        now = time.perf_counter()
        if now - started + (now - begun) > budget_s:
            break
    out: dict[str, Any] = {}
    for n in levels:
        errors: collections.Counter[str] = collections.Counter()
        for run in runs[n]:
            errors.update(run["error_lines"])
        out[str(n)] = {"atoms_per_s": median([r["atoms_per_s"] for r in runs[n]]),
                       "reps": len(runs[n]), "runs": runs[n],
                       "errors": sum(r["errors"] for r in runs[n]),
                       "lock_errors": sum(r["lock_errors"] for r in runs[n]),
                       "error_lines": dict(errors.most_common(10))}
    return out
