"""Child process: run one part of the workloads for one implementation and backend.

Run by :mod:`bench.run` as ``PYTHON bench/worker.py --impl ... --out FILE``
with either the project's interpreter (``--impl persistence``) or the TaskFlow
virtualenv's (``--impl taskflow``).  Each part runs in its own process so that
peak RSS (W5) is per size and one crash cannot take the others with it.
Parts: ``main`` (W1–W4), ``w5`` (one size), ``w6`` (1…16 flows as threads),
``w6proc`` (one of several processes sharing a store: it prints ``ready`` and
waits for a line on stdin before each window), ``w7`` (one round of the
per-atom checkpoint and its floor).  Writes one JSON document to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--impl", required=True, choices=("persistence", "taskflow"))
    parser.add_argument("--backend", required=True)
    parser.add_argument("--conf", required=True, help="backend configuration as JSON")
    parser.add_argument("--part", required=True, choices=("main", "w5", "w6", "w6proc", "w7"))
    parser.add_argument("--n", type=int, default=0,
                        help="W5: atoms in the flow; W6: flows per process; W7: atoms timed")
    parser.add_argument("--rep", type=int, default=0, help="W6 (processes), W7: round number")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply the repetition time budgets (run behind schedule)")
    parser.add_argument("--out", required=True)
    return parser.parse_args(argv)


def _scaling_part(args: argparse.Namespace, api: object, backend: object,
                  sizes: object) -> dict:
    """W6 / W7 (persistence only: they need ``persistence.storage``)."""
    from bench import checkpoint, concurrency
    conf = json.loads(args.conf)
    if args.part == "w7":
        return {"W7": checkpoint.run_round(api, backend, args.backend, conf, args.n,
                                           sizes.w7_warmup, args.rep, os.getcwd())}
    if args.part == "w6":
        return {"W6": concurrency.run_levels(api, backend, concurrency.LEVELS,
                                             sizes.w6_window_s, sizes.w6_reps,
                                             sizes.w6_pool, sizes.w6_budget_s)}
    group = concurrency.FlowGroup(api, backend, args.n, sizes.w6_pool, f"p{os.getpid()}")
    runs = []
    try:
        for _rep in range(sizes.w6_reps):
            print("ready", flush=True)

            def go() -> None:
                if sys.stdin.readline().strip() != "go":
                    raise RuntimeError("the harness did not give the start signal")
            runs.append(group.measure(sizes.w6_window_s, go))
    finally:
        group.close()
    return {"W6proc": runs}


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    if args.impl == "persistence":
        sys.path.insert(0, os.path.dirname(HERE))
    sys.path.insert(0, HERE)
    import adapters
    import workloads

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    sizes = workloads.scaled(workloads.QUICK if args.quick else workloads.FULL, args.scale)
    doc: dict = {"impl": args.impl, "backend": args.backend, "part": args.part,
                 "n": args.n, "python": sys.version.split()[0], "scale": args.scale}
    start = time.perf_counter()
    try:
        api = adapters.load(args.impl)
        doc["version"], doc["location"] = api.version, api.location
        doc["drivers"] = adapters.versions()
        backend = api.open_backend(json.loads(args.conf))
    except Exception as err:
        doc["unavailable"] = workloads.describe(err)
        doc["traceback"] = traceback.format_exc(limit=5)
    else:
        try:
            if args.part == "main":
                doc["results"] = workloads.run_main(api, backend, sizes)
            elif args.part == "w5":
                doc["results"] = {"W5": workloads.run_w5(api, backend, args.n, sizes)}
            else:
                doc["results"] = _scaling_part(args, api, backend, sizes)
        except Exception as err:
            doc["error"] = workloads.describe(err)
            doc["traceback"] = traceback.format_exc(limit=5)
        finally:
            try:
                backend.close()
            except Exception as err:  # closing must not lose the figures
                doc["close_error"] = workloads.describe(err)
    doc["elapsed_s"] = time.perf_counter() - start
    with open(args.out, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
