"""Stored values: ``rekey`` (re-encrypt under the current key) and ``sweep``
(remove offloaded blobs no record references).

Neither prints a key: only key ids, counts and the offload URL (without any
``user:password@``).
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from ...backends import blobs
from ...exceptions import PersistenceError
from .. import rekey as rekeying
from .common import OK, add_parser, connect
from .console import Output

__all__ = ["rekey_command", "sweep_command"]


def rekey_command(subparsers: Any) -> None:
    """Add ``rekey``."""
    add_parser(subparsers, "rekey", _rekey, uri=True,
               help="re-encrypt every stored value under the current key",
               description="Rewrite every flow detail and logbook holding a value that is "
                           "not encrypted under the current key (an older key, or none), so "
                           "that older keys can be removed.  Configure the store's 'encrypt' "
                           "with the new key as current and the old ones still listed, e.g. "
                           "sqlite:///flows.db?encrypt=env:FLOW_KEYS.  Flow details "
                           "already under the current key are skipped, so an interrupted run "
                           "resumes where it stopped.")


def _rekey(args: argparse.Namespace, out: Output) -> int:
    with connect(args.uri) as conn, out.progress("logbooks") as progress:
        report = rekeying.rekey(conn, lambda done, total: progress("rekey", done, total))
    if args.json:
        out.json(dataclasses.asdict(report))
        return OK
    out.line(f"rewrote {report.values_rewritten} value(s) in {report.flows_rewritten} of "
             f"{report.flows} flow detail(s) and {report.logbooks_rewritten} of "
             f"{report.logbooks} logbook(s) under key {report.key!r}")
    if report.snapshots_behind:
        out.line(f"{report.snapshots_behind} snapshot(s) still hold values under another key "
                 f"(snapshots are never rewritten): keep that key while they are kept")
    return OK


def sweep_command(subparsers: Any) -> None:
    """Add ``sweep``."""
    parser = add_parser(subparsers, "sweep", _sweep, uri=True,
                        help="remove offloaded blobs no record references",
                        description="List the blobs under the store's offload URL, read "
                                    "every record's references, and remove the blobs none "
                                    "references that are older than the grace period (safe "
                                    "while writers run: see doc/payloads.rst).")
    parser.add_argument("--grace", type=float, default=None, metavar="SECONDS",
                        help="keep blobs younger than this (default: the store's "
                             "offload grace, 3600)")
    parser.add_argument("--dry-run", action="store_true",
                        help="list what would be removed, remove nothing")


def _sweep(args: argparse.Namespace, out: Output) -> int:
    if args.grace is not None and args.grace < 0:
        raise PersistenceError("--grace must be a number of seconds >= 0")
    with connect(args.uri) as conn:
        report = blobs.sweep(conn, grace=args.grace, dry_run=args.dry_run)
    if args.json:
        out.json({**dataclasses.asdict(report), "removed": list(report.removed)})
        return OK
    verb = "would remove" if args.dry_run else "removed"
    out.line(f"{report.url}: {report.listed} blob(s), {report.old_enough} past the grace "
             f"period, {report.referenced} referenced; {verb} {len(report.removed)}")
    return OK
