"""Looking after a store: ``purge``, ``upgrade`` and ``validate``."""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Any

from ...backends import registry as loading
from ...backends import shared as lifecycle
from ...backends.url import mask_password
from ...exceptions import NotFound, PersistenceError, StorageFailure
from ...models import states
from .. import copy as migrate
from . import errors as cli_errors
from .common import OK, PROBLEMS, add_parser, add_time, backend_uri, connect, count
from .console import Output, isatty

__all__ = ["purge_command", "upgrade_command", "validate_command", "confirm", "PURGE_LISTED"]


# -- purge ------------------------------------------------------------------------

def purge_command(subparsers: Any) -> None:
    """Add ``purge``."""
    parser = add_parser(subparsers, "purge", _purge, uri=True,
                        help="delete old finished logbooks",
                        description="Delete whole logbooks (flows, atoms, history, snapshots) "
                                    "last changed before TIME whose flow details are all "
                                    "finished, a batch of logbooks per transaction, so live "
                                    "writers wait for one batch at most.")
    add_time(parser, "--finished-before", "cutoff: ISO 8601, or an age such as 30d",
             required=True)
    parser.add_argument("--state", action="append", choices=sorted(states.FLOW_STATES),
                        help="flow states that count as finished (repeatable; default: "
                             "SUCCESS, REVERTED, FAILURE)")
    parser.add_argument("--batch-size", type=count, default=100,
                        help="logbooks per transaction (default: %(default)s)")
    parser.add_argument("--dry-run", action="store_true",
                        help="list what would be deleted, delete nothing")
    parser.add_argument("--yes", action="store_true",
                        help="do not ask for confirmation (asked only on a terminal)")


def _purge(args: argparse.Namespace, out: Output) -> int:
    if args.batch_size < 1:
        raise PersistenceError("--batch-size must be at least 1")
    ask = not (args.yes or args.dry_run or args.json) and isatty(sys.stdin)
    with connect(args.uri) as conn, out.progress("logbooks") as progress:
        def purge(dry_run: bool) -> lifecycle.PurgeReport:
            stage = "dry run" if dry_run else "purge"
            return conn.purge(args.finished_before, states=args.state or lifecycle.FINISHED,
                              batch_size=args.batch_size, dry_run=dry_run,
                              progress=lambda done, total: progress(stage, done, total))
        report = purge(True) if ask or args.dry_run else None
        if ask and report.logbooks and not confirm(out, report):
            out.line("nothing deleted")
            return OK
        if not args.dry_run and (report is None or report.logbooks):
            report = purge(False)
    if args.json:
        out.json({"finished_before": args.finished_before.isoformat(), **report.to_dict()})
        return OK
    if args.dry_run:
        _list_purged(out, report.logbooks)
    verb = "would delete" if args.dry_run else "deleted"
    out.line(f"{verb} {len(report.logbooks)} logbook(s), {report.flow_details} flow "
             f"detail(s), {report.atom_details} atom detail(s) in {report.batches} batch(es)"
             + (" (--dry-run: nothing deleted)" if args.dry_run else ""))
    return OK


#: Logbook uuids a dry run prints at most (--json lists every one).
PURGE_LISTED = 50


def _list_purged(out: Output, uuids: list[str]) -> None:
    for uuid in uuids[:PURGE_LISTED]:
        out.line(f"  {uuid}")
    if len(uuids) > PURGE_LISTED:
        out.line(f"  … and {len(uuids) - PURGE_LISTED} more (--json lists every one)")


def confirm(out: Output, report: lifecycle.PurgeReport) -> bool:
    """Show what a purge would delete and ask on the terminal; True for yes."""
    _list_purged(out, report.logbooks)
    prompt = (f"Delete these {len(report.logbooks)} logbook(s), {report.flow_details} flow "
              f"detail(s), {report.atom_details} atom detail(s)? [y/N] ")
    print(prompt, end="", file=out.stream, flush=True)
    try:
        answer = sys.stdin.readline()
    except (EOFError, OSError):
        answer = ""
    return answer.strip().lower() in ("y", "yes")


