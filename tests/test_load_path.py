"""Loads build records from what a store holds without redoing the work of a write.

A record read from a store is built by ``from_stored`` (fields as this library
stores them are checked and taken as they are; anything else goes through
``from_dict``), its payload values are opened only when the stored text holds
an envelope, and JSON is decoded by the fastest decoder that gives the same
values.  These tests hold each of those to "the same record, the same errors"
and count what a load no longer does.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import math

import pytest

import persistence
from persistence import Failure, FlowDetail, LogBook, RetryDetail, TaskDetail, states
from persistence.exceptions import SerializationError
from persistence.models import encoding
from persistence.models.base import _Record, _TrackedDict
from persistence.models.bookkeeping import Bookkeeping, bookkeeping, loaded


def _failure_dict() -> dict:
    try:
        raise KeyError("k")
    except KeyError:
        return Failure().to_dict()


def _atom(**fields) -> dict:
    record = {"name": "t", "uuid": "atom-1", "state": states.SUCCESS,
              "intention": states.EXECUTE, "results": {"value": 1}, "failure": None,
              "revert_results": None, "revert_failure": None, "meta": {"k": [1]},
              "version": "1.0"}
    record.update(fields)
    return record


VALID_ATOMS = [
    (TaskDetail, _atom()),
    (TaskDetail, _atom(state=None, intention=None, results=None, meta=None, version=None)),
    (TaskDetail, _atom(failure=_failure_dict(), revert_failure=_failure_dict(),
                       revert_results=[1, "x"])),
    (TaskDetail, _atom(version=["1", 2])),
    (TaskDetail, _atom(version=True)),
    (TaskDetail, _atom(version=7, state=states.REVERTED, intention=states.REVERT)),
    (RetryDetail, _atom(results=[[1, {"t": _failure_dict()}], ["x", None]])),
    (RetryDetail, _atom(results=None)),
]
BAD_ATOMS = [
    (TaskDetail, _atom(state="BOGUS")),
    (TaskDetail, _atom(state=["SUCCESS"])),
    (TaskDetail, _atom(intention="SOMETIMES")),
    (TaskDetail, _atom(name=12)),
    (TaskDetail, _atom(uuid="")),
    (TaskDetail, _atom(meta=[])),
    (TaskDetail, _atom(version=1.5)),
    (TaskDetail, _atom(failure={"exc_type_names": []})),
    (RetryDetail, _atom(results="not a history")),
]


def _same_record(built, expected) -> None:
    assert type(built) is type(expected)
    mine = {k: v for k, v in vars(built).items() if k != "_bk"}
    theirs = {k: v for k, v in vars(expected).items() if k != "_bk"}
    assert mine == theirs
    assert list(vars(built)) == list(vars(expected))      # the same attribute order
    assert type(built.meta) is _TrackedDict and built.meta._owner is built
    for key, value in vars(expected).items():
        assert type(vars(built)[key]) is type(value)


@pytest.mark.parametrize("cls,record", VALID_ATOMS)
def test_from_stored_builds_the_atom_from_dict_builds(cls, record):
    bk = loaded("store", 3, record["state"])
    built = cls.from_stored(json.loads(json.dumps(record)), bk)
    _same_record(built, cls.from_dict(json.loads(json.dumps(record))))
    assert bookkeeping(built) is bk and not built.changed and built.revision == 3


@pytest.mark.parametrize("cls,record", BAD_ATOMS)
def test_from_stored_refuses_what_from_dict_refuses_with_the_same_error(cls, record):
    with pytest.raises(Exception) as expected:
        cls.from_dict(record)
    with pytest.raises(type(expected.value)) as got:
        cls.from_stored(record, loaded(None, 1, None))
    assert str(got.value) == str(expected.value)


@pytest.mark.parametrize("cls,record", [
    (LogBook, {"name": "b", "uuid": "b-1", "meta": {"a": 1},
               "created_at": "2024-05-01T10:00:00+00:00", "updated_at": None}),
    (LogBook, {"name": "b", "uuid": "b-1", "meta": None,
               "created_at": datetime.datetime(2024, 5, 1, tzinfo=datetime.timezone.utc),
               "updated_at": datetime.datetime(2024, 5, 2)}),
    (FlowDetail, {"name": "f", "uuid": "f-1", "meta": {"a": 1}, "state": states.RUNNING}),
    (FlowDetail, {"name": "f", "uuid": "f-1", "meta": None, "state": None}),
])
def test_from_stored_builds_the_logbook_or_flow_from_dict_builds(cls, record):
    built = cls.from_stored(dict(record), loaded("store", 2, None))
    _same_record(built, cls.from_dict(dict(record)))
    assert not built.changed and built.revision == 2


@pytest.mark.parametrize("cls,record", [
    (LogBook, {"name": "b", "uuid": "b-1", "created_at": "yesterday"}),
    (LogBook, {"name": None, "uuid": "b-1"}),
    (FlowDetail, {"name": "f", "uuid": "f-1", "state": "BOGUS"}),
    (FlowDetail, {"name": "f", "uuid": "f-1", "meta": "m"}),
])
def test_from_stored_logbook_or_flow_errors_are_from_dicts(cls, record):
    with pytest.raises(Exception) as expected:
        cls.from_dict(record)
    with pytest.raises(type(expected.value)) as got:
        cls.from_stored(record, loaded(None, 1, None))
    assert str(got.value) == str(expected.value)


def test_loaded_bookkeeping_is_what_mark_saved_and_mark_stored_make():
    fresh = Bookkeeping()
    fresh.mark_saved(5)
    fresh.mark_stored("store", states.SUCCESS)
    made = loaded("store", 5, states.SUCCESS)
    assert made.__getstate__() == fresh.__getstate__()
    assert made.watchers is None and made.pending is None


# -- through the backends --------------------------------------------------------------
@pytest.fixture(params=["memory", "dir", "sqlite"])
def conn(request, tmp_path):
    conf = {"memory": "memory://",
            "dir": {"connection": "dir", "path": str(tmp_path / "d")},
            "sqlite": f"sqlite:///{tmp_path}/s.db"}[request.param]
    with persistence.backend(conf) as be, contextlib.closing(be.get_connection()) as c:
        c.upgrade()
        yield c


def _book(atoms: int = 3) -> LogBook:
    book = LogBook("b")
    fd = FlowDetail("f")
    fd.state = states.RUNNING
    for i in range(atoms):
        ad = TaskDetail(f"t{i}")
        ad.state = states.SUCCESS
        ad.results = {"i": i}
        ad.version = "1.0"
        fd.add(ad)
    book.add(fd)
    return book


def _count_calls(monkeypatch, owner, name) -> list:
    calls = []
    original = getattr(owner, name)

    def counted(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)
    monkeypatch.setattr(owner, name, counted)
    return calls


def test_a_load_opens_no_value_when_no_stored_text_holds_an_envelope(conn, monkeypatch):
    book = _book()
    conn.save_logbook(book)
    opened = _count_calls(monkeypatch, encoding, "open_values")
    got = conn.get_logbook(book.uuid)
    assert sorted(ad.results["i"] for fd in got for ad in fd) == [0, 1, 2]
    assert opened == []     # one call per record before

    # A value that holds the marker key is stored escaped: its record is opened.
    ad = next(iter(next(iter(book))))
    ad.results = {encoding.PAYLOAD_MARKER: "not an envelope", "x": 1}
    ad.meta["m"] = {encoding.PAYLOAD_MARKER: 2}
    conn.update_atom_details(ad)
    again = conn.get_atom_details(ad.uuid)
    assert again.results == ad.results and dict(again.meta) == {"m": {encoding.PAYLOAD_MARKER: 2}}
    assert len(opened) == 1


def test_records_built_from_storage_skip_init(conn, monkeypatch):
    book = _book()
    conn.save_logbook(book)
    inits = _count_calls(monkeypatch, _Record, "__init__")
    got = conn.get_logbook(book.uuid)
    assert sum(len(fd) for fd in got) == 3
    assert inits == []      # one per record before (then every field set again)


def test_loaded_records_track_changes_as_before(conn):
    book = _book()
    conn.save_logbook(book)
    got = conn.get_logbook(book.uuid)
    fd = next(iter(got))
    atoms = list(fd)
    for record in [got, fd, *atoms]:
        bk = bookkeeping(record)
        assert not record.changed and record.revision is not None
        assert bk.stored_state == getattr(record, "state", None) and bk.token is not None
    atoms[1].meta["seen"] = True            # a meta change marks the atom and its flow
    assert atoms[1].changed and not atoms[0].changed
    conn.update_flow_details(fd)
    assert dict(conn.get_atom_details(atoms[1].uuid).meta) == {"seen": True}
    clone = atoms[2].copy()
    clone.meta["c"] = 1
    assert clone.changed and not atoms[2].changed and dict(atoms[2].meta) == {}


def test_sql_rows_share_no_mutable_value(tmp_path):
    book = _book(2)
    for ad in next(iter(book)):
        ad.results = {"same": [1]}
        ad.version = ["2", 0]
    with persistence.backend(f"sqlite:///{tmp_path}/v.db") as be, \
            contextlib.closing(be.get_connection()) as c:
        c.upgrade()
        c.save_logbook(book)
        first, second = next(iter(c.get_logbook(book.uuid)))
        third = c.get_atom_details(first.uuid)
    assert first.results == second.results == {"same": [1]}
    assert first.results is not second.results and first.results is not third.results
    assert first.version == second.version == ("2", 0)


# -- JSON decoding ---------------------------------------------------------------------
DOCUMENTS = ['{"a":1,"b":[1.5,null,true,"x"]}', ' {"a" : 1} ', "NaN", "[Infinity,-Infinity]",
             "123456789012345678901234567890", "-9223372036854775809", "1e400", "-0", "-0.0",
             '"\\ud800"', '"\\ud83d\\ude00"', '{"a":1,"a":2}', "[" * 300 + "]" * 300,
             '"é\\u0000"', "0.30000000000000004", "5e-324"]
BROKEN = ["", " ", "[1,]", '{"a":1}x', "01", '"\x01"', "\ufeff{}", "tru", "[", '"\\x41"']


def _before(text: str):
    """What encoding.loads always gave: the stdlib decoder's decode()."""
    return json.JSONDecoder().decode(text)


