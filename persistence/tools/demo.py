"""``persistence demo``: run a flow, SIGKILL it half-way, resume it in a fresh process.

The parent process saves a new logbook with one flow detail in the backend,
then starts a child process that runs the flow with the reference engine
(:mod:`persistence.tools.engine`) and really kills itself (``SIGKILL``) in the
middle of the task after the first N have finished.  A second, fresh child
resumes from the same logbook: tasks whose results are stored are skipped,
the rest run.  Every execution of a task is appended to a journal file, so
the report can prove that no finished task ran twice.  Finally the results
are compared with an uninterrupted run.

The flow — values passed by name, through ``Storage`` only::

    count (injected) → generate → square → total → split ─┬→ left ──┬→ join
                                                          └→ right ─┘

Run as ``python -m persistence.tools.demo`` this module is the child (the backend
URI comes from the ``PERSISTENCE_DEMO_BACKEND`` environment variable, so a
password never shows in a process listing).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable
from typing import Any

from ..backends import registry as loading
from ..backends.url import mask_password
from ..models import records as models
from ..models import states
from ..runtime.atom import Task
from ..runtime.storage import Storage
from .engine import RAN, Engine

__all__ = ["DEFAULT_BACKEND", "COUNT", "build_flow", "journaled", "child_arguments", "run_demo",
           "DemoReport", "DemoRow", "DemoFailed"]

DEFAULT_BACKEND = "sqlite:///persistence-demo.db"
DEFAULT_CRASH_AFTER = 3
COUNT = 5
ENV_BACKEND = "PERSISTENCE_DEMO_BACKEND"
SKIPPED_STORED = "skipped (stored)"
FLOW_PICTURE = "generate → square → total → split → (left, right) → join"


class DemoFailed(RuntimeError):
    """A demo run did not behave as a demo run should (the message says how)."""


class DemoTask(Task):
    """A task whose work is a plain function of its arguments."""

    def __init__(self, name: str, fn: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.fn = fn

    def execute(self, **args: Any) -> Any:
        return self.fn(**args)


def build_flow() -> list[DemoTask]:
    """A chain (generate → square → total → split) feeding a diamond (left, right → join)."""
    return [
        DemoTask("generate", lambda count: list(range(1, count + 1)),
                 requires="count", provides="numbers"),
        DemoTask("square", lambda numbers: [n * n for n in numbers],
                 requires="numbers", provides="squares"),
        DemoTask("total", lambda squares: sum(squares), requires="squares", provides="total"),
        DemoTask("split", lambda total: [total // 3, total - total // 3],
                 requires="total", provides=["low", "high"]),
        DemoTask("left", lambda low: low * 2, requires="low", provides="left"),
        DemoTask("right", lambda high: high + 1, requires="high", provides="right"),
        DemoTask("join", lambda a, b: {"left": a, "right": b, "sum": a + b},
                 requires=["a", "b"], rebind={"a": "left", "b": "right"}, provides="answer"),
    ]


# -- the child process ---------------------------------------------------------

def journaled(tasks: list[DemoTask], journal: str,
              crash_after: int | None) -> Callable[[str, Any], None]:
    """Make each task append its name and pid to ``journal`` as it starts (so a report
    can prove what ran twice), and SIGKILL the process in the middle of the task
    after the first ``crash_after`` finished; return the ``on_done(name, result)``
    an engine calls after each saved result (it counts them and prints the result)."""
    finished = 0

    def executing(task: DemoTask) -> Callable[..., Any]:
        def execute(**kwargs: Any) -> Any:
            with open(journal, "a", encoding="utf-8") as fh:
                fh.write(f"{task.name} {os.getpid()}\n")
                fh.flush()
                os.fsync(fh.fileno())
            if crash_after is not None and finished == crash_after:
                print(f"{task.name} started … SIGKILL", flush=True)
                os.kill(os.getpid(), signal.SIGKILL)
            return task.fn(**kwargs)
        return execute

    def done(name: str, result: Any) -> None:
        nonlocal finished
        finished += 1
        print(f"{name} = {result!r}", flush=True)

    for task in tasks:
        task.execute = executing(task)
    return done


def child_arguments(argv: list[str], prog: str) -> argparse.Namespace:
    """The options of a demo child process (this module's and the asyncio example's):
    the flow to run, the journal its tasks append to, where the report goes, and
    after how many finished tasks to SIGKILL itself (see :func:`journaled`)."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--flow", required=True)
    parser.add_argument("--journal", required=True)
    parser.add_argument("--report", required=True)
    parser.add_argument("--crash-after", type=int, default=None)
    return parser.parse_args(argv)


def _child(argv: list[str]) -> int:
    args = child_arguments(argv, "python -m persistence.tools.demo")
    tasks = build_flow()
    done = journaled(tasks, args.journal, args.crash_after)
    with loading.backend(os.environ[ENV_BACKEND]) as be:
        with contextlib.closing(be.get_connection()) as conn:
            flow = conn.get_flow_details(args.flow)
        engine = Engine(tasks, flow, be, on_done=done)
        outcomes = engine.run()
        engine.storage.close()
    with open(args.report, "w", encoding="utf-8") as fh:
        json.dump([dataclasses.asdict(o) for o in outcomes], fh)
    return 0


# -- the parent ----------------------------------------------------------------

