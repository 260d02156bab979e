"""TaskFlow's model objects ⇄ ours, field by field, both ways.

Values (results, revert results, retry data, meta values) pass by reference,
as TaskFlow's own merges pass them; our backends encode them when they write.
Failures are rebuilt: TaskFlow keeps a cause chain as a flattened ``causes``
tuple (nearest first, each cause holding the rest of the chain), we keep a
linked ``cause``.  Datetimes are naive UTC on TaskFlow's side and aware UTC
on ours.

The ``bind`` callback of the ``*_to_taskflow`` functions is called with each
TaskFlow object made and the record it was made from (see :mod:`.lineage`).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from taskflow.persistence import models as tf_models
from taskflow.types import failure as tf_failure

from ...models import records as models
from ...models.failure import Failure

__all__ = [
    "failure_from_taskflow", "failure_to_taskflow",
    "atom_from_taskflow", "flow_from_taskflow", "book_from_taskflow",
    "atom_to_taskflow", "flow_to_taskflow", "book_to_taskflow", "empty_taskflow_atom",
    "copy_atom_fields", "copy_flow_fields", "copy_book_fields", "same_own_fields",
]

Bind = Callable[[Any, Any], None]

_FAILURE_VERSION = 1

# (TaskFlow class, our class) pairs; a retry detail is checked first as TaskFlow
# code may subclass either.
_KINDS = ((tf_models.RetryDetail, models.RetryDetail),
          (tf_models.TaskDetail, models.TaskDetail))


def _aware(value: datetime.datetime | None) -> datetime.datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=datetime.timezone.utc)


def _naive(value: datetime.datetime | None) -> datetime.datetime | None:
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(datetime.timezone.utc).replace(tzinfo=None)


# -- failures -------------------------------------------------------------------
def failure_from_taskflow(failure: tf_failure.Failure) -> Failure:
    """Our Failure for a TaskFlow one: type names, message, traceback, arguments
    and the cause chain (TaskFlow's flattened ``causes``, nearest first)."""
    data = None
    for item in reversed((failure, *failure.causes)):
        data = {"version": _FAILURE_VERSION,
                "exc_type_names": list(item),
                "exception_str": item.exception_str,
                "traceback_str": item.traceback_str or "",
                "exc_args": list(item.exception_args or ()),
                "cause": data}
    return Failure.from_dict(data)


def failure_to_taskflow(failure: Failure) -> tf_failure.Failure:
    """A TaskFlow Failure for ours, its ``causes`` shaped as TaskFlow captures them:
    each failure of the chain holds the whole rest of the chain."""
    chain = []
    item: Failure | None = failure
    while item is not None:
        chain.append(item)
        item = item.cause
    built: list[tf_failure.Failure] = []
    for item in reversed(chain):
        exc_info = getattr(item, "exc_info", None)
        built.insert(0, tf_failure.Failure(
            exc_info=exc_info, exception_str=item.exception_str,
            traceback_str=item.traceback_str, exc_type_names=list(item.exc_type_names),
            exc_args=tuple(getattr(item, "exception_args", ()) or ()),
            causes=tuple(built)))
    return built[0]


def _opt(convert: Callable[[Any], Any], value: Any) -> Any:
    return convert(value) if value is not None else None


def _history(results: Any, convert: Callable[[Any], Any]) -> list:
    """A retry history ``[(data, {atom name: failure})]`` with its failures converted."""
    return [(data, {name: convert(f) for name, f in (failures or {}).items()})
            for data, failures in (results or ())]


def _our_class(detail: Any) -> type[models.AtomDetail]:
    for tf_class, ours in _KINDS:
        if isinstance(detail, tf_class):
            return ours
    raise TypeError(f"not a TaskFlow task or retry detail: {type(detail).__name__}")


def _taskflow_class(record: models.AtomDetail) -> type:
    return tf_models.atom_detail_class(models.atom_detail_type(record))


# -- TaskFlow -> ours --------------------------------------------------------------
def copy_atom_fields(record: models.AtomDetail, detail: Any) -> None:
    """Give ``record`` every field of TaskFlow's ``detail`` except its name and uuid,
    and mark it changed (a value mutated in place must be written too)."""
    is_retry = isinstance(record, models.RetryDetail)
    record.state = detail.state
    record.intention = detail.intention
    record.results = (_history(detail.results, failure_from_taskflow) if is_retry
                      else detail.results)
    record.failure = _opt(failure_from_taskflow, detail.failure)
    record.revert_results = detail.revert_results
    record.revert_failure = _opt(failure_from_taskflow, detail.revert_failure)
    record.meta = dict(detail.meta or {})
    record.version = detail.version
    record.touch()


def copy_flow_fields(record: models.FlowDetail, detail: Any) -> None:
    """Give ``record`` the state and meta of TaskFlow's flow ``detail`` (not its atoms)."""
    record.state = detail.state
    record.meta = dict(detail.meta or {})
    record.touch()


def copy_book_fields(record: models.LogBook, book: Any) -> None:
    """Give ``record`` the meta and timestamps of TaskFlow's ``book`` (not its flows)."""
    record.meta = dict(book.meta or {})
    record.created_at = _aware(book.created_at)
    record.updated_at = _aware(book.updated_at)
    record.touch()


def same_own_fields(detail: Any, record: models.LogBook | models.FlowDetail) -> bool:
    """Whether TaskFlow's logbook or flow ``detail`` holds what ``record`` holds in its
    own fields (meta; a flow's state; a logbook's creation time), children aside."""
    try:
        if dict(detail.meta or {}) != dict(record.meta):
            return False
        if isinstance(record, models.LogBook):
            return _aware(detail.created_at) == record.created_at
        return detail.state == record.state
    except Exception:   # a value whose == fails (arrays...) counts as different
        return False


def atom_from_taskflow(detail: Any) -> models.AtomDetail:
    """A new record (never stored) for TaskFlow's atom ``detail``."""
    record = _our_class(detail)(detail.name, detail.uuid)
    copy_atom_fields(record, detail)
    return record


def flow_from_taskflow(detail: Any) -> models.FlowDetail:
    """A new record (never stored) for TaskFlow's flow ``detail`` and its atoms."""
    record = models.FlowDetail(detail.name, detail.uuid)
    copy_flow_fields(record, detail)
    for atom in detail:
        record.add(atom_from_taskflow(atom))
    return record


def book_from_taskflow(book: Any) -> models.LogBook:
    """A new record (never stored) for TaskFlow's ``book``, its flows and atoms."""
    record = models.LogBook(book.name, uuid=book.uuid)
    copy_book_fields(record, book)
    for flow in book:
        record.add(flow_from_taskflow(flow))
    return record


# -- ours -> TaskFlow --------------------------------------------------------------
def empty_taskflow_atom(record: models.AtomDetail) -> Any:
    """A TaskFlow atom detail of ``record``'s kind, name and uuid, with no data."""
    return _taskflow_class(record)(record.name, record.uuid)


def atom_to_taskflow(record: models.AtomDetail, bind: Bind | None = None) -> Any:
    """TaskFlow's atom detail for ``record``."""
    detail = empty_taskflow_atom(record)
    detail.state = record.state
    detail.intention = record.intention
    detail.results = (_history(record.results, failure_to_taskflow)
                      if isinstance(record, models.RetryDetail) else record.results)
    detail.failure = _opt(failure_to_taskflow, record.failure)
    detail.revert_results = record.revert_results
    detail.revert_failure = _opt(failure_to_taskflow, record.revert_failure)
    detail.meta = dict(record.meta)
    detail.version = record.version
    if bind is not None:
        bind(detail, record)
    return detail


def flow_to_taskflow(record: models.FlowDetail, bind: Bind | None = None) -> Any:
    """TaskFlow's flow detail for ``record``, with its atoms (if loaded)."""
    detail = tf_models.FlowDetail(record.name, record.uuid)
    detail.state = record.state
    detail.meta = dict(record.meta)
    for atom in record:
        detail.add(atom_to_taskflow(atom, bind))
    if bind is not None:
        bind(detail, record)
    return detail


def book_to_taskflow(record: models.LogBook, bind: Bind | None = None) -> Any:
    """TaskFlow's logbook for ``record``, with its flows (if loaded)."""
    book = tf_models.LogBook(record.name, uuid=record.uuid)
    book.meta = dict(record.meta)
    for flow in record:
        book.add(flow_to_taskflow(flow, bind))
    # After the flows: TaskFlow's add() stamps updated_at with the current time.
    book.created_at = _naive(record.created_at)
    book.updated_at = _naive(record.updated_at)
    if bind is not None:
        bind(book, record)
    return book
