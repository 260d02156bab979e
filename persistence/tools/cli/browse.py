"""Reading a store: ``ls``, ``show``, ``history`` and ``summary``."""

from __future__ import annotations

import argparse
import datetime
import fnmatch
import re
from typing import Any

from ...backends.base import Connection
from ...exceptions import NotFound, PersistenceError
from ...models import encoding as serialization
from ...models import records as models
from .common import OK, add_limit, add_parser, add_time, connect, count
from .console import Output, escape
from .render import book_node, flow_json, flow_node, format_time, format_time_us, state_markup

__all__ = ["list_logbooks", "ls_command", "show_command", "history_command",
           "summary_command"]


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


def ls_command(subparsers: Any) -> None:
    """Add ``ls``."""
    parser = add_parser(subparsers, "ls", _ls, uri=True, help="list logbooks, newest first",
                        description="List logbooks, newest first (by update time).")
    parser.add_argument("--name", help="only logbooks with this name; a glob such as "
                                       "'nightly-*' matches several")
    add_time(parser, "--updated-since", "only logbooks updated at or after TIME (ISO 8601, "
                                        "or an age such as 12h or 7d)")
    add_time(parser, "--updated-before", "only logbooks updated before TIME")
    add_limit(parser)
    parser.add_argument("--offset", type=count, default=0, help="skip this many first")


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
              [(b.uuid, b.name, format_time(b.created_at), format_time(b.updated_at))
               for b in books])
    if total is not None and args.offset + len(books) < total:
        out.line(f"more: --offset {args.offset + len(books)}")
    return OK


# -- show -------------------------------------------------------------------------

def show_command(subparsers: Any) -> None:
    """Add ``show``."""
    parser = add_parser(subparsers, "show", _show, uri=True,
                        help="a logbook (or flow detail) as a tree",
                        description="Show a logbook → its flow details → their atom details "
                                    "with states, intentions and short results.  A flow "
                                    "detail's uuid shows just that flow.")
    parser.add_argument("uuid", metavar="UUID", help="logbook or flow detail uuid")


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
                      "flow_details": [flow_json(fd, book.uuid) for fd in book]})
        else:
            out.json({"flow_detail": flow_json(flow, None)})
        return OK
    out.tree(book_node(book) if book is not None else flow_node(flow))
    return OK


# -- history, summary -------------------------------------------------------------

def history_command(subparsers: Any) -> None:
    """Add ``history``."""
    parser = add_parser(subparsers, "history", _history, uri=True,
                        help="the history of a flow or record",
                        description="Every write of a flow detail or atom detail, newest "
                                    "first: old and new state, revision, time and writer "
                                    "(--json adds uuids and intentions).  Without --flow or "
                                    "--uuid: everything.")
    parser.add_argument("--flow", metavar="FLOW_UUID",
                        help="a flow detail and its atom details")
    parser.add_argument("--uuid", metavar="UUID", help="one flow detail or atom detail")
    add_time(parser, "--since", "only entries at or after TIME (ISO 8601, or an age such as 1h)")
    add_limit(parser, "at most this many, the newest")
    parser.add_argument("--oldest-first", action="store_true",
                        help="print the entries shown in the order they happened")


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
              [(format_time_us(e.at), e.kind, escape(e.name),
                f"{state_markup(e.old_state)} → {state_markup(e.new_state)}",
                e.revision if e.revision is not None else "-", escape(e.owner or "-"),
                e.event) for e in entries])
    if len(entries) < total:
        out.line(f"more: {total - len(entries)} older entr"
                 f"{'y' if total - len(entries) == 1 else 'ies'} (--limit 0 shows all, "
                 f"--since narrows)")
    return OK


def summary_command(subparsers: Any) -> None:
    """Add ``summary``."""
    parser = add_parser(subparsers, "summary", _summary, uri=True,
                        help="atom counts by state of a flow",
                        description="Where a flow detail stands: its state, its atom details "
                                    "counted by state, how many hold a failure, and when it "
                                    "last changed (atom results are not read).")
    parser.add_argument("flow", metavar="FLOW_UUID")


def _summary(args: argparse.Namespace, out: Output) -> int:
    with connect(args.uri) as conn:
        summary = conn.summary(args.flow)
    if args.json:
        out.json(summary.to_dict())
        return OK
    out.table(f"Flow {escape(summary.name)} {state_markup(summary.state)}: {summary.atoms} "
              f"atom(s)", ["state", "atoms"],
              [(state_markup(state), n) for state, n in sorted(summary.by_state.items())])
    out.line(f"failures: {summary.failures}; last change: "
             f"{format_time_us(summary.last_change) if summary.last_change else 'unknown'}")
    return OK
