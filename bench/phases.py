"""The W7 and W6 phases of a run, driven from the parent process.

W7 (per-atom checkpoint) goes round by round: in each round every backend's
worker (our ``Storage`` in each durability mode, and the one-commit floor, on
a fresh store) and DBOS Transact on a fresh PostgreSQL database and a fresh
sqlite file, in an order that rotates from round to round, so that ours, the
floor and the peer all see the same stretch of machine time.

W6 (concurrency) runs 1…16 flows as threads of one worker on one backend
object (memory, PostgreSQL, MariaDB, ZooKeeper), and 4 processes × 4 flows on
one sqlite file and on one dir store, started together by a line on their
stdin.
"""

from __future__ import annotations

import argparse
import os
import select
import subprocess
import sys
import tempfile
import time
from typing import Any

from .concurrency import LEVELS, summary
from .launch import out_path, read_json, run_json, run_worker, worker_command
from .services import PG, Services
from .workloads import Sizes, median

__all__ = ["run_w7", "run_w6", "W6_THREADS", "W6_PROCESSES", "DBOS_DATABASES"]

W6_THREADS = ("memory", "postgresql", "mysql", "zookeeper")
W6_PROCESSES = ("sqlite", "dir")
PROCESSES, FLOWS_PER_PROCESS = 4, 4
DBOS_DATABASES = ("postgresql", "sqlite")
# W6 on PostgreSQL/MariaDB: a flow the connection pool cannot serve fails after this
# wait (and the backend's retries) instead of the default 30 s per attempt; the pool's
# size stays the library's default.
POOL_TIMEOUT_S = 2.0
HERE = os.path.dirname(os.path.abspath(__file__))


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- W7 ---------------------------------------------------------------------------------
def _dbos_round(services: Services, python: str, database: str, sizes: Sizes, rep: int,
                timeout: float) -> dict[str, Any]:
    out = out_path(services.workdir, f"dbos-{database}")
    args = ["--steps", str(sizes.w7_atoms), "--warmup", str(sizes.w7_warmup),
            "--rep", str(rep), "--out", out]
    script = os.path.join(HERE, "dbos_peer.py")
    if database == "sqlite":
        folder = tempfile.mkdtemp(prefix="dbos-sqlite-", dir=services.workdir)
        url = f"sqlite:///{folder}/dbos.sqlite"
        return run_json([python, script, "--url", url] + args, out, timeout, services.workdir)
    with services.pg_database(f"bench_dbos_{os.urandom(5).hex()}") as name:
        url = f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{name}"
        return run_json([python, script, "--url", url] + args, out, timeout, services.workdir)


