"""Assertions and helpers shared by the contract suite's parts."""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Iterator
from typing import Any

import pytest

from ..backends.base import Backend, Connection
from ..exceptions import NotFound
from ..models import states
from ..models.failure import Failure
from ..models.records import AtomDetail, FlowDetail, LogBook, RetryDetail, TaskDetail
from .samples import new_uuid


def needs(capability: str) -> Any:
    """Mark a contract test as needing ``Backend.supports_<capability>``; on a
    backend that declares it does not, the test is skipped (and
    ``test_declared_capabilities_are_honest`` checks the methods refuse)."""
    def mark(test: Any) -> Any:
        test.persistence_needs = capability
        return test
    return mark


UTC = datetime.timezone.utc


def now() -> datetime.datetime:
    """The current time, timezone-aware (as stores report it)."""
    return datetime.datetime.now(UTC)


def flow_book(atoms: int = 2, name: str = "book", flow_state: str = states.RUNNING,
              atom_state: str = states.PENDING) -> tuple[LogBook, FlowDetail]:
    """A logbook holding one flow detail of ``atoms`` task details named t0, t1..."""
    book = LogBook(name)
    fd = FlowDetail(f"{name}-flow", new_uuid())
    fd.state = flow_state
    for i in range(atoms):
        ad = TaskDetail(f"t{i}", new_uuid())
        ad.state = atom_state
        fd.add(ad)
    book.add(fd)
    return book, fd


def by_name(fd: FlowDetail) -> dict[str, AtomDetail]:
    """A flow detail's atom details by name."""
    return {ad.name: ad for ad in fd}


ATOM_FIELDS = ("name", "uuid", "state", "intention", "results", "revert_results", "version")


@contextlib.contextmanager
def reopen(backend: Backend) -> Iterator[Connection]:
    """A second, independent connection: what it reads came from the store."""
    conn = backend.get_connection()
    try:
        yield conn
    finally:
        conn.close()


@contextlib.contextmanager
def two_writers(backend: Backend, atom_uuid: str
                ) -> Iterator[tuple[Connection, AtomDetail, Connection, AtomDetail]]:
    """Rival writers: two connections, each with its own copy of one stored atom
    detail (``with two_writers(backend, uuid) as (a, first, b, second)``)."""
    with reopen(backend) as a, reopen(backend) as b:
        yield a, a.get_atom_details(atom_uuid), b, b.get_atom_details(atom_uuid)


def assert_not_stored(conn: Connection, book: LogBook) -> None:
    """Nothing of ``book`` is in the store: not the logbook, none of its flow
    details and none of their atom details."""
    with pytest.raises(NotFound):
        conn.get_logbook(book.uuid)
    for fd in book:
        with pytest.raises(NotFound):
            conn.get_flow_details(fd.uuid)
        for ad in fd:
            with pytest.raises(NotFound):
                conn.get_atom_details(ad.uuid)


def same_value(got: Any, want: Any) -> None:
    """Equal and of the same type all the way down (0 is not False, 1 is not 1.0)."""
    assert type(got) is type(want), f"{got!r} ({type(got).__name__}) != {want!r}"
    if isinstance(want, dict):
        assert sorted(got) == sorted(want)
        for key in want:
            same_value(got[key], want[key])
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want), f"{got!r} != {want!r}"
        for g, w in zip(got, want):
            same_value(g, w)
    else:
        assert got == want


def same_failure(got: Failure | None, want: Failure | None) -> None:
    if want is None:
        assert got is None
        return
    assert isinstance(got, Failure), f"expected a Failure, got {got!r}"
    assert got.exc_type_names == want.exc_type_names
    assert got.exception_str == want.exception_str
    assert got.traceback_str == want.traceback_str
    same_failure(got.cause, want.cause)
    assert got.matches(want)


def same_atom(got: AtomDetail, want: AtomDetail) -> None:
    assert type(got) is type(want)
    for field in ATOM_FIELDS:
        if field == "results" and isinstance(want, RetryDetail):
            same_history(got.results, want.results)
        else:
            same_value(getattr(got, field), getattr(want, field))
    same_failure(got.failure, want.failure)
    same_failure(got.revert_failure, want.revert_failure)
    same_value(dict(got.meta), dict(want.meta))


def same_history(got: list, want: list) -> None:
    """Retry histories: same data and the same failures per attempt."""
    assert isinstance(got, list) and len(got) == len(want)
    for (g_data, g_failures), (w_data, w_failures) in zip(got, want):
        same_value(g_data, w_data)
        assert sorted(g_failures) == sorted(w_failures)
        for name in w_failures:
            same_failure(g_failures[name], w_failures[name])


def same_flow(got: FlowDetail, want: FlowDetail, atoms: bool = True) -> None:
    assert (got.uuid, got.name, got.state) == (want.uuid, want.name, want.state)
    same_value(dict(got.meta), dict(want.meta))
    if atoms:
        assert sorted(ad.uuid for ad in got) == sorted(ad.uuid for ad in want)
        for ad in want:
            same_atom(got.find(ad.uuid), ad)


def same_book(got: LogBook, want: LogBook, flows: bool = True) -> None:
    assert (got.uuid, got.name) == (want.uuid, want.name)
    same_value(dict(got.meta), dict(want.meta))
    assert got.created_at == want.created_at
    assert got.updated_at == want.updated_at
    if flows:
        assert sorted(fd.uuid for fd in got) == sorted(fd.uuid for fd in want)
        for fd in want:
            same_flow(got.find(fd.uuid), fd)
