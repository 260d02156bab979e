"""The payload pipeline on every backend: what is stored, what is refused, blobs.

``backend`` is each contract backend in turn (tests/conftest.py); the tests
open a second backend on its store with a pipeline configured.
"""

from __future__ import annotations

import base64
import datetime
import json
import os

import pytest

import persistence
from persistence import FlowDetail, LogBook, states
from persistence.exceptions import MissingKey, TamperedPayload, UnserializableValue
from persistence.failure import Failure
from persistence.models import TaskDetail, encoding
from tests.payload_support import KEY_A, full_pipeline, raw_bytes, with_pipeline

SECRET = "PLAINTEXT-7f3a9c"


def _book(results, meta=None) -> tuple[LogBook, FlowDetail, TaskDetail]:
    book = LogBook("book-name")
    book.meta["owner"] = f"{SECRET}-book-meta"
    flow = FlowDetail("flow-name", uuid="f-payload")
    flow.meta["note"] = f"{SECRET}-flow-meta"
    task = TaskDetail("task-name", uuid="t-payload")
    task.state = states.SUCCESS
    task.results = results
    task.meta.update(meta or {})
    flow.add(task)
    book.add(flow)
    return book, flow, task


def _failure() -> Failure:
    try:
        raise RuntimeError(f"{SECRET}-failure")
    except RuntimeError:
        return Failure()


def test_encrypted_values_leave_no_plaintext_in_the_store(backend, tmp_path):
    conf = full_pipeline(tmp_path)
    conf["offload"]["threshold"] = 10 ** 6        # inline: the record holds the ciphertext
    with with_pipeline(backend, conf) as be, be.get_connection() as conn:
        book, flow, task = _book({"card": f"{SECRET}-result"},
                                 {"injected": {"arg": f"{SECRET}-injected"}})
        fail = TaskDetail("failed-task", uuid="t-failed")
        fail.state, fail.failure = states.FAILURE, _failure()
        fail.revert_results = f"{SECRET}-revert"
        flow.add(fail)
        conn.save_logbook(book)
        if be.supports_snapshots:
            conn.snapshot_flow(flow.uuid)
        raw = raw_bytes(be)
        assert SECRET.encode() not in raw
        for clear in (b"task-name", b"t-payload", b"flow-name", b"SUCCESS", b"FAILURE"):
            assert clear in raw, clear            # names, uuids, states stay queryable
        loaded = conn.get_flow_details(flow.uuid)
        assert loaded.find(task.uuid).results == {"card": f"{SECRET}-result"}
        assert loaded.find(task.uuid).meta["injected"] == {"arg": f"{SECRET}-injected"}
        assert loaded.meta["note"] == f"{SECRET}-flow-meta"
        assert f"{SECRET}-failure" in loaded.find("t-failed").failure.exception_str
        assert conn.get_logbook(book.uuid).meta["owner"] == f"{SECRET}-book-meta"
        if be.supports_snapshots:
            snap = conn.list_snapshots(flow.uuid)[0]
            assert conn.get_snapshot(snap.id).flow.find(task.uuid).results == \
                {"card": f"{SECRET}-result"}


def test_unencodable_value_names_the_atom_and_type_and_writes_nothing(backend, tmp_path):
    with with_pipeline(backend, {"serializer": "msgpack"}) as be, be.get_connection() as conn:
        book, flow, task = _book({"ok": 1})
        conn.save_logbook(book)
        task.results = {"bad": {1, 2}}
        with pytest.raises(UnserializableValue, match=r"task-name.*'set'") as err:
            conn.update_atom_details(task)
        assert err.value.type_name == "set"
        assert conn.get_atom_details(task.uuid).results == {"ok": 1}


def test_default_pipeline_unencodable_value_is_typed_too(backend):
    with backend.get_connection() as conn:
        book, flow, task = _book({"ok": 1})
        conn.save_logbook(book)
        task.results = {"bad": object()}
        with pytest.raises(UnserializableValue, match=r"task-name.*'object'"):
            conn.update_atom_details(task)
        assert conn.get_atom_details(task.uuid).results == {"ok": 1}


def test_offloaded_values_round_trip_and_go_with_their_records(backend, tmp_path):
    big = {"rows": [os.urandom(20).hex() for _ in range(100)]}
    with with_pipeline(backend, full_pipeline(tmp_path)) as be, be.get_connection() as conn:
        book, flow, task = _book(big)
        conn.save_logbook(book)
        other = LogBook("other")
        other_flow = FlowDetail("other-flow")
        other_flow.state = states.SUCCESS
        other_task = TaskDetail("other-task")
        other_task.state, other_task.results = states.SUCCESS, big
        other_flow.add(other_task)
        other.add(other_flow)
        conn.save_logbook(other)
        blobs = be.payload.offload
        assert len(list(blobs.blobs())) == 2
        assert conn.get_atom_details(task.uuid).results == big
        conn.destroy_logbook(book.uuid)
        assert len(list(blobs.blobs())) == 1
        report = conn.purge(datetime.datetime.now(datetime.timezone.utc)
                            + datetime.timedelta(seconds=1))
        assert report.logbooks == [other.uuid]
        assert list(blobs.blobs()) == []


