"""Contract part 1: every field of every model survives a save and a load."""

from __future__ import annotations

import datetime

import pytest

from ..models import states
from ..models.failure import Failure, WrappedFailure
from ..models.records import FlowDetail, LogBook, RetryDetail, TaskDetail
from ._support import reopen, same_atom, same_book, same_failure, same_flow, same_value
from .samples import FALSY_RESULTS, UNICODE_RESULT, SampleError, fixed_time, make_failure, new_uuid


def _book_with(*atoms, flow_state=states.RUNNING):
    book = LogBook("holder")
    fd = FlowDetail("flow", new_uuid())
    fd.state = flow_state
    for ad in atoms:
        fd.add(ad)
    book.add(fd)
    return book, fd


def _saved_then_loaded(backend, conn, ad) -> list:
    """Save ``ad`` (in a logbook of its own) through ``conn``, then load it back
    through another connection each way an atom detail can be loaded."""
    book, fd = _book_with(ad)
    conn.save_logbook(book)
    with reopen(backend) as other:
        return [other.get_atom_details(ad.uuid),
                other.get_flow_details(fd.uuid).find(ad.uuid),
                other.get_logbook(book.uuid).find(fd.uuid).find(ad.uuid),
                next(iter(other.get_atoms_for_flow(fd.uuid)))]


def _full_task() -> TaskDetail:
    ad = TaskDetail("täsk ✓", new_uuid())
    ad.state = states.REVERT_FAILURE
    ad.intention = states.REVERT
    ad.results = UNICODE_RESULT
    ad.failure = make_failure("execute failed", "bad key")
    ad.revert_results = ["reverted", {"partly": True}]
    ad.revert_failure = make_failure("revert failed ✗", "other key")
    ad.version = (1, 2)
    ad.meta.update({"progress": 0.5, "progress_details": {"at": 0.5, "details": None},
                    "ünï": ["✓"]})
    return ad


def _full_retry(attempts: int = 60) -> RetryDetail:
    ad = RetryDetail("retry ✓", new_uuid())
    for i in range(attempts):
        ad.put(states.SUCCESS, {"attempt": i, "ünï": "✓" * (i % 3)})
        ad.results[-1][1].update({f"task-{i}": make_failure(f"attempt {i} failed", f"k{i}"),
                                  "other": make_failure("other", "x")})
    ad.state = states.RETRYING
    ad.intention = states.RETRY
    ad.failure = make_failure("retry controller failed")
    ad.revert_results = {"undone": [1, 2]}
    ad.revert_failure = make_failure("retry revert failed")
    ad.version = "2.0"
    ad.meta["attempts"] = attempts
    return ad


class RoundTripContract:
    """Every model field comes back from the store equal, with the same types."""

    def test_logbook_fields_round_trip(self, backend, conn):
        book = LogBook("bøøk ✓ 日本")
        book.meta.update({"nested": {"a": [1, {"b": None}]}, "ünï": "✓", "n": 2 ** 40})
        book.created_at = fixed_time()
        conn.save_logbook(book)
        assert isinstance(book.updated_at, datetime.datetime)
        with reopen(backend) as other:
            got = other.get_logbook(book.uuid)
            same_book(got, book)
            assert got.created_at == fixed_time()
            (listed,) = list(other.get_logbooks())
            same_book(listed, book)

    def test_flow_fields_round_trip(self, backend, conn):
        book, fd = _book_with(flow_state=states.SUSPENDED)
        fd.meta.update({"deep": [[{"x": "ÿ"}]], "empty": {}})
        conn.save_logbook(book)
        with reopen(backend) as other:
            same_flow(other.get_logbook(book.uuid).find(fd.uuid), fd)
            same_flow(other.get_flow_details(fd.uuid), fd)
            (listed,) = list(other.get_flows_for_book(book.uuid))
            same_flow(listed, fd)

    def test_task_detail_fields_round_trip(self, backend, conn):
        ad = _full_task()
        for got in _saved_then_loaded(backend, conn, ad):
            assert isinstance(got, TaskDetail)
            same_atom(got, ad)
            assert got.version == (1, 2)
            assert got.last_results == UNICODE_RESULT

    def test_retry_detail_with_long_history_round_trips(self, backend, conn):
        ad = _full_retry()
        for got in _saved_then_loaded(backend, conn, ad):
            assert isinstance(got, RetryDetail)
            same_atom(got, ad)
            assert len(got.results) == 60
            assert got.last_results == {"attempt": 59, "ünï": "✓" * (59 % 3)}
            assert sorted(got.last_failures) == ["other", "task-59"]
            assert got.last_failures["task-59"].exception_str == "attempt 59 failed"

    def test_empty_records_round_trip(self, backend, conn):
        """Defaults (None state, no results, empty meta, empty history) come back as such."""
        task, retry = TaskDetail("t", new_uuid()), RetryDetail("r", new_uuid())
        book, fd = _book_with(task, retry, flow_state=None)
        conn.save_logbook(book)
        with reopen(backend) as other:
            got = other.get_logbook(book.uuid)
            same_book(got, book)
            assert got.find(fd.uuid).state is None
            assert got.find(fd.uuid).find(retry.uuid).results == []
            assert got.find(fd.uuid).find(task.uuid).intention == states.EXECUTE

    @pytest.mark.parametrize("value", FALSY_RESULTS, ids=repr)
    def test_falsy_results_keep_their_type(self, backend, conn, value):
        ad = TaskDetail("falsy", new_uuid())
        ad.put(states.SUCCESS, value)
        ad.revert_results = value
        book, _ = _book_with(ad)
        conn.save_logbook(book)
        with reopen(backend) as other:
            got = other.get_atom_details(ad.uuid)
            same_value(got.results, value)
            same_value(got.revert_results, value)
            assert got.state == states.SUCCESS

    def test_large_result_round_trips(self, backend, conn):
        payload = {"blob": "ü" * 100_000, "rows": list(range(20_000))}
        ad = TaskDetail("big", new_uuid())
        book, _ = _book_with(ad)
        conn.save_logbook(book)
        ad.put(states.SUCCESS, payload)
        conn.update_atom_details(ad)
        with reopen(backend) as other:
            assert other.get_atom_details(ad.uuid).results == payload

    def test_failure_survives_the_store(self, backend, conn):
        ad = TaskDetail("failing", new_uuid())
        book, _ = _book_with(ad)
        conn.save_logbook(book)
        failure = make_failure("it broke ✗", "missing key")
        ad.put(states.FAILURE, failure)
        conn.update_atom_details(ad)
        with reopen(backend) as other:
            got = other.get_atom_details(ad.uuid).failure
        same_failure(got, failure)
        assert got.check(SampleError) is SampleError
        assert got.check("ValueError") == "ValueError"
        assert got.check(KeyError) is None
        assert got.cause.check(KeyError) is KeyError
        assert "_raise_chained" in got.traceback_str
        assert "_raise_root" in got.cause.traceback_str
        assert got.exception is None
        with pytest.raises(WrappedFailure) as info:
            got.reraise()
        assert info.value.check(SampleError) is SampleError
        assert "it broke ✗" in got.pformat()
        assert "missing key" in got.pformat(traceback=True)

    def test_failure_without_cause_or_traceback_round_trips(self, backend, conn):
        bare = Failure(exc_type_names=["ValueError", "Exception", "BaseException"],
                       exception_str="", traceback_str="")
        ad = TaskDetail("bare", new_uuid())
        ad.put(states.FAILURE, bare)
        book, _ = _book_with(ad)
        conn.save_logbook(book)
        with reopen(backend) as other:
            same_failure(other.get_atom_details(ad.uuid).failure, bare)
