"""How records look on the terminal: times, coloured states, shortened values, and
the logbook -> flow detail -> atom detail tree (and its JSON) that ``show`` prints."""

from __future__ import annotations

import datetime
import json
from typing import Any

from ...backends import shared as lifecycle
from ...models import encoding as serialization
from ...models import records as models
from ...models import states
from .console import Node, escape

__all__ = ["format_time", "format_time_us", "state_markup", "book_node", "flow_node",
           "flow_json"]


def format_time(value: datetime.datetime | None) -> str:
    """A time to the second, in UTC; ``-`` for none."""
    if value is None:
        return "-"
    return value.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def format_time_us(value: datetime.datetime) -> str:
    """A time to the microsecond, in UTC (history entries follow each other closely)."""
    return value.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%fZ")


_STATE_STYLE = {states.SUCCESS: "green", states.FAILURE: "bold red",
                states.REVERT_FAILURE: "bold red", states.RUNNING: "yellow",
                states.REVERTING: "yellow", states.REVERTED: "magenta",
                states.RETRYING: "yellow", states.PENDING: "dim"}


def state_markup(value: str | None) -> str:
    """A state in its colour (rich markup); ``-`` for none."""
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
    label = (f"[bold]{escape(ad.name)}[/] ({kind}) {state_markup(ad.state)} "
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


def flow_node(fd: models.FlowDetail) -> Node:
    """A flow detail and its atom details, as a tree."""
    atoms = sum(1 for ad in fd if ad.name != lifecycle.INJECTOR)
    label = (f"flow [bold]{escape(fd.name)}[/] {state_markup(fd.state)}  [dim]{fd.uuid}[/]  "
             f"{atoms} atom(s)")
    return (label, [_atom_node(ad) for ad in fd])


def book_node(book: models.LogBook) -> Node:
    """A logbook, its flow details and their atom details, as a tree."""
    label = (f"logbook [bold]{escape(book.name)}[/]  [dim]{book.uuid}[/]  created "
             f"{format_time(book.created_at)}, updated {format_time(book.updated_at)}")
    return (label, [flow_node(fd) for fd in book])


def flow_json(fd: models.FlowDetail, parent: str | None) -> dict[str, Any]:
    """A flow detail and its atom details as stored records, the injector marked."""
    record = serialization.flow_record(fd, parent, fd.revision)
    record["atom_details"] = [serialization.atom_record(ad, fd.uuid, ad.revision) for ad in fd]
    for atom in record["atom_details"]:   # the injector is the engine's, not the flow's
        atom["engine_internal"] = atom.get("name") == lifecycle.INJECTOR
    return record