def _decoders():
    out = [None]
    if encoding._fast_decoder()[0] is not None:
        out.append("msgspec")
    return out


@pytest.mark.parametrize("decoder", _decoders())
@pytest.mark.parametrize("text", DOCUMENTS)
def test_loads_gives_what_the_stdlib_decoder_gives(monkeypatch, decoder, text):
    if decoder is None:
        monkeypatch.setattr(encoding, "_fast_decode", None)
    expected = _before(text)
    for data in (text, text.encode("utf-8", "surrogatepass")):
        got = encoding.loads(data)
        assert repr(got) == repr(expected) and type(got) is type(expected)
        if isinstance(got, float) and not math.isnan(got):
            assert math.copysign(1, got) == math.copysign(1, expected)


@pytest.mark.parametrize("decoder", _decoders())
@pytest.mark.parametrize("text", BROKEN)
def test_loads_refuses_what_the_stdlib_decoder_refuses(monkeypatch, decoder, text):
    if decoder is None:
        monkeypatch.setattr(encoding, "_fast_decode", None)
    with pytest.raises(ValueError) as expected:
        _before(text)
    with pytest.raises(SerializationError) as got:
        encoding.loads(text.encode("utf-8"), "here")
    assert str(expected.value) in str(got.value) and "here" in str(got.value)