def run_w7(services: Services, args: argparse.Namespace, sizes: Sizes, backends: list[str],
           availability: dict[str, str | None],
           dbos: tuple[str | None, str | None]) -> dict[str, Any]:
    """Every round of W7; each backend's and each DBOS database's rounds, in order."""
    python, why_not = dbos
    out: dict[str, Any] = {
        "atoms": sizes.w7_atoms, "warmup": sizes.w7_warmup, "rounds_planned": sizes.w7_rounds,
        "budget_s": sizes.w7_budget_s, "backends": {}, "dbos": {"unavailable": why_not,
                                                                 "databases": {}}}
    jobs: list[tuple[str, str]] = []
    for b in backends:
        out["backends"][b] = ({"unavailable": availability[b]} if availability[b]
                              else {"rounds": []})
        if not availability[b]:
            jobs.append(("persistence", b))
    for db in DBOS_DATABASES:
        if db not in backends:
            continue
        reason = why_not or availability.get(db)
        out["dbos"]["databases"][db] = {"unavailable": reason} if reason else {"rounds": []}
        if not reason:
            jobs.append(("dbos", db))
    started = time.perf_counter()
    for rep in range(sizes.w7_rounds):
        begun = time.perf_counter()
        shift = rep * max(1, len(jobs) // max(1, sizes.w7_rounds)) % max(1, len(jobs))
        for impl, b in jobs[shift:] + jobs[:shift]:
            _log(f"W7 round {rep + 1}/{sizes.w7_rounds}: {impl} / {b}")
            if impl == "dbos":
                got = _dbos_round(services, python or "", b, sizes, rep, args.worker_timeout)
                out["dbos"]["version"] = got.get("version") or out["dbos"].get("version")
                out["dbos"]["databases"][b]["rounds"].append(got)
            else:
                with services.fresh_store(b, "persistence") as conf:
                    got = run_worker(sys.executable, "persistence", b, conf, "w7",
                                     sizes.w7_atoms, args.quick, args.worker_timeout,
                                     services.workdir, rep=rep)
                out["backends"][b]["rounds"].append(got)
        took = time.perf_counter() - begun
        if rep + 1 < sizes.w7_rounds and time.perf_counter() - started + took > sizes.w7_budget_s:
            out["stopped"] = (f"after {rep + 1} of {sizes.w7_rounds} rounds: the next would "
                              f"overrun the phase's {sizes.w7_budget_s:.0f} s budget")
            _log(f"W7 stopped {out['stopped']}")
            break
    out["elapsed_s"] = time.perf_counter() - started
    return out


# -- W6 ---------------------------------------------------------------------------------
def _await_ready(procs: list[subprocess.Popen], deadline: float) -> str | None:
    """Wait until every process printed ``ready``; None, or what went wrong."""
    for i, proc in enumerate(procs):
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return f"process {i} not ready in time"
            readable, _, _ = select.select([proc.stdout], [], [], left)
            if not readable:
                continue
            line = proc.stdout.readline()
            if not line:
                return f"process {i} exited ({proc.wait()}) before it was ready"
            if line.strip() == "ready":
                break
    return None


def _processes(services: Services, backend: str, sizes: Sizes, quick: bool,
               timeout: float) -> dict[str, Any]:
    """PROCESSES worker processes × FLOWS_PER_PROCESS flows on one fresh store."""
    procs: list[subprocess.Popen] = []
    outs: list[str] = []
    logs: list[Any] = []
    deadline = time.monotonic() + timeout
    env = dict(os.environ, PYTHONHASHSEED="0")
    problem = None
    with services.fresh_store(backend, "persistence") as conf:
        try:
            for i in range(PROCESSES):
                outs.append(out_path(services.workdir, f"w6-{backend}-p{i}"))
                logs.append(tempfile.TemporaryFile(mode="w+", dir=services.workdir))
                cmd = worker_command(sys.executable, "persistence", backend, conf, "w6proc",
                                     FLOWS_PER_PROCESS, outs[-1], quick, rep=i)
                procs.append(subprocess.Popen(cmd, cwd=services.workdir, env=env, text=True,
                                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                              stderr=logs[-1]))
                if i == 0:  # the first one creates the schema alone
                    problem = _await_ready(procs, deadline)
                    if problem:
                        break
            if not problem:
                problem = _await_ready(procs[1:], deadline)
            for rep in range(sizes.w6_reps):
                if problem or (rep > 0 and (problem := _await_ready(procs, deadline))):
                    break
                for proc in procs:
                    proc.stdin.write("go\n")
                    proc.stdin.flush()
            for proc in procs:
                proc.stdin.close()
                proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except (OSError, subprocess.TimeoutExpired) as err:
            problem = problem or f"{type(err).__name__}: {err}"
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    docs = []
    for proc, out, log in zip(procs, outs, logs):
        log.seek(0)
        docs.append(read_json(out, proc.returncode, log.read()))
        log.close()
    return _aggregate(docs, problem)


def _aggregate(docs: list[dict[str, Any]], problem: str | None) -> dict[str, Any]:
    """Per window: every process's atoms over the longest process's window."""
    import collections
    failures = [d.get("error") or d.get("unavailable") for d in docs
                if d.get("error") or d.get("unavailable")]
    runs = [(d.get("results") or {}).get("W6proc") or [] for d in docs]
    windows = []
    for rep in range(min((len(r) for r in runs), default=0)):
        errors: collections.Counter[str] = collections.Counter()
        for r in runs:
            errors.update(r[rep]["error_lines"])
        windows.append(summary(sum(r[rep]["atoms"] for r in runs),
                               max(r[rep]["seconds"] for r in runs), errors,
                               sum(r[rep]["flows"] for r in runs)))
    all_errors: collections.Counter[str] = collections.Counter()
    for w in windows:
        all_errors.update(w["error_lines"])
    return {"processes": len(docs), "flows_per_process": FLOWS_PER_PROCESS,
            "atoms_per_s": median([w["atoms_per_s"] for w in windows]), "reps": len(windows),
            "runs": windows, "errors": sum(w["errors"] for w in windows),
            "lock_errors": sum(w["lock_errors"] for w in windows),
            "error_lines": dict(all_errors.most_common(10)),
            "failures": ([problem] if problem else []) + failures}


def run_w6(services: Services, args: argparse.Namespace, sizes: Sizes, backends: list[str],
           availability: dict[str, str | None]) -> dict[str, Any]:
    """W6 on every available backend it applies to."""
    out: dict[str, Any] = {"levels": list(LEVELS), "window_s": sizes.w6_window_s,
                           "reps": sizes.w6_reps, "pool": sizes.w6_pool,
                           "pool_timeout_s": POOL_TIMEOUT_S,
                           "threads": {}, "processes": {}}
    started = time.perf_counter()
    for b in backends:
        if b not in W6_THREADS + W6_PROCESSES:
            continue
        kind = "threads" if b in W6_THREADS else "processes"
        if availability[b]:
            out[kind][b] = {"unavailable": availability[b]}
            continue
        if kind == "threads":
            _log(f"W6: {b}, {', '.join(map(str, LEVELS))} flows (threads of one process)")
            with services.fresh_store(b, "persistence") as conf:
                if b in ("postgresql", "mysql"):
                    conf = dict(conf, pool_timeout=POOL_TIMEOUT_S)
                got = run_worker(sys.executable, "persistence", b, conf, "w6", 0, args.quick,
                                 args.worker_timeout, services.workdir)
            out[kind][b] = got
        else:
            _log(f"W6: {b}, {PROCESSES} processes × {FLOWS_PER_PROCESS} flows")
            out[kind][b] = _processes(services, b, sizes, args.quick, args.worker_timeout)
    out["elapsed_s"] = time.perf_counter() - started
    return out
