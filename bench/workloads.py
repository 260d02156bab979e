"""Workloads W1–W5, written once against an adapter namespace (``api``).

The same functions run against ``persistence`` and, in a separate virtualenv,
against TaskFlow: they only touch ``api.models``, ``api.states``,
``api.make_storage``/``api.make_tasks`` and the backend connection methods
both libraries share.  This module imports nothing but the standard library,
so it loads under either interpreter.
"""

from __future__ import annotations

import dataclasses
import gc
import random
import resource
import time
import uuid
from collections.abc import Callable
from typing import Any

__all__ = ["Sizes", "FULL", "QUICK", "scaled", "run_main", "run_w5", "median", "percentile"]


@dataclasses.dataclass(frozen=True)
class Sizes:
    """How big each workload is; FULL follows the issue, QUICK is a smoke run."""

    reps: int = 5
    w1_flows: int = 10
    w1_atoms: int = 100
    w2_updates: int = 1000
    w3_books: int = 50
    w3_atoms: int = 10
    w4_atoms: int = 200
    w5_sizes: tuple[int, ...] = (100, 1000, 10000)
    w5_updates: int = 200
    w5_fill_chunk: int = 500
    floor_ops: int = 1000
    floor_rows: int = 1000
    # Time budgets (seconds of wall time per phase) keep the full run under
    # 15 minutes: a phase repeats ``reps`` times unless, after ``min_reps``
    # (W5: one), the next repetition would overrun its budget.
    budget_s: float = 10.0
    min_reps: int = 2
    w5_budget_s: float = 8.0
    # W6: each level (number of flows) runs w6_reps windows of w6_window_s seconds
    # (a backend stops repeating after one once w6_budget_s is used up), every flow
    # cycling through w6_pool atoms.  W7: w7_rounds rounds of w7_atoms atoms (after
    # w7_warmup untimed ones) per mode, floor and peer; no round starts that would
    # end past w7_budget_s.
    w6_window_s: float = 1.0
    w6_reps: int = 2
    w6_pool: int = 20
    w6_budget_s: float = 20.0
    w7_atoms: int = 200
    w7_rounds: int = 3
    w7_warmup: int = 10
    w7_budget_s: float = 150.0


FULL = Sizes()
QUICK = Sizes(reps=2, w1_flows=2, w1_atoms=10, w2_updates=20, w3_books=5, w3_atoms=3,
              w4_atoms=10, w5_sizes=(10, 50), w5_updates=10, w5_fill_chunk=20,
              floor_ops=50, floor_rows=50, budget_s=5.0, min_reps=2, w5_budget_s=5.0,
              w6_window_s=0.2, w6_reps=1, w6_pool=4, w6_budget_s=10.0, w7_atoms=10,
              w7_rounds=2, w7_warmup=2, w7_budget_s=60.0)


def scaled(sizes: Sizes, scale: float) -> Sizes:
    """``sizes`` with time budgets multiplied by ``scale``; below 0.75 one rep suffices."""
    if scale >= 1.0:
        return sizes
    return dataclasses.replace(sizes, budget_s=sizes.budget_s * scale,
                               w5_budget_s=sizes.w5_budget_s * scale,
                               min_reps=sizes.min_reps if scale >= 0.75 else 1)


