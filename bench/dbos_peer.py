"""Child process: DBOS Transact's cost per workflow step, the peer of W7.

Run by :mod:`bench.checkpoint_run` as ``bench/.venv-dbos/bin/python bench/dbos_peer.py
--url URL --steps N --out FILE`` on a fresh system database (a new PostgreSQL
database or a new sqlite file).  DBOS checkpoints every step's output before
the workflow goes on, which is what our per-atom loop does for an atom, so
one step is the unit compared with one atom.

DBOS is launched, a short warm-up workflow runs (connections, prepared
statements, the workflow's first insert), then one workflow of ``--steps``
steps, each returning a small dict, is timed from call to return; per step is
that time divided by the steps.  Launch and destroy are not timed.  The DBOS
configuration is its default apart from the system database URL, the pool
(sized small: the PostgreSQL server is shared) and a quiet log level.
Imports nothing but DBOS and the standard library: it runs in DBOS's own
virtualenv.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import logging
import sys
import time
import traceback
from typing import Any


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True, help="DBOS system database URL")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--rep", type=int, default=0, help="round number (in the results)")
    parser.add_argument("--out", required=True)
    return parser.parse_args(argv)


def measure(url: str, steps: int, warmup: int, rep: int) -> dict[str, Any]:
    """Launch DBOS on ``url``, time one workflow of ``steps`` steps, shut DBOS down."""
    from dbos import DBOS, DBOSConfig

    @DBOS.step()
    def checkpointed(i: int) -> dict[str, Any]:
        return {"value": i, "rep": rep, "ok": True, "note": "small result"}

    @DBOS.workflow()
    def flow(n: int) -> int:
        for i in range(n):
            checkpointed(i)
        return n

    config: DBOSConfig = {"name": "persistence-bench", "system_database_url": url,
                          "sys_db_pool_size": 4, "log_level": "WARNING"}
    start = time.perf_counter()
    DBOS(config=config)
    try:
        DBOS.launch()
        launched = time.perf_counter()
        flow(warmup)
        begin = time.perf_counter()
        done = flow(steps)
        seconds = time.perf_counter() - begin
        if done != steps:
            raise RuntimeError(f"the workflow returned {done}, expected {steps}")
    finally:
        DBOS.destroy(destroy_registry=True)
    return {"seconds": seconds, "steps": steps, "per_step_s": seconds / steps,
            "launch_s": launched - start, "warmup_steps": warmup}


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    doc: dict[str, Any] = {"impl": "dbos", "rep": args.rep,
                           "database": args.url.split(":", 1)[0],
                           "python": sys.version.split()[0]}
    try:
        doc["version"] = importlib.metadata.version("dbos")
        doc["results"] = measure(args.url, args.steps, args.warmup, args.rep)
    except Exception as err:
        doc["error"] = f"{type(err).__name__}: {str(err).splitlines()[0][:300] if str(err) else ''}"
        doc["traceback"] = traceback.format_exc(limit=5)
    with open(args.out, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
