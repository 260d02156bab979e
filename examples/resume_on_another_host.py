"""Run a flow on one host, kill it, and finish it on another.

On any host that reaches the backend::

    export PERSISTENCE_URI=postgresql://flows:secret@db.example.com/flows
    python resume_on_another_host.py new              # saves a new flow, prints its uuid
    python resume_on_another_host.py run FLOW_UUID    # runs it, or resumes it

``PERSISTENCE_URI`` (or ``--backend``) names a backend both hosts reach,
for example the PostgreSQL database above or
``zookeeper://zk1:2181,zk2:2181,zk3:2181/flows``.  Start ``run`` on host A,
kill it half-way (``kill -9``), then start ``run`` with the same uuid on host
B: it waits until A's claim on the flow has expired (``--ttl`` seconds after
A's last renewal), takes the flow over, skips every task whose result A
stored and runs the rest.  Started on a flow that another live engine runs,
``run`` is refused (exit status 3).  The flow is the one of ``persistence demo``:
``generate → square → total → split → (left, right) → join``.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
import uuid

import persistence
from persistence.exceptions import NotOwner
from persistence.tools.demo import COUNT, build_flow
from persistence.tools.engine import Engine

REFUSED = 3
ENV_BACKEND = "PERSISTENCE_URI"


def new_flow(uri: str) -> str:
    """Save a logbook with one flow detail (and its input, ``count``); return its uuid."""
    with persistence.backend(uri) as be:
        book = persistence.LogBook("resumable")
        flow = persistence.FlowDetail("numbers", str(uuid.uuid4()))
        book.add(flow)
        with be.get_connection() as conn:
            conn.save_logbook(book)
        with persistence.Storage(flow, be) as storage:
            storage.inject({"count": COUNT})
    return flow.uuid


def _slowed(fn, pause: float):
    def execute(**kwargs):
        time.sleep(pause)
        return fn(**kwargs)
    return execute


def run(uri: str, flow_uuid: str, ttl: float, pause: float, wait: float) -> int:
    """Run (or resume) the flow as this host's engine; the exit status."""
    owner = f"{socket.gethostname()}:{os.getpid()}"
    tasks = build_flow()
    for task in tasks:                       # slow enough to be killed half-way
        task.execute = _slowed(task.fn, pause)
    with persistence.backend(uri) as be:
        deadline = time.monotonic() + wait
        while True:
            with be.get_connection() as conn:
                flow = conn.get_flow_details(flow_uuid)
            try:
                engine = Engine(tasks, flow, be, owner=owner, claim=True, ttl=ttl,
                                on_done=lambda name, result: print(
                                    f"{name:>8} = {result!r}", flush=True))
                break
            except NotOwner as err:          # another engine holds the flow
                if time.monotonic() >= deadline:
                    print(f"refused: {err}")
                    return REFUSED
                print(f"waiting: {err}", flush=True)
                time.sleep(min(1.0, ttl))
        claim = engine.storage.claim
        if claim.taken_over_from is not None:
            print(f"{owner} took the flow over from {claim.taken_over_from}")
        try:
            outcomes = engine.run()
        finally:
            engine.storage.close()           # releases the claim
        skipped = [o.name for o in outcomes if o.action == "skipped"]
        print(f"done; skipped (stored before): {', '.join(skipped) or 'none'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default=os.environ.get(ENV_BACKEND),
                        help=f"backend URI both hosts reach (default: ${ENV_BACKEND}, which "
                             f"keeps a password out of process listings)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("new", help="save a new flow and print its uuid")
    runner = sub.add_parser("run", help="run or resume a flow")
    runner.add_argument("flow", help="the flow detail's uuid")
    runner.add_argument("--ttl", type=float, default=10.0,
                        help="seconds a claim lasts without renewal (default 10)")
    runner.add_argument("--pause", type=float, default=1.0,
                        help="seconds each task takes (default 1)")
    runner.add_argument("--wait", type=float, default=60.0,
                        help="seconds to wait for another engine's claim (default 60)")
    args = parser.parse_args(argv)
    if not args.backend:
        parser.error(f"name the backend with --backend or ${ENV_BACKEND}")
    if args.command == "new":
        print(new_flow(args.backend))
        return 0
    return run(args.backend, args.flow, args.ttl, args.pause, args.wait)


if __name__ == "__main__":
    sys.exit(main())
