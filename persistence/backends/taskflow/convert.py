"""TaskFlow's stored dict forms → this library's records, checked field by field.

TaskFlow 6.5 stores a logbook as ``{name, uuid, meta, created_at, updated_at}``,
a flow detail as ``{name, uuid, state, meta}`` and an atom detail as
``{name, uuid, state, intention, version, meta, results, failure,
revert_results, revert_failure}`` plus its type (``TASK_DETAIL`` or
``RETRY_DETAIL``).  A failure is ``{version: 1, exc_type_names, exception_str,
traceback_str, exc_args, causes}``, where ``causes`` lists the cause chain and
its first entry is the direct cause, itself carrying the rest of the chain.  A
retry's results are its history: ``[[value, {atom name: failure}], ...]``.

Anything else (an unknown state or atom type, a failure of another dict
version, a field of the wrong type) raises
:class:`~persistence.backends.taskflow.errors.TaskFlowRecordError` naming the
record and where it is stored, so nothing of a malformed logbook is copied.

The ``created_at``/``updated_at`` columns that TaskFlow's SQL schema keeps for
flow and atom rows do not carry over: this library's records have no place
for them (TaskFlow's own models do not read them either).
"""

from __future__ import annotations

import datetime
import json
import zoneinfo
from collections.abc import Mapping
from typing import Any, NoReturn

from ...models import records as models
from ...models import states
from ...models.failure import Failure
from .errors import TaskFlowRecordError

__all__ = ["Where", "decode_json", "logbook", "flow", "atom", "failure", "when"]

TASK_DETAIL, RETRY_DETAIL = "TASK_DETAIL", "RETRY_DETAIL"
ATOM_TYPES = (TASK_DETAIL, RETRY_DETAIL)
#: The only failure dict version TaskFlow writes (and reads).
FAILURE_VERSION = 1


class Where:
    """A record being read: what it is and where it is stored, for error messages."""

    __slots__ = ("record", "location")

    def __init__(self, record: str, location: str) -> None:
        self.record = record
        self.location = location

    def fail(self, problem: str) -> NoReturn:
        raise TaskFlowRecordError(f"{self.record} at {self.location} cannot be read: "
                                  f"{problem}", record=self.record, location=self.location)

    def named(self, name: Any) -> None:
        """Add the record's name to the description once it is known."""
        if isinstance(name, str):
            self.record = f"{self.record} ({name!r})"


def decode_json(text: Any, where: Where, field: str) -> Any:
    """Decode a JSON document stored as text or bytes (None stays None)."""
    if text is None:
        return None
    try:
        if isinstance(text, (bytes, bytearray, memoryview)):
            text = bytes(text).decode("utf-8")
        return json.loads(text)
    except (UnicodeDecodeError, ValueError, TypeError) as err:
        where.fail(f"{field} is not valid JSON ({err})")


def _mapping(value: Any, where: Where, field: str) -> Mapping:
    if not isinstance(value, Mapping):
        where.fail(f"{field} must be a JSON object, not {type(value).__name__}")
    return value


def _text(data: Mapping, key: str, where: Where) -> str:
    value = data.get(key)
    if not isinstance(value, str) or (key == "uuid" and not value):
        where.fail(f"{key!r} must be a{' non-empty' if key == 'uuid' else ''} string, "
                   f"not {value!r:.80}")
    return value


def _meta(data: Mapping, where: Where) -> dict:
    meta = data.get("meta")
    return {} if meta is None else dict(_mapping(meta, where, "meta"))


def _state(data: Mapping, known: frozenset, kind: str, where: Where) -> str | None:
    value = data.get("state")
    if value is not None and value not in known:
        where.fail(f"unknown {kind} state {value!r} (TaskFlow's are "
                   f"{', '.join(sorted(known))})")
    return value


def when(value: Any, where: Where, field: str) -> datetime.datetime | None:
    """A stored time as an aware UTC datetime: a naive one is UTC, as TaskFlow writes it;
    path-based stores marshal it as ``{year, month, ..., microsecond[, tzname]}``."""
    if value is None or value == "":
        return None
    try:
        if isinstance(value, Mapping):
            tzname = value.get("tzname")
            moment = datetime.datetime(
                int(value["year"]), int(value["month"]), int(value["day"]),
                int(value["hour"]), int(value["minute"]), min(int(value["second"]), 59),
                int(value["microsecond"]))
            if tzname:
                moment = moment.replace(tzinfo=zoneinfo.ZoneInfo(
                    "UTC" if tzname == "UTC+00:00" else tzname))
        elif isinstance(value, str):
            moment = datetime.datetime.fromisoformat(value)
        elif isinstance(value, datetime.datetime):
            moment = value
        else:
            raise TypeError(f"a {type(value).__name__}")
    except (KeyError, TypeError, ValueError, zoneinfo.ZoneInfoNotFoundError) as err:
        where.fail(f"{field} is not a time: {value!r:.120} ({err})")
    if moment.tzinfo is None:
        return moment.replace(tzinfo=datetime.timezone.utc)
    return moment.astimezone(datetime.timezone.utc)


