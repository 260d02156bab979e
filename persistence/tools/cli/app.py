"""The ``persistence`` command (also ``python -m persistence``): its parser and ``main``.

The subcommands live in modules grouped by what they do: :mod:`.browse` (ls,
show, history, summary), :mod:`.maintenance` (purge, upgrade, validate),
:mod:`.payload` (rekey, sweep), :mod:`.transfer` (export, import, migrate)
and :mod:`.demo`; what they share is in :mod:`.common`, how records look in
:mod:`.render`, how output is printed in :mod:`.console`.  ``main`` parses, runs the handler of the
subcommand given, and turns any error into one line.

Adding a subcommand is a function that adds its parser (in a new module, or
in the group it belongs to) and one entry in :data:`COMMANDS`, as ``summary``::

    # browse.py (abridged)
    def summary_command(subparsers):
        parser = add_parser(subparsers, "summary", _summary, uri=True,
                            help="atom counts by state of a flow")
        parser.add_argument("flow", metavar="FLOW_UUID")

    def _summary(args, out):
        with connect(args.uri) as conn:
            summary = conn.summary(args.flow)
        out.json(summary.to_dict()) if args.json else out.table("Atoms by state", ...)
        return OK

:func:`~.common.add_parser` gives the subcommand ``--json`` and ``--debug``
and, with ``uri=True``, a backend URI argument (``$PERSISTENCE_URI`` when
left out); the handler reaches the store only through
:func:`~.common.connect` (the public ``Connection``) and returns an exit code.

Errors are one line on stderr naming the subcommand (``--debug`` adds the
traceback), passwords masked, and with ``--json`` also a JSON error object on
stdout; exit codes (:data:`persistence.tools.cli.errors.EXIT_CODES`): 0 done, 1 a
check found problems, 2 an error (bad usage included), 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from . import browse, demo, maintenance, payload, transfer
from . import errors as cli_errors
from .common import ENV_URI, OK
from .console import Output, rich

__all__ = ["main", "build_parser", "COMMANDS", "ENV_URI"]

#: Every subcommand, in the order ``persistence --help`` lists them.  Each adds its
#: parser to the subparsers it is given and sets ``handler(args, out) -> exit code``.
COMMANDS: tuple[Callable[[Any], None], ...] = (
    browse.ls_command, browse.show_command, browse.history_command, browse.summary_command,
    maintenance.purge_command, maintenance.upgrade_command, maintenance.validate_command,
    payload.rekey_command, payload.sweep_command,
    transfer.export_command, transfer.import_command, transfer.migrate_command,
    demo.demo_command,
)


def _version() -> str:
    try:
        version = importlib.metadata.version("persistence")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree
        version = "unknown"
    return f"persistence {version} (Python {sys.version.split()[0]})"


def build_parser() -> argparse.ArgumentParser:
    """The ``persistence`` parser with every subcommand of :data:`COMMANDS`."""
    parser = cli_errors.Parser(
        prog="persistence",
        description=f"Inspect, copy and maintain workflow persistence backends.  Backend "
                    f"URIs: memory://, file:///path, sqlite:///path.db, "
                    f"postgresql://user@host/db, mysql://user@host/db, "
                    f"zookeeper://host:2181/path; or set {ENV_URI}.")
    parser.add_argument("--debug", action="store_true", default=False,
                        help="show the traceback of an error")
    parser.add_argument("--version", action="version", version=_version(),
                        help="print the version and exit")
    parser.epilog = "exit codes: " + "; ".join(
        f"{code} {meaning}" for code, meaning in cli_errors.EXIT_CODES.items())
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add_command in COMMANDS:
        add_command(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``persistence`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    with cli_errors.usage_errors(argv):
        args = build_parser().parse_args(argv)
    secrets = cli_errors.secrets_of([*vars(args).values(), os.environ.get(ENV_URI)])
    cli_errors.quiet_loggers(args.debug, secrets)
    out = Output(use_rich=rich is not None)
    try:
        return args.handler(args, out)
    except BrokenPipeError:  # `persistence ls | head`
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        return OK
    except (Exception, KeyboardInterrupt) as err:  # one clear line, never a traceback
        return cli_errors.report(args.command, err, debug=args.debug,
                                 as_json=getattr(args, "json", False), stdout=out.stream,
                                 stderr=out.err, secrets=secrets)
