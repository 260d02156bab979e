"""``demo``: a flow SIGKILLed half-way and resumed in a fresh process
(:mod:`persistence.tools.demo` runs it; this module is its command line)."""

from __future__ import annotations

import argparse
from typing import Any

from .common import OK, PROBLEMS, add_parser
from .console import Output

__all__ = ["demo_command"]


def demo_command(subparsers: Any) -> None:
    """Add ``demo``."""
    from .. import demo

    parser = add_parser(
        subparsers, "demo", _demo,
        help="run a flow, SIGKILL it half-way, resume it in a fresh process",
        description="Run a small flow (a chain and a diamond of tasks) in a child process "
                    "that SIGKILLs itself after N tasks, resume it from the same logbook "
                    "in a fresh process, and show which tasks were skipped and which ran.")
    parser.add_argument("--backend", default=demo.DEFAULT_BACKEND, metavar="URI",
                        help="backend URI (default: %(default)s, in the current directory)")
    tasks = len(demo.build_flow())

    def crash_after(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = -1
        if not 0 <= value < tasks:
            raise argparse.ArgumentTypeError(
                f"must be a whole number from 0 to {tasks - 1} (the flow has {tasks} "
                f"tasks), not {text!r}")
        return value
    parser.add_argument("--crash-after", type=crash_after, default=demo.DEFAULT_CRASH_AFTER,
                        metavar="N", help=f"tasks to finish before the kill, 0-{tasks - 1} "
                                          f"(default: %(default)s)")


def _demo(args: argparse.Namespace, out: Output) -> int:
    from .. import demo

    try:
        report = demo.run_demo(args.backend, args.crash_after,
                               out=out.error if args.json else out.line)
    except demo.DemoFailed as err:
        out.error(f"persistence demo: error: {err}")
        return PROBLEMS
    ok = report.identical and not report.reexecuted_finished
    if args.json:
        import dataclasses
        out.json({**dataclasses.asdict(report), "skipped": report.skipped, "ran": report.ran,
                  "reexecuted_finished": report.reexecuted_finished,
                  "identical": report.identical})
        return OK if ok else PROBLEMS
    out.line()
    out.table(
        "Run 2 resumed from the logbook run 1 left behind",
        ["task", "after kill", "resumed run", "runs", "result", "uninterrupted"],
        [(r.name, r.stored_after_crash, r.resume_action, r.executions, repr(r.result),
          "same" if r.same else f"DIFFERENT: {r.uninterrupted!r}") for r in report.rows])
    out.line("runs: how often each task started executing, both processes together (from "
             "a journal); the task killed mid-run ran twice, a finished task never does.")
    out.line()
    out.line(f"{len(report.skipped)} task(s) skipped because their results were already "
             f"stored, {len(report.ran)} ran; finished tasks executed again: "
             f"{len(report.reexecuted_finished)}.")
    out.line("Final results identical to an uninterrupted run: "
             + ("yes" if report.identical else "NO"))
    out.line(f"Inspect the stored run: persistence show {report.backend} {report.logbook}")
    return OK if ok else PROBLEMS
