"""How the ``persistence`` command reports a failure: one line, or one JSON object.

Drivers log on their own (kazoo prints a "Connection dropped" line per retry);
on the command line only our one error line should reach the user, so driver
loggers are silenced unless ``--debug`` asks for everything.  Exit codes are
part of the interface and documented in ``doc/cli.rst``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import re
import sys
import traceback
from collections.abc import Iterable, Iterator
from typing import Any, NoReturn, TextIO

from ...backends.url import make_url, mask_password
from ...exceptions import PersistenceError

__all__ = ["OK", "PROBLEMS", "ERROR", "INTERRUPTED", "EXIT_CODES", "describe",
           "quiet_loggers", "report", "group_problems", "Parser", "usage_errors",
           "secrets_of"]

OK, PROBLEMS, ERROR, INTERRUPTED = 0, 1, 2, 130
#: Every exit code of the command and what it means.
EXIT_CODES = {OK: "done", PROBLEMS: "a check found problems (validate, demo)",
              ERROR: "an error, or bad usage", INTERRUPTED: "interrupted (Ctrl-C)"}

# SQLAlchemy appends "(Background on this error at: https://sqlalche.me/...)".
_BACKGROUND = re.compile(r"\s*\(Background on this error at: [^)]*\)")
# ... and may prefix the driver's text with "(psycopg.OperationalError) ".
_DRIVER_PREFIX = re.compile(r"^\((?:[\w.]+)\)\s*")
# What to do after an interrupted copy: finished logbooks are whole, so a re-run resumes.
_RESUME = {"migrate": "; the logbooks copied so far are complete: re-run the same command "
                      "to finish",
           "import": "; the logbooks imported so far are complete: re-run with --existing "
                     "resume to finish"}


class Parser(argparse.ArgumentParser):
    """An argument parser that remembers its last usage error (for ``--json``)."""

    last_error: tuple[str, str] | None = None

    def error(self, message: str) -> NoReturn:
        Parser.last_error = (self.prog, message)
        super().error(message)


@contextlib.contextmanager
def usage_errors(argv: list[str]) -> Iterator[None]:
    """Bad usage exits 2 as argparse does; with ``--json`` also as a JSON error object."""
    Parser.last_error = None
    try:
        yield
    except SystemExit as exit_:
        if exit_.code == ERROR and "--json" in argv and Parser.last_error is not None:
            prog, message = Parser.last_error
            command = prog.split()[1] if len(prog.split()) > 1 else None
            print(json.dumps({"error": {"command": command, "type": "UsageError",
                                        "message": message, "exit_code": ERROR}},
                             indent=2), flush=True)
        raise


class _MaskingFormatter(logging.Formatter):
    """Every line ``--debug`` prints (message and traceback) with passwords masked."""

    def __init__(self, fmt: str, secrets: tuple[str, ...]) -> None:
        super().__init__(fmt)
        self.secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        return mask_password(super().format(record), self.secrets)


def secrets_of(values: Iterable[Any]) -> tuple[str, ...]:
    """The passwords of the URIs among ``values`` (the command's arguments)."""
    found = []
    for value in values:
        if isinstance(value, str) and "://" in value:
            with contextlib.suppress(Exception):
                password = make_url(value).password
                if password:
                    found.append(password)
    return tuple(found)


def quiet_loggers(debug: bool, secrets: tuple[str, ...] = ()) -> None:
    """Only our error line on stderr: no driver log lines unless ``--debug``.

    With ``--debug`` every logger prints, through a formatter that masks the
    passwords of URIs and the ``secrets`` given on the command line.
    """
    root = logging.getLogger()
    if debug:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_MaskingFormatter("%(levelname)s %(name)s: %(message)s", secrets))
        logging.basicConfig(level=logging.DEBUG, handlers=[handler])
    elif not root.handlers:
        root.addHandler(logging.NullHandler())   # no "last resort" printing either


def describe(err: BaseException) -> str:
    """One line saying what went wrong, passwords masked, driver noise removed."""
    if not isinstance(err, PersistenceError):
        orig = getattr(err, "orig", None)   # a SQLAlchemy wrapper: the driver's own error
        if isinstance(orig, BaseException):
            err = orig
    text = _BACKGROUND.sub("", str(err)) or type(err).__name__
    text = _DRIVER_PREFIX.sub("", " ".join(text.split()))
    for note in getattr(err, "__notes__", None) or ():   # e.g. "the destination was put back"
        text += f"; {' '.join(str(note).split())}"
    if not isinstance(err, PersistenceError):
        text = f"{type(err).__name__}: {text}"
    return mask_password(text)


def report(command: str, err: BaseException, *, debug: bool, as_json: bool,
           stdout: TextIO, stderr: TextIO, secrets: tuple[str, ...] = ()) -> int:
    """Print ``err`` as the command's error (also as JSON on stdout with ``--json``)."""
    if debug:
        print(mask_password("".join(traceback.format_exception(err)).rstrip(), secrets),
              file=stderr)
    message = mask_password(describe(err), secrets)
    if isinstance(err, KeyboardInterrupt):
        code = INTERRUPTED
        message = "interrupted" + _RESUME.get(command, "")
    else:
        code = ERROR
    hint = "" if debug or isinstance(err, (PersistenceError, KeyboardInterrupt)) else \
        " (--debug shows the traceback)"
    print(f"persistence {command}: error: {message}{hint}", file=stderr, flush=True)
    if as_json:
        error: dict[str, Any] = {"command": command, "type": type(err).__name__,
                                 "message": message, "exit_code": code}
        print(json.dumps({"error": error}, indent=2, ensure_ascii=False), file=stdout,
              flush=True)
    return code


# Parts of a problem line that differ between otherwise identical problems.
_VARYING = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}"
                      r"|\b\d+\b", re.IGNORECASE)


def group_problems(problems: list[str], examples: int = 3) -> list[dict[str, Any]]:
    """Problems that differ only in uuids and numbers, as one group with a count.

    A damaged store can hold thousands of records broken the same way; a
    reader needs the kinds of damage and how many of each, most frequent first.
    """
    groups: dict[str, dict[str, Any]] = {}
    for problem in problems:
        key = _VARYING.sub("…", problem)
        group = groups.setdefault(key, {"problem": key, "count": 0, "examples": []})
        group["count"] += 1
        if len(group["examples"]) < examples:
            group["examples"].append(problem)
    return sorted(groups.values(), key=lambda g: -g["count"])
