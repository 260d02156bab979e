"""A "host": runs the reference engine in fresh processes, inside its network namespace.

Started once per host as ``ip netns exec NS python -m tests.resumption.host``,
it imports the library and the drivers, then forks one process per engine
run (a new engine process costs milliseconds instead of an interpreter
start).  It answers JSON lines on stdin/stdout:

``{"cmd": "run", ...}``  → ``{"pid": N}``   (arguments: see :func:`run_engine`)
``{"cmd": "wait", "pid": N}`` → ``{"pid": N, "code": C, "signal": S}``

The engine process runs the demo flow (:func:`persistence.tools.demo.build_flow`)
with :class:`persistence.tools.engine.Engine` as the flow's claimed owner; every
task start is appended to a journal (task name and pid) before it runs.
Exit codes: 0 the flow finished; 3 another engine owns the flow (NotOwner or
Conflict: a clean refusal); anything else is a failure.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
import traceback
from typing import Any

import kazoo.client  # noqa: F401 - imported before forking, so runs start fast
import psycopg  # noqa: F401
import sqlalchemy  # noqa: F401

from persistence.backends import registry as loading
from persistence.exceptions import Conflict, NotOwner
from persistence.tools.demo import build_flow
from persistence.tools.engine import Engine

REFUSED = 3


def run_engine(uri: str, flow: str, owner: str, ttl: float, journal: str,
               delay: float = 0.0, go: str | None = None, wait_claim: float = 0.0,
               backend_options: dict[str, Any] | None = None) -> int:
    """Run the flow ``flow`` stored at ``uri`` as ``owner``; the exit code to use.

    ``go``: once connected, wait for this file to exist (to start several hosts at once).
    ``wait_claim``: keep trying to claim for this long while another owner holds it.
    """
    tasks = build_flow()
    for task in tasks:
        task.execute = _journaled(task, journal, delay)
    # fetch(), not backend(): the schema is up to date, no upgrade check per run.
    with contextlib.closing(loading.fetch({"connection": uri, **(backend_options or {})})) as be:
        if go is not None:  # connected and ready: only the claim happens after the signal
            with be.get_connection() as conn:
                conn.get_flow_details(flow)
            print("waiting for the go signal", flush=True)
            deadline = time.monotonic() + 60
            while not os.path.exists(go):
                if time.monotonic() > deadline:
                    print("no go signal within 60 s", flush=True)
                    return 2
                time.sleep(0.001)
        deadline = time.monotonic() + wait_claim
        while True:
            try:
                with be.get_connection() as conn:
                    detail = conn.get_flow_details(flow)
                engine = Engine(tasks, detail, be, owner=owner, claim=True, ttl=ttl)
                break
            except NotOwner as err:
                if time.monotonic() >= deadline:
                    print(f"refused: {err}", flush=True)
                    return REFUSED
                time.sleep(0.05)
        print(f"claimed: {engine.storage.claim}", flush=True)
        try:
            for outcome in engine.run():
                print(f"{outcome.name}: {outcome.action} {outcome.result!r}", flush=True)
        except (NotOwner, Conflict) as err:
            print(f"refused: {type(err).__name__}: {err}", flush=True)
            return REFUSED
        finally:
            engine.storage.close()
    print("done", flush=True)
    return 0


def _journaled(task: Any, journal: str, delay: float) -> Any:
    fn = task.fn

    def execute(**kwargs: Any) -> Any:
        fd = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{task.name} {os.getpid()}\n".encode())
        finally:
            os.close(fd)
        if delay:
            time.sleep(delay)
        return fn(**kwargs)
    return execute


def _fork_run(args: dict[str, Any]) -> int:
    log = args.pop("log")
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        sys.stdout = os.fdopen(1, "w", buffering=1)
        sys.stderr = os.fdopen(2, "w", buffering=1)
        # Retries and lost connections show in the run's log.
        logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                            format="%(asctime)s %(name)s %(levelname)s %(message)s")
        logging.getLogger("alembic").setLevel(logging.WARNING)
        code = run_engine(**args)
    except BaseException:
        traceback.print_exc()
        sys.stdout.flush()
    finally:
        os._exit(code)
    return pid  # not reached


def main() -> None:
    out = sys.stdout
    print(json.dumps({"ready": os.getpid()}), file=out, flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        cmd = request.pop("cmd")
        if cmd == "run":
            reply: dict[str, Any] = {"pid": _fork_run(request)}
        elif cmd == "wait":
            _, status = os.waitpid(request["pid"], 0)
            reply = {"pid": request["pid"],
                     "code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
                     "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None}
        elif cmd == "quit":
            return
        else:
            reply = {"error": f"unknown command {cmd!r}"}
        print(json.dumps(reply), file=out, flush=True)


if __name__ == "__main__":
    main()