@dataclasses.dataclass
class DemoRow:
    name: str
    stored_after_crash: str      # the task's state in the backend when run 1 died
    resume_action: str           # what run 2 did
    executions: int              # how many times the task ran, both runs together
    result: Any
    uninterrupted: Any           # the result of an uninterrupted run

    @property
    def same(self) -> bool:
        return self.result == self.uninterrupted


@dataclasses.dataclass
class DemoReport:
    backend: str                 # masked URI
    logbook: str
    flow: str
    crash_after: int
    crash_pid: int
    crash_returncode: int
    resume_pid: int
    rows: list[DemoRow]

    @property
    def skipped(self) -> list[str]:
        return [r.name for r in self.rows if r.resume_action == SKIPPED_STORED]

    @property
    def ran(self) -> list[str]:
        return [r.name for r in self.rows if r.resume_action != SKIPPED_STORED]

    @property
    def reexecuted_finished(self) -> list[str]:
        """Tasks finished before the crash that ran again (should be none)."""
        return [r.name for r in self.rows
                if r.stored_after_crash == states.SUCCESS and r.executions > 1]

    @property
    def identical(self) -> bool:
        return all(r.same for r in self.rows)


def _spawn(flow_uuid: str, journal: str, report: str, crash_after: int | None,
           uri: str, out: Callable[[str], None], label: str) -> tuple[int, int]:
    cmd = [sys.executable, "-m", "persistence.tools.demo", "--flow", flow_uuid,
           "--journal", journal, "--report", report]
    if crash_after is not None:
        cmd += ["--crash-after", str(crash_after)]
    env = dict(os.environ, **{ENV_BACKEND: uri})
    lines = []
    with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as proc:
        out(f"{label} (pid {proc.pid}):")
        for line in proc.stdout:
            lines.append(line)
            out(f"    {line.rstrip()}")
        proc.wait(timeout=120)
    if proc.returncode not in (0, -signal.SIGKILL):
        raise DemoFailed(f"{label} failed with exit code {proc.returncode}:\n"
                         + "".join(lines[-20:]))
    return proc.pid, proc.returncode


def _reference_results() -> dict[str, Any]:
    """Results of the same flow run without interruption (in memory, nothing stored)."""
    engine = Engine(build_flow(), models.FlowDetail("reference", "reference"), policy="never")
    engine.storage.inject({"count": COUNT})
    return {o.name: o.result for o in engine.run()}


def _create_flow(uri: str) -> tuple[str, str]:
    with loading.backend(uri) as be:
        book = models.LogBook("persistence-demo")
        flow = models.FlowDetail("numbers", uuid=str(uuid.uuid4()))
        book.add(flow)
        with contextlib.closing(be.get_connection()) as conn:
            conn.save_logbook(book)
        with Storage(flow, be) as storage:
            storage.inject({"count": COUNT})        # a flow parameter, stored with the flow
    return book.uuid, flow.uuid


def _stored_states(uri: str, flow_uuid: str) -> dict[str, str]:
    with loading.backend(uri) as be, contextlib.closing(be.get_connection()) as conn:
        return {ad.name: ad.state for ad in conn.get_atoms_for_flow(flow_uuid)}


def run_demo(uri: str = DEFAULT_BACKEND, crash_after: int = DEFAULT_CRASH_AFTER,
             out: Callable[[str], None] = print) -> DemoReport:
    """Run, kill and resume the demo flow in ``uri``; return what happened."""
    total = len(build_flow())
    if not 0 <= crash_after < total:
        raise ValueError(f"--crash-after must be between 0 and {total - 1} (the flow has "
                         f"{total} tasks), not {crash_after}")
    book_uuid, flow_uuid = _create_flow(uri)
    out(f"backend {mask_password(uri)}: logbook {book_uuid}, flow {flow_uuid}")
    out(f"flow: count (injected) → {FLOW_PICTURE}")
    with tempfile.TemporaryDirectory(prefix="persistence-demo-") as tmp:
        journal = os.path.join(tmp, "journal")
        report = os.path.join(tmp, "report.json")
        open(journal, "w").close()
        crash_pid, code = _spawn(flow_uuid, journal, report, crash_after, uri, out,
                                 f"run 1, killed after {crash_after} task(s)")
        if code != -signal.SIGKILL:
            raise DemoFailed(f"run 1 was expected to die by SIGKILL but exited with {code}")
        after_crash = _stored_states(uri, flow_uuid)
        resume_pid, _ = _spawn(flow_uuid, journal, report, None, uri, out,
                               "run 2, a fresh process resuming the same logbook")
        with open(report, encoding="utf-8") as fh:
            outcomes = json.load(fh)
        with open(journal, encoding="utf-8") as fh:
            executions = collections.Counter(line.split()[0] for line in fh if line.strip())
    reference = _reference_results()
    rows = []
    for o in outcomes:
        before = after_crash.get(o["name"], states.PENDING)
        if o["action"] != RAN:
            action = SKIPPED_STORED
        elif before == states.RUNNING:
            action = "re-ran (was RUNNING)"
        else:
            action = "ran"
        rows.append(DemoRow(o["name"], before, action, executions[o["name"]], o["result"],
                            reference[o["name"]]))
    return DemoReport(mask_password(uri), book_uuid, flow_uuid, crash_after, crash_pid,
                      code, resume_pid, rows)


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