def median(values: list[float]) -> float | None:
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile (no interpolation: p99 of 200 samples is the 198th)."""
    values = sorted(values)
    if not values:
        return None
    rank = max(1, -(-len(values) * pct // 100))
    return values[int(rank) - 1]


def repeat(sizes: Sizes, fn: Callable[[int], Any], w5: bool = False) -> list[Any]:
    """Call ``fn(rep)`` up to ``sizes.reps`` times within the phase's time budget.

    ``fn`` returns the measured seconds, or a dict with a ``seconds`` key.
    """
    budget = sizes.w5_budget_s if w5 else sizes.budget_s
    least = 1 if w5 else sizes.min_reps
    out: list[Any] = []
    start = time.perf_counter()
    for rep in range(sizes.reps):
        out.append(fn(rep))
        typical = median([o["seconds"] if isinstance(o, dict) else o for o in out])
        if len(out) >= least and time.perf_counter() - start + typical > budget:
            break
    return out


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def describe(err: BaseException) -> str:
    """One line naming the error and its cause (TaskFlow wraps driver errors)."""
    text = str(err).splitlines()[0] if str(err) else ""
    out = f"{type(err).__name__}: {text[:200]}"
    cause = err.__cause__
    if cause is not None and str(cause) and str(cause) not in out:
        out += f" (cause: {type(cause).__name__}: {str(cause).splitlines()[0][:200]})"
    return out


def _status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def peak_rss_mb() -> float:
    """Peak RSS of this process image (VmHWM; ru_maxrss would include the parent's
    size at fork time, which Linux keeps across exec)."""
    hwm = _status_mb("VmHWM")
    return hwm if hwm is not None else (
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)


def rss_mb() -> float | None:
    return _status_mb("VmRSS")


def _uuid() -> str:
    return str(uuid.uuid4())


def make_book(api: Any, name: str, flows: int, atoms: int) -> Any:
    """A logbook of ``flows`` flow details with ``atoms`` PENDING task details each."""
    book = api.models.LogBook(name)
    for f in range(flows):
        fd = api.models.FlowDetail(f"{name}-flow-{f}", _uuid())
        fd.state = api.states.PENDING
        for a in range(atoms):
            ad = api.models.TaskDetail(f"{name}-task-{f}-{a}", _uuid())
            ad.state = api.states.PENDING
            ad.version = "1.0"
            fd.add(ad)
        book.add(fd)
    return book


def _result(i: int, rep: int) -> dict[str, Any]:
    return {"value": i, "rep": rep, "ok": True, "note": "small result"}


def _update_atom(api: Any, conn: Any, ad: Any, i: int, rep: int) -> None:
    ad.state = api.states.RUNNING
    ad.put(api.states.SUCCESS, _result(i, rep))
    conn.update_atom_details(ad)


def _summary(seconds: list[float], per: int = 1) -> dict[str, Any]:
    return {"seconds": seconds, "median_s": median(seconds), "reps": len(seconds),
            "per_item_s": (median(seconds) / per) if seconds and per else None, "items": per}


# -- W3 (many books), W1, W2, W3 (one book), W4 ---------------------------------
def w3_many(api: Any, conn: Any, sizes: Sizes) -> dict[str, Any]:
    """get_logbooks over ``w3_books`` books of 1 flow × ``w3_atoms`` atoms (fresh store)."""
    for b in range(sizes.w3_books):
        conn.save_logbook(make_book(api, f"w3-{b}", 1, sizes.w3_atoms))
    loaded = 0

    def once(_rep: int) -> float:
        nonlocal loaded
        start = time.perf_counter()
        books = list(conn.get_logbooks())
        loaded = sum(len(fd) for book in books for fd in book)
        return time.perf_counter() - start

    times = repeat(sizes, once)
    records = sizes.w3_books * (2 + sizes.w3_atoms)
    out = _summary(times, records)
    out.update(books=sizes.w3_books, atoms_loaded=loaded)
    return out


def w1(api: Any, conn: Any, sizes: Sizes) -> tuple[dict[str, Any], Any]:
    """save_logbook of a new book of w1_flows × w1_atoms; a new book each repetition."""
    books = []

    def once(rep: int) -> float:
        books.append(make_book(api, f"w1-{rep}", sizes.w1_flows, sizes.w1_atoms))
        return timed(lambda: conn.save_logbook(books[-1]))

    times = repeat(sizes, once)
    book = books[-1]
    records = 1 + sizes.w1_flows * (1 + sizes.w1_atoms)
    return _summary(times, records), book


def w2(api: Any, conn: Any, book: Any, sizes: Sizes) -> dict[str, Any]:
    """w2_updates single-atom updates (RUNNING → put(SUCCESS, dict) → update_atom_details)."""
    atoms = [ad for fd in book for ad in fd][:sizes.w2_updates]

    def once(rep: int) -> float:
        start = time.perf_counter()
        for i, ad in enumerate(atoms):
            _update_atom(api, conn, ad, i, rep)
        return time.perf_counter() - start

    return _summary(repeat(sizes, once), len(atoms))


def w3_one(api: Any, conn: Any, book: Any, sizes: Sizes) -> dict[str, Any]:
    """get_logbook of the W1/W2 book (flows and atoms included)."""
    loaded = 0

    def once(_rep: int) -> float:
        nonlocal loaded
        start = time.perf_counter()
        got = conn.get_logbook(book.uuid)
        loaded = sum(len(fd) for fd in got)
        return time.perf_counter() - start

    times = repeat(sizes, once)
    records = 1 + sum(1 + len(fd) for fd in book)
    out = _summary(times, records)
    out["atoms_loaded"] = loaded
    return out


class WriteCounter:
    """Counts write calls made through connections handed out by ``backend``.

    Patches ``get_connection`` on the instance (not the class) so isinstance
    checks inside either library still hold; :meth:`restore` undoes it.
    """

    #: ``update_atom_details_nowait`` (persistence's RUNNING marks) where the
    #: connection has it; a write made inside another counted one counts once.
    METHODS = ("save_logbook", "update_flow_details", "update_atom_details",
               "update_atom_details_nowait")

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.calls = dict.fromkeys(self.METHODS, 0)
        self._depth = 0
        self._orig = backend.get_connection
        backend.get_connection = self._get_connection

    def _get_connection(self) -> Any:
        conn = self._orig()
        for name in self.METHODS:
            if hasattr(conn, name):
                setattr(conn, name, self._wrap(name, getattr(conn, name)))
        return conn

    def _wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            if not self._depth:
                self.calls[name] += 1
            self._depth += 1
            try:
                return fn(*args, **kwargs)
            finally:
                self._depth -= 1
        return counted

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def restore(self) -> None:
        self.backend.get_connection = self._orig


def _w4_once(api: Any, backend: Any, conn: Any, policy: str, n: int,
             rep: int) -> dict[str, Any]:
    book = api.models.LogBook(f"w4-{policy}-{rep}")
    fd = api.models.FlowDetail(f"w4-{policy}-{rep}-flow", _uuid())
    fd.state = api.states.RUNNING
    book.add(fd)
    conn.save_logbook(book)
    tasks = api.make_tasks([f"w4-task-{i}" for i in range(n)])
    counter = WriteCounter(backend)
    try:
        start = time.perf_counter()
        st = api.make_storage(fd, backend, policy)
        st.ensure_atoms(tasks)
        for i, task in enumerate(tasks):
            st.set_atom_state(task.name, api.states.RUNNING)
            st.save(task.name, _result(i, rep))
            st.set_atom_state(task.name, api.states.SUCCESS)
        fetched = st.fetch_all()
        api.flush(st)
        elapsed = time.perf_counter() - start
    finally:
        counter.restore()
    check = backend.get_connection()
    try:
        stored = check.get_flow_details(fd.uuid)
        persisted = sum(1 for ad in stored
                        if ad.state == api.states.SUCCESS and ad.results is not None)
    finally:
        check.close()
    return {"seconds": elapsed, "writes": counter.total, "calls": dict(counter.calls),
            "fetched": len(fetched), "persisted": persisted}


def w4(api: Any, backend: Any, conn: Any, sizes: Sizes) -> dict[str, Any]:
    """The Storage loop over w4_atoms tasks, once per persistence policy."""
    reason = api.storage_unavailable()
    if reason:
        return {"unavailable": reason}
    out: dict[str, Any] = {}
    for policy in api.policies:
        runs = repeat(sizes, lambda r, p=policy: _w4_once(api, backend, conn, p,
                                                          sizes.w4_atoms, r))
        seconds = [run["seconds"] for run in runs]
        summary = _summary(seconds, sizes.w4_atoms)
        summary.update(writes_per_atom=median([run["writes"] for run in runs]) / sizes.w4_atoms,
                       calls=runs[-1]["calls"], fetched=runs[-1]["fetched"],
                       persisted=runs[-1]["persisted"], atoms=sizes.w4_atoms)
        out[policy] = summary
    return out


def _guard(results: dict[str, Any], key: str, fn: Callable[[], Any]) -> Any:
    """Run one workload; record its failure instead of aborting the others."""
    try:
        return fn()
    except Exception as err:  # report it, keep measuring the rest
        results[key] = {"error": describe(err)}
        return None


def run_main(api: Any, backend: Any, sizes: Sizes) -> dict[str, Any]:
    """W3 (get_logbooks) on the empty store, then W1, W2, W3 (get_logbook), W4."""
    results: dict[str, Any] = {}
    conn = backend.get_connection()
    try:
        many = _guard(results, "W3_many", lambda: w3_many(api, conn, sizes))
        if many is not None:
            results["W3_many"] = many
        # TaskFlow's clear_all also removes the top-level paths: upgrade recreates them.
        _guard(results, "clear", lambda: (conn.clear_all(), conn.upgrade()))
        got = _guard(results, "W1", lambda: w1(api, conn, sizes))
        if got is not None:
            results["W1"], book = got
            w2_out = _guard(results, "W2", lambda: w2(api, conn, book, sizes))
            if w2_out is not None:
                results["W2"] = w2_out
            w3_out = _guard(results, "W3_one", lambda: w3_one(api, conn, book, sizes))
            if w3_out is not None:
                results["W3_one"] = w3_out
        w4_out = _guard(results, "W4", lambda: w4(api, backend, conn, sizes))
        if w4_out is not None:
            results["W4"] = w4_out
    finally:
        conn.close()
    return results


# -- W5 ---------------------------------------------------------------------------
def _fill_in_chunks(api: Any, conn: Any, book: Any, chunk: int) -> None:
    """Store a book whose single save failed: empty flow first, then atoms in chunks.

    Used only when ``save_logbook`` of the whole book fails (TaskFlow on
    ZooKeeper), so that loads and updates can still be measured.
    """
    fd = next(iter(book))
    shell = api.models.LogBook(book.name, uuid=book.uuid)
    empty = api.models.FlowDetail(fd.name, fd.uuid)
    empty.state = fd.state
    shell.add(empty)
    conn.save_logbook(shell)
    atoms = list(fd)
    for start in range(0, len(atoms), chunk):
        part = api.models.FlowDetail(fd.name, fd.uuid)
        part.state = fd.state
        for ad in atoms[start:start + chunk]:
            part.add(ad)
        conn.update_flow_details(part)


def run_w5(api: Any, backend: Any, n: int, sizes: Sizes) -> dict[str, Any]:
    """One flow of ``n`` atoms: save, single-atom update p50/p99, load, flow-state update."""
    out: dict[str, Any] = {"atoms": n}
    conn = backend.get_connection()
    rss_base = rss_mb()
    try:
        book = None

        def save(rep: int) -> float:
            nonlocal book
            # Drop the previous book first (models hold reference cycles): peak RSS
            # must not depend on how many repetitions the budget allowed.
            book = None
            gc.collect()
            attempt = make_book(api, f"w5-{n}-{rep}", 1, n)
            seconds = timed(lambda: conn.save_logbook(attempt))
            book = attempt
            return seconds

        try:
            saves = repeat(sizes, save, w5=True)
        except Exception as err:
            out["save_error"] = describe(err)
            saves = []
        out["save"] = _summary(saves, n)
        if book is None:
            book = make_book(api, f"w5-{n}-chunked", 1, n)
            start = time.perf_counter()
            _fill_in_chunks(api, conn, book, sizes.w5_fill_chunk)
            out["chunked_fill_s"] = time.perf_counter() - start
        fd = next(iter(book))
        atoms = list(fd)
        rng = random.Random(n)
        p50s, p99s = [], []

        def updates(rep: int) -> float:
            samples = []
            for i, ad in enumerate(rng.sample(atoms, min(sizes.w5_updates, n))):
                samples.append(timed(lambda a=ad, i=i: _update_atom(api, conn, a, i, rep)))
            p50s.append(percentile(samples, 50))
            p99s.append(percentile(samples, 99))
            return sum(samples)

        reps = len(repeat(sizes, updates, w5=True))
        out["update"] = {"p50_s": median(p50s), "p99_s": median(p99s), "reps": reps,
                         "samples_per_rep": min(sizes.w5_updates, n)}
        loaded = 0

        def load(_rep: int) -> float:
            nonlocal loaded
            start = time.perf_counter()
            got = conn.get_logbook(book.uuid)
            loaded = sum(len(f) for f in got)
            return time.perf_counter() - start

        out["load"] = _summary(repeat(sizes, load, w5=True), n)
        out["load"]["atoms_loaded"] = loaded

        def flow_update(rep: int) -> float:
            fd.state = api.states.RUNNING if rep % 2 == 0 else api.states.SUSPENDED
            return timed(lambda: conn.update_flow_details(fd))

        if "save_error" in out:
            # The whole flow could not be written in one save; updating the whole
            # flow writes the same set again (TaskFlow: every atom, one transaction).
            out["flow_update_error"] = "not attempted: the flow could not be saved whole"
        else:
            try:
                out["flow_update"] = _summary(repeat(sizes, flow_update, w5=True), 1)
            except Exception as err:
                out["flow_update_error"] = describe(err)
    except Exception as err:
        out["error"] = describe(err)
    finally:
        conn.close()
    peak = peak_rss_mb()
    out["rss"] = {"peak_mb": peak, "base_mb": rss_base,
                  "delta_mb": peak - rss_base if rss_base is not None else None}
    return out
