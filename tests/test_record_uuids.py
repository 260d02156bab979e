"""Every record makes its own uuid when none is given, as LogBook always did."""

from __future__ import annotations

import uuid

import persistence
from persistence.models import FlowDetail, LogBook, RetryDetail, TaskDetail


def test_flow_and_atom_details_make_their_own_distinct_uuids():
    made = [cls("x") for cls in (LogBook, FlowDetail, TaskDetail, RetryDetail)]
    made += [FlowDetail("x"), TaskDetail("x")]
    for record in made:
        assert uuid.UUID(record.uuid).version == 4
    assert len({r.uuid for r in made}) == len(made)
    assert FlowDetail("x", "given").uuid == "given" and TaskDetail("x", uuid="u").uuid == "u"


def test_records_with_made_uuids_round_trip_through_a_backend():
    book, flow, task = LogBook("b"), FlowDetail("f"), TaskDetail("t")
    flow.add(task)
    book.add(flow)
    with persistence.backend("memory://") as be, be.get_connection() as conn:
        conn.save_logbook(book)
        assert conn.get_flow_details(flow.uuid).find(task.uuid).name == "t"