def test_a_dict_holding_the_marker_round_trips_on_the_default_pipeline(backend):
    value = {"$payload": "user data", "n": 1}
    with backend.get_connection() as conn:
        book, flow, task = _book(value, {"m": value})
        conn.save_logbook(book)
        loaded = conn.get_atom_details(task.uuid)
        assert loaded.results == value and loaded.meta["m"] == value


def test_default_pipeline_writes_the_bytes_written_before(tmp_path):
    """A record file of the dir backend is exactly the record encoded with no pipeline."""
    with persistence.backend({"connection": "dir", "path": str(tmp_path / "s")}) as be, \
            be.get_connection() as conn:
        book, flow, task = _book({"a": [1, 2.5, "é"]}, {"progress": 1.0})
        conn.save_logbook(book)
        stored = _record_file(tmp_path / "s", task.uuid).read_bytes().split(b"\n")[1]
        record = json.loads(stored)
        assert record["results"] == {"a": [1, 2.5, "é"]} and record["meta"] == {"progress": 1.0}
        assert stored == encoding.encode_record(encoding.atom_record(task, None), task)


def _record_file(root, uuid):
    """The dir backend's file of an atom record: its revision, then the JSON record."""
    return root / "atom_details" / uuid / ".record"


def _flip_ciphertext(text: str) -> str:
    record = json.loads(text)
    envelope = record["results"]
    data = bytearray(base64.b64decode(envelope["data"]))
    data[-1] ^= 1
    envelope["data"] = base64.b64encode(bytes(data)).decode()
    return json.dumps(record)


def test_tampered_ciphertext_in_a_record_is_refused(tmp_path):
    conf = {"connection": "dir", "path": str(tmp_path / "s"),
            "encrypt": {"keys": {"a": KEY_A}}}
    with persistence.backend(conf) as be, be.get_connection() as conn:
        book, flow, task = _book({"v": SECRET})
        conn.save_logbook(book)
        path = _record_file(tmp_path / "s", task.uuid)
        revision, record = path.read_text().split("\n")[:2]
        path.write_text(f"{revision}\n{_flip_ciphertext(record)}\n")
        with pytest.raises(TamperedPayload, match="'a'"):
            conn.get_atom_details(task.uuid)


def test_tampered_ciphertext_in_a_row_is_refused(tmp_path):
    import sqlalchemy as sa
    conf = {"connection": f"sqlite:///{tmp_path}/s.db", "encrypt": {"keys": {"a": KEY_A}}}
    with persistence.backend(conf) as be, be.get_connection() as conn:
        book, flow, task = _book({"v": SECRET})
        conn.save_logbook(book)
        with be.engine.begin() as c:
            text = c.execute(sa.text("SELECT results FROM atomdetails")).scalar_one()
            flipped = json.dumps(json.loads(_flip_ciphertext(json.dumps({"results":
                                                                          json.loads(text)})))
                                 ["results"])
            c.execute(sa.text("UPDATE atomdetails SET results = :r"), {"r": flipped})
        with pytest.raises(TamperedPayload):
            conn.get_atom_details(task.uuid)


def test_a_missing_key_is_named(tmp_path):
    path = str(tmp_path / "s")
    with persistence.backend({"connection": "dir", "path": path,
                              "encrypt": {"keys": {"a": KEY_A}}}) as be, \
            be.get_connection() as conn:
        book, flow, task = _book({"v": 1})
        conn.save_logbook(book)
    with persistence.backend({"connection": "dir", "path": path}) as be, \
            be.get_connection() as conn, pytest.raises(MissingKey, match="'a'") as err:
        conn.get_atom_details(task.uuid)
    assert err.value.key_id == "a" and KEY_A.hex() not in str(err.value)


def test_backend_reprs_and_errors_never_show_keys(tmp_path):
    conf = {"connection": "memory", "encrypt": {"keys": {"a": KEY_A}}}
    with persistence.backend(conf) as be:
        shown = repr(be) + repr(be.payload) + str(be.payload.describe())
    assert KEY_A.hex() not in shown and repr(KEY_A) not in shown
    with pytest.raises(persistence.exceptions.ConfigurationError) as err:
        persistence.fetch({"connection": "memory", "encrypt": {"keys": {"a": KEY_A[:5]}}})
    assert repr(KEY_A[:5]) not in str(err.value)

