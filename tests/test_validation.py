"""Records and confs are validated, never half-accepted.

Malformed dict forms raise InvalidFormat naming the field; corrupt stored
records raise CorruptRecord naming where they are stored; backend options of
the wrong Python type are refused before anything is created; a store used
without ``upgrade()`` reads as empty and creates nothing until its first save.
Property-based tests (hypothesis) round-trip arbitrary records through every
backend and feed arbitrary input to every ``from_dict``.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import persistence
from persistence import states
from persistence.exceptions import (
    ConfigurationError,
    CorruptRecord,
    InvalidFormat,
    NotFound,
    StorageFailure,
)
from persistence.failure import Failure
from persistence.models import FlowDetail, LogBook, RetryDetail, TaskDetail

GOOD = {"name": "n", "uuid": "u-1"}

MALFORMED = [
    # (class, input, text the error must contain)
    (LogBook, None, "must be a dict"),
    (LogBook, [1, 2], "must be a dict"),
    (LogBook, {"uuid": "u"}, "'name'"),
    (LogBook, {"name": "n"}, "'uuid'"),
    (LogBook, {"name": None, "uuid": "u"}, "'name' must be a string"),
    (LogBook, {"name": 3, "uuid": "u"}, "'name' must be a string"),
    (LogBook, {"name": "n", "uuid": None}, "'uuid' must be a non-empty string"),
    (LogBook, {"name": "n", "uuid": 7}, "'uuid'"),
    (LogBook, {"name": "n", "uuid": ["u"]}, "'uuid'"),
    (LogBook, {"name": "n", "uuid": ""}, "'uuid'"),
    (LogBook, {**GOOD, "meta": [1]}, "'meta' must be a dict"),
    (LogBook, {**GOOD, "created_at": 12}, "'created_at'"),
    (LogBook, {**GOOD, "updated_at": "yesterday"}, "'updated_at'"),
    (FlowDetail, {**GOOD, "state": "NOT-A-STATE"}, "'state' must be one of"),
    (FlowDetail, {**GOOD, "state": 1}, "'state'"),
    (FlowDetail, {"name": ["x"], "uuid": "u"}, "'name'"),
    (TaskDetail, {**GOOD, "state": "BOGUS"}, "'state'"),
    (TaskDetail, {**GOOD, "intention": "MAYBE"}, "'intention'"),
    (TaskDetail, {**GOOD, "failure": "boom"}, "'failure'"),
    (TaskDetail, {**GOOD, "failure": {"exc_type_names": []}}, "exc_type_names"),
    (TaskDetail, {**GOOD, "revert_failure": {"exc_type_names": "Exception"}}, "revert_failure"),
    (TaskDetail, {**GOOD, "version": {"a": 1}}, "'version'"),
    (TaskDetail, {**GOOD, "meta": "m"}, "'meta'"),
    (RetryDetail, {**GOOD, "results": 5}, "'results'"),
    (RetryDetail, {**GOOD, "results": [[1, 2, 3]]}, "'results'[0]"),
    (RetryDetail, {**GOOD, "results": [[1, [2]]]}, "'results'[0]"),
    (RetryDetail, {**GOOD, "results": [[1, {"t": "not a failure"}]]}, "must be a dict"),
    (Failure, "x", "must be a dict"),
    (Failure, {}, "exc_type_names"),
    (Failure, {"exc_type_names": [1]}, "exc_type_names"),
    (Failure, {"exc_type_names": ["E"], "exception_str": 5}, "exception_str"),
    (Failure, {"exc_type_names": ["E"], "exc_args": 5}, "exc_args"),
    (Failure, {"exc_type_names": ["E"], "cause": 5}, "failure.cause must be a dict"),
    (Failure, {"exc_type_names": ["E"], "causes": 5}, "'causes'"),
]


@pytest.mark.parametrize("cls,data,needle", MALFORMED,
                         ids=[f"{c.__name__}-{i}" for i, (c, _, _) in enumerate(MALFORMED)])
def test_malformed_dict_form_raises_invalid_format_naming_the_field(cls, data, needle):
    with pytest.raises(InvalidFormat) as info:
        cls.from_dict(data)
    assert needle in str(info.value)
    assert isinstance(info.value, ValueError)


def _chain(depth: int) -> dict:
    data = None
    for i in range(depth):
        data = {"exc_type_names": ["RuntimeError", "Exception"], "exception_str": str(i),
                "traceback_str": "", "cause": data}
    return data


def test_failure_cause_chains_are_read_without_recursion_and_bounded():
    assert Failure.from_dict(_chain(Failure.MAX_CAUSE_DEPTH)).exception_str == str(
        Failure.MAX_CAUSE_DEPTH - 1)
    with pytest.raises(InvalidFormat, match="deeper than"):
        Failure.from_dict(_chain(50_000))


def test_failure_reads_taskflows_causes_form():
    inner = {"exc_type_names": ["KeyError", "Exception"], "exception_str": "'k'",
             "traceback_str": "tb", "exc_args": ["k"], "causes": []}
    outer = {"exc_type_names": ["RuntimeError", "Exception"], "exception_str": "boom",
             "traceback_str": "tb", "exc_args": ["boom"], "causes": [inner]}
    failure = Failure.from_dict(outer)
    assert failure.exception_args == ("boom",) and failure.cause.exception_args == ("k",)
    assert failure.cause.check("KeyError") == "KeyError"


def test_corrupt_stored_record_is_a_typed_error_with_its_location(tmp_path):
    store = tmp_path / "store"
    book = LogBook("b")
    fd = FlowDetail("f", "flow-1")
    fd.add(TaskDetail("t", "atom-1"))
    book.add(fd)
    with persistence.backend({"connection": "dir", "path": str(store)}) as be:
        be.get_connection().save_logbook(book)
    for path, field, value in [(store / "atom_details" / "atom-1", "state", "BOGUS"),
                               (store / "flow_details" / "flow-1", "name", 12),
                               (store / "books" / book.uuid, "meta", [])]:
        file = path / ".record"
        header, _, body = file.read_bytes().partition(b"\n")
        record = json.loads(body.partition(b"\n")[0])
        original = file.read_bytes()
        record[field] = value
        file.write_bytes(header + b"\n" + json.dumps(record).encode())
        with persistence.backend({"connection": "dir", "path": str(store),
                                  "max_cache_size": 0}) as be:
            with pytest.raises(CorruptRecord) as info:
                be.get_connection().get_logbook(book.uuid)
        err = info.value
        assert isinstance(err, StorageFailure) and isinstance(err, InvalidFormat)
        assert err.location == str(file) and str(file) in str(err) and repr(field) in str(err)
        file.write_bytes(original)


# -- options --------------------------------------------------------------------------
@pytest.mark.parametrize("conf,needle", [
    ({"connection": "dir", "path": 123}, "'path' must be a string"),
    ({"connection": "dir", "path": b"/tmp/x"}, "'path' must be a string"),
    ({"connection": "dir", "path": "/tmp/x", "max_cache_size": True}, "an integer"),
    ({"connection": "dir", "path": "/tmp/x", "max_cache_size": 2.5}, "an integer"),
    ({"connection": "dir", "path": "/tmp/x", "history": 1}, "a boolean"),
    ({"connection": "memory", "path": "/a\x00b"}, "NUL"),
    ("memory:///a%00b", "NUL"),
    ("file:///tmp/x?max_cache_size=many", "an integer"),
    ("sqlite:///:memory:?pool_size=x", "an integer"),
])
def test_options_of_the_wrong_type_are_refused_before_anything_is_created(
        tmp_path, monkeypatch, conf, needle):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError, match=needle):
        persistence.fetch(conf)
    assert os.listdir(tmp_path) == []


def test_options_parsed_from_uri_strings_are_converted(tmp_path):
    be = persistence.fetch(f"file://{tmp_path}/s?max_cache_size=5&history=false")
    assert be._options["max_cache_size"] == 5 and be.history is False


# -- a store nobody upgraded ---------------------------------------------------------
@pytest.mark.parametrize("kind", ["memory", "dir"])
def test_a_store_never_upgraded_reads_as_empty_and_works_from_its_first_save(tmp_path, kind):
    path = tmp_path / "never-upgraded"
    conf = {"connection": "memory"} if kind == "memory" else {"connection": "dir",
                                                               "path": str(path)}
    be = persistence.fetch(conf)   # no upgrade(), as TaskFlow's engines use a store
    with contextlib.closing(be):
        conn = be.get_connection()
        assert list(conn.get_logbooks()) == [] and conn.count_logbooks() == 0
        assert conn.list_flow_details() == [] and conn.list_snapshots() == []
        for read in (lambda: conn.get_logbook("x"), lambda: conn.get_flow_details("x"),
                     lambda: conn.get_atom_details("x"), lambda: list(conn.get_flows_for_book("x")),
                     lambda: list(conn.get_atoms_for_flow("x"))):
            with pytest.raises(NotFound):
                read()
        with pytest.raises(StorageFailure, match=r"upgrade\(\)"):
            conn.validate()
        assert not path.exists(), "a read created the store"
        book = LogBook("b")
        fd = FlowDetail("f", str(uuid.uuid4()))
        fd.add(TaskDetail("t", str(uuid.uuid4())))
        book.add(fd)
        conn.save_logbook(book)
        assert len(conn.get_logbook(book.uuid)) == 1
        conn.validate()


# -- property-based ------------------------------------------------------------------
_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2 ** 53), 2 ** 53)
    | st.floats(allow_nan=False, allow_infinity=False) | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=12)
_name = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                max_size=40)   # names never hold NUL (see the test below)


@st.composite
def _failures(draw, depth=2):
    failure = None
    for _ in range(draw(st.integers(1, depth))):
        failure = Failure(exc_type_names=draw(st.lists(_name, max_size=2)) + ["Exception"],
                          exception_str=draw(_text), traceback_str=draw(_text),
                          exc_args=draw(st.lists(st.integers() | _text, max_size=2)),
                          cause=failure)
    return failure


@st.composite
def _books(draw):
    book = LogBook(draw(_name), uuid=str(uuid.uuid4()))
    book.meta = draw(st.dictionaries(_text, _json, max_size=3))
    for _ in range(draw(st.integers(0, 2))):
        fd = FlowDetail(draw(_name), str(uuid.uuid4()))
        fd.state = draw(st.none() | st.sampled_from(sorted(states.FLOW_STATES)))
        fd.meta = draw(st.dictionaries(_text, _json, max_size=2))
        for _ in range(draw(st.integers(0, 2))):
            if draw(st.booleans()):
                ad = TaskDetail(draw(_name), str(uuid.uuid4()))
                ad.results = draw(_json)
            else:
                ad = RetryDetail(draw(_name), str(uuid.uuid4()))
                ad.results = [(draw(_json), draw(st.dictionaries(_name, _failures(),
                                                                 max_size=1)))]
            ad.state = draw(st.none() | st.sampled_from(sorted(states.ATOM_STATES)))
            ad.intention = draw(st.sampled_from(states.INTENTIONS))
            ad.failure = draw(st.none() | _failures())
            ad.revert_results = draw(_json)
            ad.version = draw(st.none() | _text)
            ad.meta = draw(st.dictionaries(_text, _json, max_size=2))
            fd.add(ad)
        book.add(fd)
    return book


def _dump(book: LogBook) -> dict:
    return {"book": {k: v for k, v in book.to_dict().items() if k != "updated_at"},
            "flows": {fd.uuid: (fd.to_dict(), {ad.uuid: (type(ad).__name__, ad.to_dict())
                                               for ad in fd}) for fd in book}}


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(book=_books())
def test_any_record_round_trips_through_every_backend(backend, book):
    with backend.get_connection() as conn:
        conn.save_logbook(book)
    with backend.get_connection() as conn:
        got = conn.get_logbook(book.uuid)
    assert _dump(got) == _dump(book)


@settings(max_examples=150, deadline=None)
@given(cls=st.sampled_from([LogBook, FlowDetail, TaskDetail, RetryDetail, Failure]),
       data=st.dictionaries(st.sampled_from(["name", "uuid", "state", "intention", "meta",
                                             "results", "failure", "revert_failure",
                                             "version", "created_at", "exc_type_names",
                                             "exception_str", "cause", "causes",
                                             "exc_args"]),
                            _json, max_size=8) | _json)
def test_from_dict_of_anything_builds_a_record_or_raises_invalid_format(cls, data):
    try:
        cls.from_dict(data)
    except InvalidFormat:
        pass


@pytest.mark.parametrize("name", [None, 5, "nul\x00inside"])
def test_a_name_no_backend_can_store_is_refused_before_anything_is_written(backend, name):
    book = LogBook("fine")
    fd = FlowDetail(name, str(uuid.uuid4()))
    book.add(fd)
    with backend.get_connection() as conn:
        with pytest.raises(InvalidFormat, match="its name"):
            conn.save_logbook(book)
        assert [b.uuid for b in conn.get_logbooks()] == []
