"""``python -m bench``: measure every available backend, write JSON and a markdown report.

Three phases, each selectable with ``--only``: ``w7`` (per-atom checkpoint
against the one-commit floor and DBOS Transact, round by round), ``w6``
(concurrent flows), then ``main``: floors (raw driver costs, same run) and,
for each backend and each implementation (persistence, and TaskFlow 6.5.0
with ``--compare taskflow``), one worker process for W1–W4 and one per W5
size, each on a fresh store.  A backend whose module or service is missing is
reported as "not available (reason)", never silently dropped.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from typing import Any

from . import adapters, floors, phases, report
from .launch import run_worker
from .peers import dbos_python, taskflow_python
from .services import BACKENDS, Services
from .workloads import FULL, QUICK, Sizes

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PHASES = ("w7", "w6", "main")

# Seconds each backend takes in a full run on the idle reference machine (floors,
# persistence and TaskFlow); used to pace a run against --time-limit.
NOMINAL_S = {"memory": 25, "dir": 155, "sqlite": 80, "postgresql": 95, "mysql": 115,
             "zookeeper": 160}
TASKFLOW_SHARE = 0.7  # of the nominal time, when TaskFlow is compared


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes and 2 repetitions: a smoke run, figures meaningless")
    parser.add_argument("--compare", choices=("taskflow",), action="append", default=[],
                        help="also run the workloads against TaskFlow 6.5.0 (own virtualenv)")
    parser.add_argument("--backends", default=",".join(BACKENDS),
                        help=f"comma-separated subset of {','.join(BACKENDS)}")
    parser.add_argument("--out", default=os.path.join(HERE, "results"),
                        help="directory for the JSON results (default: bench/results)")
    parser.add_argument("--report", default=None,
                        help="markdown report path (default: <out>/report.md)")
    parser.add_argument("--worker-timeout", type=float, default=600.0,
                        help="seconds one worker process may take before it is stopped")
    parser.add_argument("--time-limit", type=float, default=900.0,
                        help="seconds the whole run should take (default 900): "
                             "when behind schedule, later backends get shorter "
                             "repetition budgets")
    parser.add_argument("--only", default=",".join(PHASES),
                        help="comma-separated phases to run: w7 (per-atom checkpoint, "
                             "floor, DBOS), w6 (concurrent flows), main (floors, W1-W5, "
                             "TaskFlow); default all")
    parser.add_argument("--no-dbos", action="store_true",
                        help="W7 without its DBOS Transact peer")
    parser.add_argument("--render", metavar="JSON",
                        help="measure nothing: re-render the report of a saved results file")
    args = parser.parse_args(argv)
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in args.backends if b not in BACKENDS]
    if unknown:
        parser.error(f"unknown backend(s) {', '.join(unknown)}; known: {', '.join(BACKENDS)}")
    only = {p.strip().lower() for p in args.only.split(",") if p.strip()}
    if not only or only - set(PHASES):
        parser.error(f"unknown phase(s) {', '.join(sorted(only - set(PHASES))) or '(none)'} "
                     f"in --only; known: {', '.join(PHASES)}")
    args.phases = [p for p in PHASES if p in only]
    return args


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- workers ----------------------------------------------------------------------------
def pace(args: argparse.Namespace, started: float, done: list[str],
         remaining: list[str], time_limit: float | None = None) -> float:
    """Budget scale for the next backend: 1 on schedule, down to 0.25 when behind.

    The remaining nominal time is stretched by how much slower than nominal the
    run has been so far (a loaded machine), and compared with the time left.
    """
    if args.quick:
        return 1.0
    share = 1.0 if "taskflow" in args.compare else 1.0 - TASKFLOW_SHARE
    elapsed = time.perf_counter() - started
    nominal_done = share * sum(NOMINAL_S.get(b, 60) for b in done)
    slowdown = max(1.0, elapsed / nominal_done) if nominal_done else 1.0
    need = share * sum(NOMINAL_S.get(b, 60) for b in remaining) * slowdown
    left = (args.time_limit if time_limit is None else time_limit) - elapsed
    return max(0.25, min(1.0, left / need)) if need > 0 else 1.0


def _measure_impl(services: Services, impl: str, python: str, backend: str, sizes: Sizes,
                  args: argparse.Namespace, scale: float) -> dict[str, Any]:
    def worker(part: str, n: int = 0) -> dict[str, Any]:
        with services.fresh_store(backend, impl) as conf:
            return run_worker(python, impl, backend, conf, part, n, args.quick,
                              args.worker_timeout, services.workdir, scale)

    _log(f"{impl} / {backend}: W1-W4" + (f" (budgets x {scale:.2f})" if scale < 1 else ""))
    entry: dict[str, Any] = {"main": worker("main")}
    if "unavailable" in entry["main"]:
        entry["unavailable"] = entry["main"]["unavailable"]
        return entry
    entry["w5"] = {}
    for n in sizes.w5_sizes:
        _log(f"{impl} / {backend}: W5 at {n} atoms")
        entry["w5"][str(n)] = worker("w5", n)
    return entry


# -- metadata ---------------------------------------------------------------------------
def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except OSError:
        return ""


def machine() -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kb = next((int(line.split()[1]) for line in _read("/proc/meminfo").splitlines()
                   if line.startswith("MemTotal")), 0)
    return {"cpus": os.cpu_count(), "cpu": cpu, "memory_gib": round(mem_kb / 2**20, 1),
            "kernel": platform.release(), "os": platform.platform(terse=True)}


def git_revision() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "persistence"],
                               cwd=ROOT, capture_output=True, text=True).stdout.strip()
        return rev + ("+uncommitted" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _write_json(doc: dict[str, Any], path: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=1)
    os.replace(tmp, path)


def _main_phase(doc: dict[str, Any], services: Services, sizes: Sizes,
                args: argparse.Namespace) -> None:
    """Floors, then W1–W5 per backend and implementation, paced against the time
    left of ``--time-limit`` once the phases before it are done."""
    started = time.perf_counter()
    limit = args.time_limit - (started - args.started)
    doc["floors"]["json"] = floors.json_floors(sizes)
    impls = {"persistence": (sys.executable, None)}
    if "taskflow" in args.compare:
        impls["taskflow"] = taskflow_python()
    for impl in impls:
        doc["runs"][impl] = {}
    for i, backend in enumerate(args.backends):
        scale = pace(args, started, args.backends[:i], args.backends[i:], limit)
        if doc["availability"][backend] is None:
            # Measured right before the backend's workloads: fsync latency on a
            # shared VM drifts, so floor and workload should see the same disk.
            _log(f"floors: {backend}")
            try:
                doc["floors"][backend] = floors.measure(backend, sizes, services,
                                                        services.workdir)
            except Exception as err:
                doc["floors"][backend] = {"error": f"{type(err).__name__}: {err}"[:300]}
        for impl, (python, reason) in impls.items():
            why = reason or doc["availability"][backend]
            if why:
                doc["runs"][impl][backend] = {"unavailable": why}
            else:
                doc["runs"][impl][backend] = _measure_impl(services, impl, python,
                                                           backend, sizes, args, scale)
            _write_json(doc, os.path.join(args.out, "partial.json"))


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    if args.render:
        with open(args.render, encoding="utf-8") as fh:
            saved = json.load(fh)
        report_path = args.report or os.path.join(args.out, "report.md")
        with open(report_path, "w", encoding="utf-8") as fh:
            fh.write(report.render(saved))
        _log(f"rendered {args.render} to {report_path}")
        return 0
    sizes = QUICK if args.quick else FULL
    started = args.started = time.perf_counter()
    stamp = datetime.datetime.now(datetime.timezone.utc)
    services = Services()
    os.makedirs(args.out, exist_ok=True)
    doc: dict[str, Any] = {
        "meta": {"date": stamp.isoformat(timespec="seconds"),
                 "command": "python -m bench " + shlex.join(sys.argv[1:] if argv is None
                                                             else argv),
                 "quick": args.quick, "sizes": dict(vars(sizes)), "machine": machine(),
                 "phases": args.phases,
                 "python": sys.version.split()[0], "git": git_revision(),
                 "drivers": adapters.versions(),
                 "load_average": {"start": _read("/proc/loadavg").split()[:3]}},
        "availability": {}, "floors": {}, "runs": {}}
    try:
        for backend in args.backends:
            doc["availability"][backend] = services.check(backend)
            if doc["availability"][backend]:
                _log(f"{backend}: not available ({doc['availability'][backend]})")
        doc["meta"]["server_versions"] = services.server_versions
        if "w7" in args.phases:
            dbos = (None, "--no-dbos") if args.no_dbos else dbos_python()
            doc["w7"] = phases.run_w7(services, args, sizes, args.backends,
                                      doc["availability"], dbos)
            _write_json(doc, os.path.join(args.out, "partial.json"))
        if "w6" in args.phases:
            doc["w6"] = phases.run_w6(services, args, sizes, args.backends,
                                      doc["availability"])
            _write_json(doc, os.path.join(args.out, "partial.json"))
        if "main" in args.phases:
            _main_phase(doc, services, sizes, args)
    finally:
        services.close()
    doc["meta"]["elapsed_s"] = time.perf_counter() - started
    doc["meta"]["load_average"]["end"] = _read("/proc/loadavg").split()[:3]
    name = f"bench-{stamp.strftime('%Y%m%dT%H%M%SZ')}{'-quick' if args.quick else ''}.json"
    for path in (os.path.join(args.out, name), os.path.join(args.out, "latest.json")):
        _write_json(doc, path)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(args.out, "partial.json"))
    report_path = args.report or os.path.join(args.out, "report.md")
    with open(report_path, "w", encoding="utf-8") as fh:
        fh.write(report.render(doc))
    _log(f"done in {doc['meta']['elapsed_s']:.0f} s: {report_path}, "
         f"{os.path.join(args.out, name)}")
    return 0
