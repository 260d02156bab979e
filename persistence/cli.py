"""The ``persistence`` command.

Each subcommand is a function decorated with :func:`command` that adds its
parser to the subparsers and sets ``handler`` (``handler(args, out) -> exit
code``); ``main`` dispatches.  Tables go through :class:`Output`, which uses
``rich`` when it is installed (the ``cli`` extra) and plain text otherwise.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from .exceptions import PersistenceError

__all__ = ["main", "build_parser", "command", "Output"]

try:
    import rich.console
    import rich.table
except ImportError:  # the cli extra is not installed: plain text
    rich = None

COMMANDS: list[Callable[[Any], None]] = []


def command(register: Callable[[Any], None]) -> Callable[[Any], None]:
    """Register a function that adds one subcommand to the subparsers it is given."""
    COMMANDS.append(register)
    return register


class Output:
    """Lines and tables on ``stream``; rich tables when available and wanted."""

    def __init__(self, stream: TextIO | None = None, use_rich: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.rich = (rich is not None) if use_rich is None else (use_rich and rich is not None)
        self._console = None
        if self.rich:
            # Not a terminal (a file, a pipe): no width to respect, so avoid wrapping.
            width = None if getattr(self.stream, "isatty", lambda: False)() else 120
            self._console = rich.console.Console(file=self.stream, highlight=False,
                                                 soft_wrap=True, width=width)

    def line(self, text: str = "") -> None:
        if self._console is not None:
            self._console.print(text, markup=False)
        else:
            print(text, file=self.stream, flush=True)

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        cells = [[str(c) for c in row] for row in rows]
        if self._console is not None:
            table = rich.table.Table(title=title, title_justify="left")
            # Only the widest column wraps, so short ones stay on one line.
            widest = max(range(len(columns)),
                         key=lambda i: max((len(row[i]) for row in cells), default=0))
            for i, name in enumerate(columns):
                table.add_column(name, overflow="fold", no_wrap=i != widest)
            for row in cells:
                table.add_row(*row)
            self._console.print(table)
            return
        widths = [max([len(name)] + [len(row[i]) for row in cells])
                  for i, name in enumerate(columns)]

        def fmt(values: Sequence[str]) -> str:
            return "  ".join(v.ljust(w) for v, w in zip(values, widths)).rstrip()
        self.line(title)
        self.line(fmt(columns))
        self.line(fmt(["-" * w for w in widths]))
        for row in cells:
            self.line(fmt(row))


@command
def _demo_command(subparsers: Any) -> None:
    from . import demo

    parser = subparsers.add_parser(
        "demo", help="run a flow, SIGKILL it half-way, resume it in a fresh process",
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
    parser.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace, out: Output) -> int:
    from . import demo

    try:
        report = demo.run_demo(args.backend, args.crash_after, out=out.line)
    except demo.DemoFailed as err:
        print(f"persistence demo: error: {err}", file=sys.stderr)
        return 1
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
    return 0 if report.identical and not report.reexecuted_finished else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="persistence", description="Inspect and exercise workflow persistence backends.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in COMMANDS:
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``persistence`` console script."""
    args = build_parser().parse_args(argv)
    out = Output()
    try:
        return args.handler(args, out)
    except PersistenceError as err:
        print(f"persistence {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