# -- upgrade ----------------------------------------------------------------------

def upgrade_command(subparsers: Any) -> None:
    """Add ``upgrade``."""
    parser = add_parser(subparsers, "upgrade", _upgrade, uri=True,
                        help="bring a backend's schema up to date",
                        description="Create or migrate the backend's schema or layout.  "
                                    "With --sql (SQL backends), print the SQL instead of "
                                    "running it (Alembic offline mode).")
    parser.add_argument("--sql", action="store_true", help="print the SQL, change nothing")
    parser.add_argument("--from", dest="start", metavar="REVISION",
                        help="with --sql: the migration the database is at ('base' for an "
                             "empty one); default: ask the database")


def _upgrade(args: argparse.Namespace, out: Output) -> int:
    uri = backend_uri(args.uri)
    masked = mask_password(uri)
    backend = loading.fetch(uri)
    try:
        sql = backend if backend.supports_upgrade_script else None
        if args.sql or args.start:
            if sql is None:
                raise PersistenceError(f"--sql applies to SQL backends only, not to "
                                       f"{type(backend).__name__}")
            start = args.start or sql.schema_revision() or "base"
            text = sql.upgrade_script(start)
            if args.json:
                out.json({"backend": masked, "from": start, "sql": text})
            else:
                print(text, end="", file=out.stream, flush=True)
            return OK
        before = backend.schema_revision()
        with contextlib.closing(backend.get_connection()) as conn:
            conn.upgrade()
            conn.validate()
        after = backend.schema_revision()
    finally:
        backend.close()
    if args.json:
        out.json({"backend": masked, "from": before, "to": after, "changed": before != after})
    elif sql is not None and before != after:
        out.line(f"{masked}: migrated from {before or 'an empty database'} to {after}")
    else:
        out.line(f"{masked}: up to date" + (f" (migration {after})" if after else ""))
    return OK


# -- validate ---------------------------------------------------------------------

def validate_command(subparsers: Any) -> None:
    """Add ``validate``."""
    parser = add_parser(subparsers, "validate", _validate, uri=True,
                        help="check a backend and every record in it",
                        description="Check the backend's schema or layout, then load every "
                                    "logbook with its flows and atoms and report those that "
                                    "cannot be read.  Exit code 1 if anything is wrong.")
    parser.add_argument("--schema-only", action="store_true",
                        help="check the schema or layout only, not the records")


def _validate(args: argparse.Namespace, out: Output) -> int:
    problems: list[str] = []
    counts = {"logbooks": 0, "flow_details": 0, "atom_details": 0}
    with connect(args.uri) as conn:
        try:
            conn.validate()
        except StorageFailure as err:
            problems.append(mask_password(str(err)))
        read_records = not problems and not args.schema_only
        if read_records:
            uuids = list(migrate.logbook_uuids(conn))
            with out.progress("logbooks") as progress:
                for done, uuid in enumerate(uuids, 1):
                    try:
                        book = conn.get_logbook(uuid)
                    except NotFound:
                        continue  # deleted meanwhile
                    except PersistenceError as err:
                        problems.append(f"logbook {uuid}: {mask_password(str(err))}")
                    else:
                        counts["logbooks"] += 1
                        counts["flow_details"] += len(book)
                        counts["atom_details"] += sum(len(fd) for fd in book)
                    progress("validate", done, len(uuids))
    groups = cli_errors.group_problems(problems)
    if args.json:
        out.json({"ok": not problems, "problems": problems, "groups": groups,
                  "checked": counts if read_records else None})
    else:
        for group in groups:
            if group["count"] == 1:
                out.line(f"problem: {group['examples'][0]}")
            else:
                out.line(f"problem ({group['count']} times): {group['problem']}; e.g. "
                         f"{group['examples'][0]}")
        checked = "" if not read_records else (
            f"; {counts['logbooks']} logbook(s), {counts['flow_details']} flow detail(s), "
            f"{counts['atom_details']} atom detail(s) read")
        out.line(("OK" if not problems else f"{len(problems)} problem(s)") + checked)
    return OK if not problems else PROBLEMS
