"""What every subcommand shares: its parser (with ``--json``, ``--debug`` and the
options several take: a backend URI, times, ``--limit``), the connection made
from the URI, and the argument types for times and counts."""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import re
from collections.abc import Callable, Iterator
from typing import Any

from ...backends import registry as loading
from ...backends.base import Connection
from ...backends.url import mask_password
from ...exceptions import ConfigurationError, PersistenceError
from .. import presence
from . import errors as cli_errors
from .console import Output

__all__ = ["ENV_URI", "OK", "PROBLEMS", "ERROR", "Handler", "add_parser", "add_uri",
           "add_time", "add_limit", "backend_uri", "connect", "when", "count"]

ENV_URI = "PERSISTENCE_URI"
OK, PROBLEMS, ERROR = cli_errors.OK, cli_errors.PROBLEMS, cli_errors.ERROR

#: What a subcommand runs: its parsed arguments and where to print -> an exit code.
Handler = Callable[[argparse.Namespace, Output], int]


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true",
                        help="print machine-readable JSON on stdout")
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the traceback of an error")
    return common


def add_parser(subparsers: Any, name: str, handler: Handler, *, uri: bool = False,
               **kwargs: Any) -> argparse.ArgumentParser:
    """The parser of subcommand ``name``, which runs ``handler``.

    It has the options every subcommand has (``--json``, ``--debug``) and, with
    ``uri=True``, a backend URI as its first argument (:func:`add_uri`);
    ``kwargs`` (``help``, ``description``) go to argparse.
    """
    parser = subparsers.add_parser(name, parents=[_common()], **kwargs)
    if uri:
        add_uri(parser)
    parser.set_defaults(handler=handler)
    return parser


def add_uri(parser: argparse.ArgumentParser, dest: str = "uri",
            help: str = "backend URI") -> None:
    """An optional positional backend URI; missing, ``$PERSISTENCE_URI`` is used."""
    parser.add_argument(dest, nargs="?", metavar="URI",
                        help=f"{help} (default: ${ENV_URI})")


def add_time(parser: argparse.ArgumentParser, flag: str, help: str, **kwargs: Any) -> None:
    """An option taking a time: ISO 8601 or an age such as ``12h`` (see :func:`when`)."""
    parser.add_argument(flag, type=when, metavar="TIME", help=help, **kwargs)


def add_limit(parser: argparse.ArgumentParser, help: str = "at most this many") -> None:
    """``--limit``: at most this many rows, 50 unless told, 0 for all."""
    parser.add_argument("--limit", type=count, default=50,
                        help=f"{help} (default: %(default)s; 0: no limit)")


def backend_uri(value: str | None) -> str:
    """``value``, or $PERSISTENCE_URI when it is not given; an error when neither is."""
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
    full = backend_uri(uri)
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


_AGO = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def when(text: str) -> datetime.datetime:
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


def count(text: str) -> int:
    """A whole number >= 0 (an argument type)."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, not {text!r}")
    return int(text)
