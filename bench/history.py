"""``python -m bench.history``: what recording history costs, per backend.

Runs W2 (single-atom updates, per update) and W4 under the ``always`` policy
(per atom) against two stores of each backend, one with ``history`` on (the
default) and one with it off, alternating the two repetition by repetition so
that both see the same machine.  Prints medians and the relative cost; the
issue's target is at most +10 % on W2/W4.  ``--quick`` is a smoke run.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from typing import Any

from . import adapters
from .services import BACKENDS, Services
from .workloads import _update_atom, _w4_once, make_book


def _w2_once(api: Any, conn: Any, atoms: list[Any], rep: int) -> float:
    start = time.perf_counter()
    for i, ad in enumerate(atoms):
        _update_atom(api, conn, ad, i, rep)
    return (time.perf_counter() - start) / len(atoms)


def measure(api: Any, services: Services, name: str, updates: int, w4_atoms: int,
            reps: int) -> dict[str, dict[str, float]]:
    """{"W2"|"W4": {"on": median s/item, "off": ..., "cost": relative}} for one backend."""
    with contextlib.ExitStack() as stack:
        setups = {}
        for history in (True, False):
            conf = dict(stack.enter_context(services.fresh_store(name, "persistence")),
                        history=history)
            backend = api.open_backend(conf)
            stack.callback(backend.close)
            conn = backend.get_connection()
            stack.callback(conn.close)
            book = make_book(api, f"h-{history}", 1, updates)
            conn.save_logbook(book)
            setups[history] = (backend, conn, [ad for fd in book for ad in fd])
        times: dict[str, dict[bool, list[float]]] = {"W2": {True: [], False: []},
                                                     "W4": {True: [], False: []}}
        for rep in range(reps):
            for history in ((True, False) if rep % 2 else (False, True)):
                backend, conn, atoms = setups[history]
                times["W2"][history].append(_w2_once(api, conn, atoms, rep))
                run = _w4_once(api, backend, conn, "always", w4_atoms, rep)
                times["W4"][history].append(run["seconds"] / w4_atoms)
    out = {}
    for workload, by in times.items():
        on, off = statistics.median(by[True]), statistics.median(by[False])
        out[workload] = {"on": on, "off": off, "cost": on / off - 1}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.history", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny sizes")
    args = parser.parse_args(argv)
    updates, w4_atoms, reps = (20, 10, 2) if args.quick else (300, 100, 7)
    api = adapters.load("persistence")
    services = Services()
    print(f"{'backend':<11} {'W2 off':>9} {'W2 on':>9} {'cost':>7}   "
          f"{'W4 off':>9} {'W4 on':>9} {'cost':>7}   (µs per update / per atom)")
    try:
        for name in args.backends.split(","):
            reason = services.check(name)
            if reason:
                print(f"{name:<11} not available ({reason})")
                continue
            got = measure(api, services, name, updates, w4_atoms, reps)
            w2, w4 = got["W2"], got["W4"]
            print(f"{name:<11} {w2['off'] * 1e6:9.1f} {w2['on'] * 1e6:9.1f} "
                  f"{w2['cost']:+7.0%}   {w4['off'] * 1e6:9.1f} {w4['on'] * 1e6:9.1f} "
                  f"{w4['cost']:+7.0%}", flush=True)
    finally:
        with contextlib.suppress(Exception):
            if services.zk is not None:
                services.zk.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