def failure(data: Any, where: Where, field: str) -> Failure:
    """A TaskFlow failure dict (with its causes) as a :class:`~persistence.Failure`."""
    data = _mapping(data, where, field)
    if data.get("version") != FAILURE_VERSION:
        where.fail(f"{field} has failure dict version {data.get('version')!r}; TaskFlow "
                   f"writes version {FAILURE_VERSION}")
    names = data.get("exc_type_names")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        where.fail(f"{field}: exc_type_names must be a non-empty list of strings, "
                   f"not {names!r:.120}")
    message = data.get("exception_str")
    trace = data.get("traceback_str")
    if not isinstance(message, str) or not isinstance(trace, (str, type(None))):
        where.fail(f"{field}: exception_str and traceback_str must be strings")
    causes = data.get("causes") or []
    if not isinstance(causes, list):
        where.fail(f"{field}: causes must be a list, not {type(causes).__name__}")
    args = data.get("exc_args") or []
    if not isinstance(args, list):
        where.fail(f"{field}: exc_args must be a list, not {type(args).__name__}")
    cause = failure(causes[0], where, f"{field} cause") if causes else None
    return Failure(exc_type_names=names, exception_str=message, traceback_str=trace or "",
                   exc_args=args, cause=cause)


def _optional_failure(data: Any, where: Where, field: str) -> dict | None:
    # TaskFlow treats any empty value as "no failure" (``if failure:``).
    return failure(data, where, field).to_dict() if data else None


def logbook(data: Any, where: Where) -> models.LogBook:
    """A logbook (without its flow details) from TaskFlow's dict form."""
    data = _mapping(data, where, "the logbook")
    uuid, name = _text(data, "uuid", where), _text(data, "name", where)
    where.named(name)
    return models.LogBook.from_dict({
        "uuid": uuid, "name": name, "meta": _meta(data, where),
        "created_at": when(data.get("created_at"), where, "created_at"),
        "updated_at": when(data.get("updated_at"), where, "updated_at")})


def flow(data: Any, where: Where) -> models.FlowDetail:
    """A flow detail (without its atom details) from TaskFlow's dict form."""
    data = _mapping(data, where, "the flow detail")
    uuid, name = _text(data, "uuid", where), _text(data, "name", where)
    where.named(name)
    return models.FlowDetail.from_dict({
        "uuid": uuid, "name": name, "meta": _meta(data, where),
        "state": _state(data, states.FLOW_STATES, "flow", where)})


def _history(results: Any, where: Where) -> list:
    """A retry's history in this library's stored form (failures converted)."""
    if results is None:
        return []
    if not isinstance(results, list):
        where.fail(f"a retry's results must be a list of [value, failures], "
                   f"not {type(results).__name__}")
    history = []
    for i, entry in enumerate(results):
        if not isinstance(entry, (list, tuple)) or len(entry) != 2:
            where.fail(f"retry history entry {i} must be [value, failures], not {entry!r:.120}")
        value, failures = entry
        failures = _mapping(failures if failures is not None else {}, where,
                            f"the failures of retry history entry {i}")
        history.append([value, {str(name): failure(f, where, f"retry history entry {i} "
                                                              f"failure of {name!r}").to_dict()
                                for name, f in failures.items()}])
    return history


def atom(atom_type: Any, data: Any, where: Where) -> models.AtomDetail:
    """A task or retry detail from TaskFlow's dict form and its stored type."""
    if atom_type not in ATOM_TYPES:
        where.fail(f"unknown atom detail type {atom_type!r} (TaskFlow's are "
                   f"{', '.join(ATOM_TYPES)})")
    data = _mapping(data, where, "the atom detail")
    uuid, name = _text(data, "uuid", where), _text(data, "name", where)
    where.named(name)
    intention = data.get("intention")
    if intention is not None and intention not in states.INTENTIONS:
        where.fail(f"unknown intention {intention!r} (TaskFlow's are "
                   f"{', '.join(sorted(states.INTENTIONS))})")
    version = data.get("version")
    if not isinstance(version, (str, int, float, list, type(None))):
        where.fail(f"version must be a string, not {type(version).__name__}")
    results = data.get("results")
    if atom_type == RETRY_DETAIL:
        results = _history(results, where)
    record = {
        "uuid": uuid, "name": name, "meta": _meta(data, where),
        "state": _state(data, states.ATOM_STATES, "atom", where),
        "intention": intention or states.EXECUTE, "version": version,
        "results": results, "failure": _optional_failure(data.get("failure"), where, "failure"),
        "revert_results": data.get("revert_results"),
        "revert_failure": _optional_failure(data.get("revert_failure"), where,
                                            "revert_failure")}
    cls = models.RetryDetail if atom_type == RETRY_DETAIL else models.TaskDetail
    return cls.from_dict(record)
