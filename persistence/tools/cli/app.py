"""The ``persistence`` command (also ``python -m persistence``).

Each subcommand is one function decorated with :func:`command`: it gets the
subparsers, adds its parser with :func:`add_parser` (which gives it
``--json`` and ``--debug``) and sets ``handler(args, out) -> exit code``;
``main`` dispatches.  A subcommand needing a backend takes the URI as an
argument or from ``PERSISTENCE_URI`` (:func:`add_uri`) and opens it with
:func:`connect`.  A new subcommand over a Connection method is therefore one
registration and one handler, e.g.::

    @command
    def _summary_command(subparsers):
        parser = add_parser(subparsers, "summary", help="atom counts by state of a flow")
        add_uri(parser)
        parser.add_argument("flow", metavar="FLOW_UUID")
        parser.set_defaults(handler=_summary)

    def _summary(args, out):
        with connect(args.uri) as conn:
            summary = conn.summary(args.flow)
        out.json(summary) if args.json else out.table("Atoms by state", ...)
        return OK

Errors are one line on stderr naming the subcommand (``--debug`` adds the
traceback), passwords masked, and with ``--json`` also a JSON error object on
stdout; exit codes (:data:`persistence.tools.cli.errors.EXIT_CODES`): 0 done, 1 a
check found problems, 2 an error (bad usage included), 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import fnmatch
import importlib.metadata
import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ...backends import registry as loading
from ...backends import shared as lifecycle
from ...backends.base import Connection
from ...backends.url import mask_password
from ...exceptions import ConfigurationError, Duplicate, NotFound, PersistenceError, StorageFailure
from ...models import encoding as serialization
from ...models import records as models
from ...models import states
from .. import archive, presence
from .. import copy as migrate
from . import errors as cli_errors
from .console import Node, Output, escape, rich

__all__ = ["main", "build_parser", "command", "add_parser", "add_uri", "connect", "Output",
           "list_logbooks", "ENV_URI"]

ENV_URI = "PERSISTENCE_URI"
COMMANDS: list[Callable[[Any], None]] = []
OK, PROBLEMS, ERROR = cli_errors.OK, cli_errors.PROBLEMS, cli_errors.ERROR


def command(register: Callable[[Any], None]) -> Callable[[Any], None]:
    """Register a function that adds one subcommand to the subparsers it is given."""
    COMMANDS.append(register)
    return register


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true",
                        help="print machine-readable JSON on stdout")
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the traceback of an error")
    return common


def add_parser(subparsers: Any, name: str, **kwargs: Any) -> argparse.ArgumentParser:
    """A subcommand parser with the options every subcommand has (--json, --debug)."""
    return subparsers.add_parser(name, parents=[_common()], **kwargs)


def add_uri(parser: argparse.ArgumentParser, dest: str = "uri",
            help: str = "backend URI") -> None:
    parser.add_argument(dest, nargs="?", metavar="URI",
                        help=f"{help} (default: ${ENV_URI})")


def _uri(value: str | None) -> str:
    uri = value or os.environ.get(ENV_URI)
    if not uri:
        raise PersistenceError(f"no backend URI: pass one (e.g. sqlite:///flows.db) or set "
                               f"{ENV_URI}")
    return uri


@contextlib.contextmanager
def connect(uri: str | None, upgrade: bool = False) -> Iterator[Connection]:
    """A connection to the backend at ``uri`` (or $PERSISTENCE_URI), closed afterwards.

    ``upgrade=True`` brings the schema up to date first (for writers);
    readers leave the backend as it is, and get
    :class:`~persistence.tools.presence.StoreMissing` (nothing created) where there
    is no store.
    """
    full = _uri(uri)
    backend = loading.fetch(full)
    try:
        if upgrade:
            _refuse_taskflow_store(full, backend)
        else:
            exists = presence.store_exists(backend)   # an unreachable store fails here, once
            _refuse_taskflow_store(full, backend)     # a TaskFlow store says so first
            if exists is False:
                raise presence.missing(mask_password(full))
        conn = backend.get_connection()
        try:
            if upgrade:
                conn.upgrade()
            yield conn
        finally:
            conn.close()
    finally:
        backend.close()


def _refuse_taskflow_store(uri: str, backend: Any) -> None:
    """A TaskFlow store opened as a persistence one would read as empty (or be written
    into): say so, and name the URI that reads it."""
    from ..taskflow_probe import taskflow_store_in

    found = taskflow_store_in(backend)
    if found:
        masked = mask_password(uri)
        raise ConfigurationError(
            f"{masked} holds a TaskFlow store ({found}), not a persistence one: read it as "
            f"taskflow+{masked}, e.g. 'persistence migrate taskflow+{masked} DST' to copy it "
            f"into a persistence backend (TaskFlow stores are only ever read)")


def _time(value: datetime.datetime | None) -> str:
    if value is None:
        return "-"
    return value.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


_AGO = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def _when(text: str) -> datetime.datetime:
    """ISO 8601 (naive means UTC) or an age such as ``30m``, ``12h``, ``7d``."""
    match = _AGO.match(text.strip())
    now = datetime.datetime.now(datetime.timezone.utc)
    if match:
        return now - datetime.timedelta(**{_UNITS[match[2]]: int(match[1])})
    try:
        value = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a time: {text!r} (use ISO 8601, e.g. 2026-11-01T12:00, or an age: "
            f"30m, 12h, 7d)") from None
    return value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, not {text!r}")
    return int(text)


# -- ls ---------------------------------------------------------------------------

def list_logbooks(conn: Connection, *, name: str | None = None,
                  updated_since: datetime.datetime | None = None,
                  updated_before: datetime.datetime | None = None,
                  limit: int | None = None, offset: int = 0
                  ) -> tuple[list[models.LogBook], int]:
    """One page of logbooks, newest first, without their flows; and how many match.

    Both come from the backend (``Connection.list_logbooks`` and
    ``count_logbooks``): SQL backends page and count in the database.  A
    ``name`` with glob characters (``nightly-*``, ``job-?``, ``[ab]*``) is
    matched here, over the logbooks the other filters let through.
    """
    if name is not None and _GLOB.search(name):
        matches = [book for book in conn.list_logbooks(updated_since=updated_since,
                                                       updated_before=updated_before)
                   if fnmatch.fnmatchcase(book.name, name)]
        end = None if limit is None else offset + limit
        return matches[offset:end], len(matches)
    filters = {"name": name, "updated_since": updated_since, "updated_before": updated_before}
    page = conn.list_logbooks(limit=limit, offset=offset, **filters)
    return list(page), conn.count_logbooks(**filters)


_GLOB = re.compile(r"[*?\[]")


@command
def _ls_command(subparsers: Any) -> None:
    parser = add_parser(subparsers, "ls", help="list logbooks, newest first",
                        description="List logbooks, newest first (by update time).")
    add_uri(parser)
    parser.add_argument("--name", help="only logbooks with this name; a glob such as "
                                       "'nightly-*' matches several")
    parser.add_argument("--updated-since", type=_when, metavar="TIME",
                        help="only logbooks updated at or after TIME (ISO 8601, or an age "
                             "such as 12h or 7d)")
    parser.add_argument("--updated-before", type=_when, metavar="TIME",
                        help="only logbooks updated before TIME")
    parser.add_argument("--limit", type=_count, default=50,
                        help="at most this many (default: %(default)s; 0: no limit)")
    parser.add_argument("--offset", type=_count, default=0, help="skip this many first")
    parser.set_defaults(handler=_ls)


def _ls(args: argparse.Namespace, out: Output) -> int:
    limit = args.limit or None
    with connect(args.uri) as conn:
        books, total = list_logbooks(conn, name=args.name, updated_since=args.updated_since,
                                     updated_before=args.updated_before, limit=limit,
                                     offset=args.offset)
    if args.json:
        out.json({"logbooks": [b.to_dict(marshal_time=True) for b in books], "offset": args.offset,
                  "limit": limit, "total": total})
        return OK
    shown = f"{args.offset + 1}-{args.offset + len(books)}" if books else "none"
    of = f" of {total}" if total is not None else ""
    out.table(f"Logbooks {shown}{of}", ["uuid", "name", "created", "updated"],
              [(b.uuid, b.name, _time(b.created_at), _time(b.updated_at)) for b in books])
    if total is not None and args.offset + len(books) < total:
        out.line(f"more: --offset {args.offset + len(books)}")
    return OK


# -- show -------------------------------------------------------------------------

_STATE_STYLE = {states.SUCCESS: "green", states.FAILURE: "bold red",
                states.REVERT_FAILURE: "bold red", states.RUNNING: "yellow",
                states.REVERTING: "yellow", states.REVERTED: "magenta",
                states.RETRYING: "yellow", states.PENDING: "dim"}


def _state(value: str | None) -> str:
    text = escape(str(value or "-"))
    style = _STATE_STYLE.get(value or "")
    return f"[{style}]{text}[/]" if style else text


def _cut(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"


def _short(value: Any, width: int = 60) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, default=repr)
    except (TypeError, ValueError):
        text = repr(value)
    return _cut(text, width)


def _failure(failure: Any) -> str:
    first = failure.exc_type_names[0] if failure.exc_type_names else "?"
    return _cut(f"{first}: {failure.exception_str}", 80)


def _injector_node(ad: models.AtomDetail) -> Node:
    """The engine's own record of the flow's injected values: not a task of the flow."""
    values = ad.results if isinstance(ad.results, dict) else {}
    label = (f"[dim]injected values[/] ({len(values)}: "
             f"{escape(_cut(', '.join(sorted(map(str, values))), 60)) or '-'})  "
             f"[dim]engine-internal {escape(ad.name)} {ad.uuid}[/]")
    return (label, [])


def _atom_node(ad: models.AtomDetail) -> Node:
    if ad.name == lifecycle.INJECTOR:
        return _injector_node(ad)
    kind = "retry" if isinstance(ad, models.RetryDetail) else "task"
    label = (f"[bold]{escape(ad.name)}[/] ({kind}) {_state(ad.state)} "
             f"intention {escape(str(ad.intention))}")
    details: list[Node] = []
    if isinstance(ad, models.RetryDetail):
        if ad.results:
            details.append((escape(f"result: {_short(ad.last_results)} "
                                        f"({len(ad.results)} attempt(s))"), []))
    elif ad.results is not None:
        details.append((escape(f"result: {_short(ad.results)}"), []))
    if ad.failure is not None:
        details.append((f"[red]failure: {escape(_failure(ad.failure))}[/]", []))
    if ad.revert_results is not None:
        details.append((escape(f"revert result: {_short(ad.revert_results)}"), []))
    if ad.revert_failure is not None:
        details.append((f"[red]revert failure: {escape(_failure(ad.revert_failure))}[/]",
                        []))
    return (f"{label}  [dim]{ad.uuid}[/]", details)


def _flow_node(fd: models.FlowDetail) -> Node:
    atoms = sum(1 for ad in fd if ad.name != lifecycle.INJECTOR)
    label = (f"flow [bold]{escape(fd.name)}[/] {_state(fd.state)}  [dim]{fd.uuid}[/]  "
             f"{atoms} atom(s)")
    return (label, [_atom_node(ad) for ad in fd])


def _book_node(book: models.LogBook) -> Node:
    label = (f"logbook [bold]{escape(book.name)}[/]  [dim]{book.uuid}[/]  created "
             f"{_time(book.created_at)}, updated {_time(book.updated_at)}")
    return (label, [_flow_node(fd) for fd in book])


def _flow_json(fd: models.FlowDetail, parent: str | None) -> dict[str, Any]:
    record = serialization.flow_record(fd, parent, fd.revision)
    record["atom_details"] = [serialization.atom_record(ad, fd.uuid, ad.revision) for ad in fd]
    for atom in record["atom_details"]:   # the injector is the engine's, not the flow's
        atom["engine_internal"] = atom.get("name") == lifecycle.INJECTOR
    return record


@command
def _show_command(subparsers: Any) -> None:
    parser = add_parser(subparsers, "show", help="a logbook (or flow detail) as a tree",
                        description="Show a logbook → its flow details → their atom details "
                                    "with states, intentions and short results.  A flow "
                                    "detail's uuid shows just that flow.")
    add_uri(parser)
    parser.add_argument("uuid", metavar="UUID", help="logbook or flow detail uuid")
    parser.set_defaults(handler=_show)


def _show(args: argparse.Namespace, out: Output) -> int:
    with connect(args.uri) as conn:
        try:
            book: models.LogBook | None = conn.get_logbook(args.uuid)
            flow = None
        except NotFound:
            book = None
            try:
                flow = conn.get_flow_details(args.uuid)
            except NotFound:
                raise NotFound(f"no logbook or flow detail {args.uuid}") from None
    if args.json:
        if book is not None:
            out.json({"logbook": serialization.logbook_record(book, book.revision),
                      "flow_details": [_flow_json(fd, book.uuid) for fd in book]})
        else:
            out.json({"flow_detail": _flow_json(flow, None)})
        return OK
    out.tree(_book_node(book) if book is not None else _flow_node(flow))
    return OK


# -- history, summary, purge ---------------------------------------------------------

@command
def _history_command(subparsers: Any) -> None:
    parser = add_parser(subparsers, "history", help="the history of a flow or record",
                        description="Every write of a flow detail or atom detail, newest "
                                    "first: old and new state, revision, time and writer "
                                    "(--json adds uuids and intentions).  Without --flow or "
                                    "--uuid: everything.")
    add_uri(parser)
    parser.add_argument("--flow", metavar="FLOW_UUID",
                        help="a flow detail and its atom details")
    parser.add_argument("--uuid", metavar="UUID", help="one flow detail or atom detail")
    parser.add_argument("--since", type=_when, metavar="TIME",
                        help="only entries at or after TIME (ISO 8601, or an age such as 1h)")
    parser.add_argument("--limit", type=_count, default=50,
                        help="at most this many, the newest (default: %(default)s; 0: no "
                             "limit)")
    parser.add_argument("--oldest-first", action="store_true",
                        help="print the entries shown in the order they happened")
    parser.set_defaults(handler=_history)


def _history(args: argparse.Namespace, out: Output) -> int:
    with connect(args.uri) as conn:
        if not conn.backend.supports_history:
            raise PersistenceError(f"{type(conn.backend).__name__} keeps no history "
                                   f"(its supports_history flag is False)")
        every = conn.get_history(uuid=args.uuid, flow_uuid=args.flow, since=args.since)
    total, limit = len(every), args.limit or None
    entries = every[::-1][:limit]          # the backend gives them oldest first
    if args.oldest_first:
        entries.reverse()
    if args.json:
        out.json({"entries": [e.to_dict() for e in entries], "total": total, "limit": limit,
                  "order": "oldest first" if args.oldest_first else "newest first"})
        return OK
    order = "oldest first" if args.oldest_first else "newest first"
    shown = f"{len(entries)} of {total}" if len(entries) < total else str(total)
    out.table(f"History ({shown} entr{'y' if total == 1 else 'ies'}, {order})",
              ["time", "kind", "name", "state", "rev", "owner", "event"],
              [(_time_us(e.at), e.kind, escape(e.name),
                f"{_state(e.old_state)} → {_state(e.new_state)}",
                e.revision if e.revision is not None else "-", escape(e.owner or "-"),
                e.event) for e in entries])
    if len(entries) < total:
        out.line(f"more: {total - len(entries)} older entr"
                 f"{'y' if total - len(entries) == 1 else 'ies'} (--limit 0 shows all, "
                 f"--since narrows)")
    return OK


def _time_us(value: datetime.datetime) -> str:
    return value.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%fZ")


@command
def _summary_command(subparsers: Any) -> None:
    parser = add_parser(subparsers, "summary", help="atom counts by state of a flow",
                        description="Where a flow detail stands: its state, its atom details "
                                    "counted by state, how many hold a failure, and when it "
                                    "last changed (atom results are not read).")
    add_uri(parser)
    parser.add_argument("flow", metavar="FLOW_UUID")
    parser.set_defaults(handler=_summary)


def _summary(args: argparse.Namespace, out: Output) -> int:
    with connect(args.uri) as conn:
        summary = conn.summary(args.flow)
    if args.json:
        out.json(summary.to_dict())
        return OK
    out.table(f"Flow {escape(summary.name)} {_state(summary.state)}: {summary.atoms} "
              f"atom(s)", ["state", "atoms"],
              [(_state(state), count) for state, count in sorted(summary.by_state.items())])
    out.line(f"failures: {summary.failures}; last change: "
             f"{_time_us(summary.last_change) if summary.last_change else 'unknown'}")
    return OK


@command
def _purge_command(subparsers: Any) -> None:
    parser = add_parser(subparsers, "purge", help="delete old finished logbooks",
                        description="Delete whole logbooks (flows, atoms, history, snapshots) "
                                    "last changed before TIME whose flow details are all "
                                    "finished, a batch of logbooks per transaction, so live "
                                    "writers wait for one batch at most.")
    add_uri(parser)
    parser.add_argument("--finished-before", type=_when, required=True, metavar="TIME",
                        help="cutoff: ISO 8601, or an age such as 30d")
    parser.add_argument("--state", action="append", choices=sorted(states.FLOW_STATES),
                        help="flow states that count as finished (repeatable; default: "
                             "SUCCESS, REVERTED, FAILURE)")
    parser.add_argument("--batch-size", type=_count, default=100,
                        help="logbooks per transaction (default: %(default)s)")
    parser.add_argument("--dry-run", action="store_true",
                        help="list what would be deleted, delete nothing")
    parser.add_argument("--yes", action="store_true",
                        help="do not ask for confirmation (asked only on a terminal)")
    parser.set_defaults(handler=_purge)


def _purge(args: argparse.Namespace, out: Output) -> int:
    if args.batch_size < 1:
        raise PersistenceError("--batch-size must be at least 1")
    ask = not (args.yes or args.dry_run or args.json) and _isatty(sys.stdin)
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


def _isatty(stream: Any) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)())


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

@command
def _upgrade_command(subparsers: Any) -> None:
    parser = add_parser(subparsers, "upgrade", help="bring a backend's schema up to date",
                        description="Create or migrate the backend's schema or layout.  "
                                    "With --sql (SQL backends), print the SQL instead of "
                                    "running it (Alembic offline mode).")
    add_uri(parser)
    parser.add_argument("--sql", action="store_true", help="print the SQL, change nothing")
    parser.add_argument("--from", dest="start", metavar="REVISION",
                        help="with --sql: the migration the database is at ('base' for an "
                             "empty one); default: ask the database")
    parser.set_defaults(handler=_upgrade)


def _upgrade(args: argparse.Namespace, out: Output) -> int:
    uri = _uri(args.uri)
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

@command
def _validate_command(subparsers: Any) -> None:
    parser = add_parser(subparsers, "validate", help="check a backend and every record in it",
                        description="Check the backend's schema or layout, then load every "
                                    "logbook with its flows and atoms and report those that "
                                    "cannot be read.  Exit code 1 if anything is wrong.")
    add_uri(parser)
    parser.add_argument("--schema-only", action="store_true",
                        help="check the schema or layout only, not the records")
    parser.set_defaults(handler=_validate)


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


# -- export, import, migrate ------------------------------------------------------

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


def _existing(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument("--existing", choices=migrate.EXISTING, default=default,
                        help="a logbook already in the destination: resume = skip it if "
                             "identical, replace it if not; skip; replace; fail = stop "
                             "before writing anything (default: %(default)s)")


@command
def _export_command(subparsers: Any) -> None:
    parser = add_parser(subparsers, "export", help="write logbooks to an archive file",
                        description="Write every logbook (or the ones named) to one "
                                    "self-describing archive: a zip with the records as "
                                    "JSON lines and a manifest with counts and sha256.")
    add_uri(parser)
    parser.add_argument("file", metavar="FILE", help="archive to write (replaced if present)")
    parser.add_argument("--logbook", action="append", metavar="UUID",
                        help="export this logbook only (repeatable)")
    parser.set_defaults(handler=_export)


def _export(args: argparse.Namespace, out: Output) -> int:
    uri = _uri(args.uri)
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


@command
def _import_command(subparsers: Any) -> None:
    parser = add_parser(subparsers, "import", help="load an archive into a backend",
                        description="Verify an archive completely (checksums, counts, every "
                                    "record), then write its logbooks into the backend.  A "
                                    "corrupt or truncated archive is refused and nothing is "
                                    "written.")
    add_uri(parser)
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
    parser.set_defaults(handler=_import)


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
    backend = loading.fetch(_uri(args.uri))
    try:
        exists = presence.store_exists(backend)
    finally:
        backend.close()
    if exists is False:
        yield None
        return
    with connect(args.uri) as conn:
        yield conn


@command
def _migrate_command(subparsers: Any) -> None:
    parser = add_parser(subparsers, "migrate", help="copy logbooks from one backend to another",
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
    parser.add_argument("--logbook", action="append", metavar="UUID",
                        help="copy this logbook only (repeatable)")
    _existing(parser, "resume")
    parser.add_argument("--no-verify", action="store_true",
                        help="do not read the destination back at the end")
    parser.set_defaults(handler=_migrate)


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


# -- demo -------------------------------------------------------------------------

@command
def _demo_command(subparsers: Any) -> None:
    from .. import demo

    parser = add_parser(
        subparsers, "demo", help="run a flow, SIGKILL it half-way, resume it in a fresh process",
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


# -- main -------------------------------------------------------------------------

def _version() -> str:
    try:
        version = importlib.metadata.version("persistence")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree
        version = "unknown"
    return f"persistence {version} (Python {sys.version.split()[0]})"


def build_parser() -> argparse.ArgumentParser:
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
    for register in COMMANDS:
        register(subparsers)
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
