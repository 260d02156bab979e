"""Moving logbooks between stores: ``export``, ``import`` and ``migrate``."""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterator
from typing import Any

from ...backends import registry as loading
from ...backends.base import Connection
from ...backends.url import mask_password
from ...exceptions import ConfigurationError, Duplicate, PersistenceError
from .. import archive, presence
from .. import copy as migrate
from .common import OK, add_parser, backend_uri, connect
from .console import Output

__all__ = ["export_command", "import_command", "migrate_command"]


def _report(args: argparse.Namespace, out: Output, verb: str,
            report: migrate.MigrationReport, extra: dict[str, Any]) -> int:
    if args.json:
        out.json({**extra, **report.to_dict()})
        return OK
    out.line(f"{verb} {report.logbooks} logbook(s), {report.flow_details} flow detail(s), "
             f"{report.atom_details} atom detail(s): {report.created} created, "
             f"{report.replaced} replaced, {report.skipped} skipped"
             + ("; every record verified" if report.verified else ""))
    return OK


def _logbooks(parser: argparse.ArgumentParser, verb: str) -> None:
    parser.add_argument("--logbook", action="append", metavar="UUID",
                        help=f"{verb} this logbook only (repeatable)")


def _existing(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument("--existing", choices=migrate.EXISTING, default=default,
                        help="a logbook already in the destination: resume = skip it if "
                             "identical, replace it if not; skip; replace; fail = stop "
                             "before writing anything (default: %(default)s)")


# -- export -----------------------------------------------------------------------

def export_command(subparsers: Any) -> None:
    """Add ``export``."""
    parser = add_parser(subparsers, "export", _export, uri=True,
                        help="write logbooks to an archive file",
                        description="Write every logbook (or the ones named) to one "
                                    "self-describing archive: a zip with the records as "
                                    "JSON lines and a manifest with counts and sha256.")
    parser.add_argument("file", metavar="FILE", help="archive to write (replaced if present)")
    _logbooks(parser, "export")


def _export(args: argparse.Namespace, out: Output) -> int:
    uri = backend_uri(args.uri)
    folder = os.path.dirname(os.path.abspath(args.file))
    if not os.path.isdir(folder):
        raise PersistenceError(f"cannot write {args.file}: directory {folder} does not exist "
                               f"(create it first)")
    with connect(uri) as conn, out.progress("logbooks") as progress:
        manifest = archive.export_archive(conn, args.file, args.logbook,
                                          source=mask_password(uri), progress=progress)
    if args.json:
        out.json({"file": args.file, **manifest.to_dict()})
    else:
        c = manifest.counts
        out.line(f"exported {c['logbooks']} logbook(s), {c['flow_details']} flow detail(s), "
                 f"{c['atom_details']} atom detail(s) to {args.file}")
    return OK


# -- import -----------------------------------------------------------------------

def import_command(subparsers: Any) -> None:
    """Add ``import``."""
    parser = add_parser(subparsers, "import", _import, uri=True,
                        help="load an archive into a backend",
                        description="Verify an archive completely (checksums, counts, every "
                                    "record), then write its logbooks into the backend.  A "
                                    "corrupt or truncated archive is refused and nothing is "
                                    "written.")
    parser.add_argument("file", metavar="FILE", help="archive written by 'persistence export'")
    _existing(parser, "fail")
    parser.add_argument("--dry-run", action="store_true", help="verify only, write nothing")
    parser.add_argument("--keep-partial", action="store_true",
                        help="if writing fails, keep the logbooks written so far (each is "
                             "whole; re-run with --existing resume to finish) instead of "
                             "putting the destination back as it was")
    parser.add_argument("--max-line-bytes", type=int, metavar="N",
                        default=archive.Limits.line_bytes,
                        help="refuse an archive with a record longer than N bytes "
                             "(default: %(default)s)")


def _import(args: argparse.Namespace, out: Output) -> int:
    try:
        limits = archive.Limits(line_bytes=args.max_line_bytes)
    except ValueError as err:
        raise ConfigurationError(f"--max-line-bytes: {err}") from None
    # The whole archive is checked before the destination is opened, created or upgraded.
    with out.progress("logbooks") as progress:
        manifest = archive.verify_archive(args.file, progress=progress, limits=limits)
    try:
        with _import_target(args) as conn, out.progress("logbooks") as progress:
            report = None
            if conn is not None:   # None: --dry-run into no store, nothing to compare
                report = archive.import_archive(conn, args.file, existing=args.existing,
                                                dry_run=args.dry_run, progress=progress,
                                                atomic=not args.keep_partial, limits=limits)
    except Duplicate as err:
        raise Duplicate(f"{err}; choose what to do with them: --existing resume, skip or "
                        f"replace") from err
    if args.dry_run or report is None:
        if args.json:
            out.json({"file": args.file, "valid": True, **manifest.to_dict()})
        else:
            out.line(f"{args.file}: valid archive of {manifest.counts['logbooks']} "
                     f"logbook(s); nothing written (--dry-run)")
        return OK
    return _report(args, out, "imported", report, {"file": args.file})


@contextlib.contextmanager
def _import_target(args: argparse.Namespace) -> Iterator[Connection | None]:
    """The destination of an import; None for a dry run where there is no store yet."""
    if not args.dry_run:
        with connect(args.uri, upgrade=True) as conn:
            yield conn
        return
    backend = loading.fetch(backend_uri(args.uri))
    try:
        exists = presence.store_exists(backend)
    finally:
        backend.close()
    if exists is False:
        yield None
        return
    with connect(args.uri) as conn:
        yield conn


# -- migrate ----------------------------------------------------------------------

def migrate_command(subparsers: Any) -> None:
    """Add ``migrate``."""
    parser = add_parser(subparsers, "migrate", _migrate,
                        help="copy logbooks from one backend to another",
                        description="Copy every logbook (or the ones named) from SRC to DST, "
                                    "one logbook at a time, then read DST back and compare "
                                    "every record.  Safe to "
                                    "re-run after an interruption: finished logbooks are "
                                    "skipped, a half-written one is replaced.")
    parser.add_argument("src", metavar="SRC",
                        help="source backend URI; for a store written by TaskFlow, its "
                             "TaskFlow URI with taskflow+ in front (taskflow+sqlite:///old.db, "
                             "taskflow+postgresql://…, taskflow+mysql://…, taskflow+dir:///path, "
                             "taskflow+zookeeper://host:2181/path)")
    parser.add_argument("dst", metavar="DST", help="destination backend URI")
    _logbooks(parser, "copy")
    _existing(parser, "resume")
    parser.add_argument("--no-verify", action="store_true",
                        help="do not read the destination back at the end")


def _migrate(args: argparse.Namespace, out: Output) -> int:
    if args.src == args.dst:
        raise PersistenceError("SRC and DST are the same backend")
    if args.dst.lower().startswith("taskflow+"):
        raise ConfigurationError(f"DST {mask_password(args.dst)} is a TaskFlow store, which "
                                 f"can only be a source: migrate from it into a persistence "
                                 f"backend (e.g. sqlite:///flows.db)")
    with connect(args.src) as src, connect(args.dst, upgrade=True) as dst, \
            out.progress("logbooks") as progress:
        report = migrate.migrate(src, dst, args.logbook, existing=args.existing,
                                 verify=not args.no_verify, progress=progress)
    return _report(args, out, "migrated", report,
                   {"src": mask_password(args.src), "dst": mask_password(args.dst)})
