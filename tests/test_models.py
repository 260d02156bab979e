"""Model semantics (no backend): add/find, merge, update, copy, dicts, pformat, put/reset."""

from __future__ import annotations

import datetime
import json

import pytest

from persistence import states
from persistence.failure import Failure
from persistence.models import (
    AtomDetail,
    FlowDetail,
    LogBook,
    RetryDetail,
    TaskDetail,
    atom_detail_class,
    atom_detail_type,
)
from persistence.testing.samples import make_failure, new_uuid


def _saved(record):
    """Pretend a backend just stored ``record`` (clears the changed flag)."""
    record._mark_saved(1)
    return record


# -- LogBook -----------------------------------------------------------------
def test_logbook_defaults():
    a, b = LogBook("a"), LogBook("b")
    assert a.uuid != b.uuid and isinstance(a.uuid, str)
    assert LogBook("c", uuid="given").uuid == "given"
    assert a.name == "a" and dict(a.meta) == {}
    assert isinstance(a.created_at, datetime.datetime) and a.created_at.tzinfo is not None
    assert a.updated_at is None
    assert len(a) == 0 and list(a) == []
    assert a.revision is None and a.changed


def test_logbook_add_find_iterate_and_replace_by_uuid():
    lb = LogBook("lb")
    fds = [FlowDetail(f"f{i}", new_uuid()) for i in range(3)]
    for fd in fds:
        lb.add(fd)
    assert len(lb) == 3 and list(lb) == fds
    assert lb.find(fds[1].uuid) is fds[1] and lb.find("missing") is None
    assert fds[0] in lb and FlowDetail("x", new_uuid()) not in lb
    replacement = FlowDetail("replacement", fds[1].uuid)
    lb.add(replacement)
    assert len(lb) == 3 and lb.find(fds[1].uuid) is replacement
    # Iteration works on a snapshot: adding while iterating is safe.
    for _ in lb:
        lb.add(FlowDetail("during", new_uuid()))
    assert len(lb) == 6


def test_logbook_merge_takes_differing_attributes_but_not_flows():
    lb, other = LogBook("mine"), LogBook("theirs")
    lb.add(FlowDetail("kept", new_uuid()))
    other.add(FlowDetail("not merged", new_uuid()))
    nested = {"list": [1, 2]}
    other.meta.update(nested)
    other.updated_at = datetime.datetime(2022, 1, 1, tzinfo=datetime.timezone.utc)
    assert lb.merge(other) is lb
    assert lb.name == "theirs" and dict(lb.meta) == nested
    assert lb.created_at == other.created_at and lb.updated_at == other.updated_at
    assert [fd.name for fd in lb] == ["kept"]
    assert lb.meta["list"] is other.meta["list"]  # reference copy by default
    assert lb.uuid != other.uuid


def test_logbook_merge_deep_copy_and_self():
    lb, other = LogBook("mine"), LogBook("theirs")
    other.meta["list"] = [1, [2]]
    lb.merge(other, deep_copy=True)
    assert lb.meta == other.meta and lb.meta["list"] is not other.meta["list"]
    assert lb.meta["list"][1] is not other.meta["list"][1]
    _saved(lb)
    assert lb.merge(lb) is lb and not lb.changed


def test_logbook_merge_of_equal_values_changes_nothing():
    lb = LogBook("same")
    other = LogBook.from_dict(lb.to_dict())
    _saved(lb)
    lb.merge(other)
    assert not lb.changed


def test_logbook_copy_retains_or_drops_contents():
    lb = LogBook("lb")
    lb.meta["k"] = [1]
    fd = FlowDetail("f", new_uuid())
    lb.add(fd)
    full = lb.copy()
    assert full is not lb and full.uuid == lb.uuid and full.name == lb.name
    assert full.find(fd.uuid) is fd  # flow details are not copied
    full.add(FlowDetail("only in copy", new_uuid()))
    assert len(lb) == 1 and len(full) == 2
    full.meta["new"] = 1
    assert "new" not in lb.meta
    empty = lb.copy(retain_contents=False)
    assert len(empty) == 0 and len(lb) == 1
    assert (empty.uuid, empty.name, dict(empty.meta), empty.created_at) == \
        (lb.uuid, lb.name, dict(lb.meta), lb.created_at)


def test_logbook_to_dict_from_dict():
    lb = LogBook("lb ✓")
    lb.meta.update({"a": {"b": [1]}})
    lb.updated_at = datetime.datetime(2023, 5, 6, 7, 8, 9, 10, tzinfo=datetime.timezone.utc)
    lb.add(FlowDetail("f", new_uuid()))
    data = lb.to_dict(marshal_time=True)
    json.dumps(data)  # marshalled times are plain strings
    assert set(data) == {"name", "meta", "uuid", "created_at", "updated_at"}
    back = LogBook.from_dict(data)
    assert (back.uuid, back.name, dict(back.meta)) == (lb.uuid, lb.name, dict(lb.meta))
    assert (back.created_at, back.updated_at) == (lb.created_at, lb.updated_at)
    assert len(back) == 0
    raw = lb.to_dict()       # TaskFlow's default: times stay datetimes
    assert raw["created_at"] is lb.created_at
    assert LogBook.from_dict(raw, unmarshal_time=False).updated_at == lb.updated_at
    assert LogBook.from_dict({**data, "updated_at": None}).updated_at is None


def test_logbook_pformat():
    lb = LogBook("example")
    text = lb.pformat()
    assert text.splitlines()[0] == "LogBook: 'example'"
    assert f"- uuid = {lb.uuid}" in text and "- created_at = " in text
    fd = FlowDetail("inner flow", new_uuid())
    fd.add(TaskDetail("inner task", new_uuid()))
    lb.add(fd)
    lb.meta["m"] = 1
    text = lb.pformat()
    assert "FlowDetail: 'inner flow'" in text and "TaskDetail: 'inner task'" in text
    assert "- meta = {'m': 1}" in text
    assert lb.pformat(indent=2).startswith("  LogBook:")
    assert lb.pformat(linesep="|").count("|") == len(text.splitlines()) - 1


# -- FlowDetail ----------------------------------------------------------------
def test_flowdetail_defaults_add_find():
    fd = FlowDetail("f", "fid")
    assert (fd.name, fd.uuid, fd.state, dict(fd.meta), len(fd)) == ("f", "fid", None, {}, 0)
    ads = [TaskDetail("t", new_uuid()), RetryDetail("r", new_uuid())]
    for ad in ads:
        fd.add(ad)
    assert list(fd) == ads and len(fd) == 2 and ads[0] in fd
    assert fd.find(ads[1].uuid) is ads[1] and fd.find("nope") is None
    other = TaskDetail("replacement", ads[0].uuid)
    fd.add(other)
    assert fd.find(ads[0].uuid) is other and len(fd) == 2


def test_flowdetail_update_takes_everything_including_atoms():
    fd, other = FlowDetail("mine", "x"), FlowDetail("theirs", "y")
    fd.add(TaskDetail("dropped", new_uuid()))
    ad = TaskDetail("taken", new_uuid())
    other.add(ad)
    other.state = states.RUNNING
    other.meta["k"] = "v"
    _saved(fd)
    assert fd.update(other) is fd
    assert (fd.name, fd.state, dict(fd.meta)) == ("theirs", states.RUNNING, {"k": "v"})
    assert list(fd) == [ad]
    assert fd.uuid == "x"
    assert fd.changed
    _saved(fd)
    assert fd.update(fd) is fd and not fd.changed


def test_flowdetail_merge_takes_name_state_meta_not_atoms():
    fd, other = FlowDetail("mine", "x"), FlowDetail("theirs", "y")
    kept = TaskDetail("kept", new_uuid())
    fd.add(kept)
    other.add(TaskDetail("not merged", new_uuid()))
    other.state = states.SUCCESS
    other.meta["deep"] = [[1]]
    fd.merge(other)
    assert (fd.name, fd.state) == ("theirs", states.SUCCESS)
    assert fd.meta["deep"] is other.meta["deep"]
    assert list(fd) == [kept]
    fd2 = FlowDetail("mine", "z")
    fd2.merge(other, deep_copy=True)
    assert fd2.meta == other.meta and fd2.meta["deep"] is not other.meta["deep"]
    _saved(fd)
    assert fd.merge(fd) is fd and not fd.changed


def test_flowdetail_copy():
    fd = FlowDetail("f", new_uuid())
    fd.state = states.RUNNING
    fd.meta["k"] = 1
    ad = TaskDetail("t", new_uuid())
    fd.add(ad)
    full, empty = fd.copy(), fd.copy(retain_contents=False)
    assert full.find(ad.uuid) is ad and len(empty) == 0
    for clone in (full, empty):
        assert clone is not fd
        assert (clone.uuid, clone.name, clone.state, dict(clone.meta)) == \
            (fd.uuid, fd.name, fd.state, {"k": 1})
    full.add(TaskDetail("only in copy", new_uuid()))
    full.meta["k"] = 2
    assert len(fd) == 1 and fd.meta["k"] == 1


def test_flowdetail_to_dict_from_dict_and_pformat():
    fd = FlowDetail("example", new_uuid())
    fd.state = states.SUSPENDED
    fd.meta["x"] = ["ü"]
    fd.add(TaskDetail("t", new_uuid()))
    data = fd.to_dict()
    assert data == {"name": "example", "uuid": fd.uuid, "state": "SUSPENDED",
                    "meta": {"x": ["ü"]}}
    back = FlowDetail.from_dict(data)
    assert (back.name, back.uuid, back.state, dict(back.meta), len(back)) == \
        ("example", fd.uuid, "SUSPENDED", {"x": ["ü"]}, 0)
    lines = fd.pformat().splitlines()
    assert lines[:3] == ["FlowDetail: 'example'", f" - uuid = {fd.uuid}", " - state = SUSPENDED"]
    assert any("TaskDetail: 't'" in line for line in lines)


# -- AtomDetail family ---------------------------------------------------------
def test_atom_defaults():
    for cls in (TaskDetail, RetryDetail):
        ad = cls("a", "id")
        assert (ad.name, ad.uuid, ad.state, ad.intention) == ("a", "id", None, states.EXECUTE)
        assert ad.failure is None and ad.revert_results is None and ad.revert_failure is None
        assert ad.version is None and dict(ad.meta) == {}
        assert ad.last_results is None
    assert TaskDetail("t", "1").results is None
    assert RetryDetail("r", "2").results == [] and RetryDetail("r", "2").last_failures is None


def test_task_put_results_and_failures():
    ad = _saved(TaskDetail("t", new_uuid()))
    assert ad.put(states.SUCCESS, {"v": 1}) is True
    assert (ad.state, ad.results, ad.last_results) == (states.SUCCESS, {"v": 1}, {"v": 1})
    assert ad.changed
    _saved(ad)
    assert ad.put(states.SUCCESS, {"v": 1}) is False
    assert not ad.changed
    assert ad.put(states.SUCCESS, 1) is True
    assert ad.put(states.SUCCESS, 1.0) is True  # a different type is a change
    failure = make_failure()
    assert ad.put(states.FAILURE, failure) is True
    assert ad.state == states.FAILURE and ad.failure is failure
    assert ad.put(states.FAILURE, failure) is False
    assert ad.put(states.SUCCESS, "ok") is True
    assert ad.failure is None and ad.results == "ok"  # success clears the failure
    assert ad.put(states.REVERTED, "undone") is True
    assert (ad.state, ad.revert_results, ad.results) == (states.REVERTED, "undone", "ok")
    revert_failure = make_failure("revert broke")
    assert ad.put(states.REVERT_FAILURE, revert_failure) is True
    assert ad.revert_failure is revert_failure and ad.failure is None
    assert ad.put(states.REVERTED, "undone again") is True
    assert ad.revert_failure is None


def test_task_put_of_a_failure_in_a_non_failure_state_stores_a_failure():
    ad = TaskDetail("t", new_uuid())
    failure = make_failure()
    ad.put(states.RUNNING, failure)
    assert ad.failure is failure and ad.results is None


def test_task_reset():
    ad = TaskDetail("t", new_uuid())
    ad.put(states.SUCCESS, 1)
    ad.failure = make_failure()
    ad.revert_results = 2
    ad.revert_failure = make_failure()
    ad.intention = states.REVERT
    ad.meta["kept"] = True
    _saved(ad)
    ad.reset(states.PENDING)
    assert (ad.state, ad.intention, ad.results, ad.failure) == \
        (states.PENDING, states.EXECUTE, None, None)
    assert ad.revert_results is None and ad.revert_failure is None
    assert ad.meta["kept"] is True and ad.changed


def test_task_merge_takes_results_by_reference():
    ad, other = TaskDetail("mine", "1"), TaskDetail("theirs", "2")
    other.put(states.SUCCESS, {"big": [1, 2, 3]})
    other.revert_results = ["r"]
    other.failure = make_failure()
    other.intention = states.REVERT
    other.version = (2, 0)
    other.meta["m"] = [1]
    assert ad.merge(other) is ad
    assert ad.results is other.results and ad.revert_results is other.revert_results
    assert (ad.state, ad.intention, ad.version) == (states.SUCCESS, states.REVERT, (2, 0))
    assert ad.failure is other.failure and ad.meta["m"] is other.meta["m"]
    assert ad.name == "mine" and ad.uuid == "1"  # identity is not merged
    deep = TaskDetail("deep", "3").merge(other, deep_copy=True)
    assert deep.results is other.results  # results are never deep copied
    assert deep.meta["m"] == [1] and deep.meta["m"] is not other.meta["m"]
    _saved(ad)
    assert ad.merge(ad) is ad and not ad.changed
    with pytest.raises(TypeError):
        ad.merge(RetryDetail("r", "4"))


def test_task_update_takes_everything():
    ad, other = TaskDetail("mine", "1"), TaskDetail("theirs", "2")
    other.put(states.SUCCESS, [1])
    other.revert_results = "rr"
    other.revert_failure = make_failure()
    assert ad.update(other) is ad
    assert ad.name == "theirs" and ad.results is other.results
    assert ad.revert_results == "rr" and ad.revert_failure is other.revert_failure
    assert ad.uuid == "1"


def test_task_copy_is_shallow_for_results_and_copies_meta_and_version():
    ad = TaskDetail("t", new_uuid())
    ad.put(states.SUCCESS, {"shared": [1]})
    ad.revert_results = ["shared too"]
    ad.version = [1, 2]
    ad.meta["k"] = 1
    clone = ad.copy()
    assert type(clone) is TaskDetail and clone is not ad
    assert clone.results is ad.results and clone.revert_results is ad.revert_results
    assert clone.version == ad.version and clone.version is not ad.version
    clone.meta["k"] = 2
    assert ad.meta["k"] == 1
    assert (clone.uuid, clone.name, clone.state) == (ad.uuid, ad.name, ad.state)


def test_atom_to_dict_from_dict():
    ad = TaskDetail("t ✓", new_uuid())
    ad.put(states.FAILURE, make_failure())
    ad.results = {"r": [1]}
    ad.revert_results = "rr"
    ad.revert_failure = make_failure("rf")
    ad.intention = states.REVERT
    ad.version = (1, 0)
    ad.meta["p"] = 0.5
    data = ad.to_dict()
    json.dumps(data)
    back = TaskDetail.from_dict(json.loads(json.dumps(data)))
    assert type(back) is TaskDetail
    for field in ("name", "uuid", "state", "intention", "results", "revert_results"):
        assert getattr(back, field) == getattr(ad, field), field
    assert back.version == (1, 0)  # lists come back as the tuple they were
    assert back.failure.matches(ad.failure) and back.revert_failure.matches(ad.revert_failure)
    assert dict(back.meta) == {"p": 0.5}
    minimal = TaskDetail.from_dict({"name": "m", "uuid": "u"})
    assert minimal.intention == states.EXECUTE and minimal.failure is None


def test_atom_pformat():
    ad = TaskDetail("example", new_uuid())
    lines = ad.pformat().splitlines()
    assert lines[:4] == ["TaskDetail: 'example'", f" - uuid = {ad.uuid}", " - state = None",
                         " - intention = EXECUTE"]
    assert not any("results" in line for line in lines)
    ad.put(states.SUCCESS, {"answer": 42})
    assert " - results = {'answer': 42}" in ad.pformat()
    assert RetryDetail("r", "u").pformat().startswith("RetryDetail: 'r'")


def test_retry_put_appends_history():
    ad = _saved(RetryDetail("r", new_uuid()))
    assert ad.put(states.SUCCESS, "first") is True
    assert ad.put(states.SUCCESS, "first") is True  # every attempt is recorded
    assert ad.put(states.SUCCESS, {"second": 2}) is True
    assert ad.results == [("first", {}), ("first", {}), ({"second": 2}, {})]
    assert ad.last_results == {"second": 2} and ad.last_failures == {}
    assert ad.state == states.SUCCESS and ad.changed
    failure = make_failure()
    ad.results[-1][1]["task"] = failure
    assert ad.last_failures == {"task": failure}
    assert ad.put(states.FAILURE, make_failure("retry itself failed")) is True
    assert ad.failure.exception_str == "retry itself failed"
    assert len(ad.results) == 3  # a failure does not touch the history


def test_retry_reset_empties_history():
    ad = RetryDetail("r", new_uuid())
    ad.put(states.SUCCESS, 1)
    ad.failure = make_failure()
    ad.revert_results = 1
    ad.intention = states.RETRY
    ad.reset(states.PENDING)
    assert ad.results == [] and ad.last_results is None and ad.last_failures is None
    assert (ad.failure, ad.revert_results, ad.state, ad.intention) == \
        (None, None, states.PENDING, states.EXECUTE)


def _retry_with_history() -> RetryDetail:
    ad = RetryDetail("r", new_uuid())
    data = {"shared": [1]}
    ad.put(states.SUCCESS, data)
    ad.results[-1][1]["t"] = make_failure()
    ad.revert_results = ["rr"]
    ad.meta["k"] = 1
    return ad


def test_retry_copy_copies_failures_but_shares_data():
    ad = _retry_with_history()
    clone = ad.copy()
    assert type(clone) is RetryDetail
    assert clone.results is not ad.results
    assert clone.results[0][0] is ad.results[0][0]
    assert clone.results[0][1] is not ad.results[0][1]
    assert clone.results[0][1]["t"] is not ad.results[0][1]["t"]
    assert clone.results[0][1]["t"].matches(ad.results[0][1]["t"])
    assert clone.revert_results is ad.revert_results
    clone.put(states.SUCCESS, "more")
    assert len(ad.results) == 1
    clone.meta["k"] = 2
    assert ad.meta["k"] == 1


def test_retry_merge_rebuilds_history_and_checks_type():
    other = _retry_with_history()
    ad = RetryDetail("mine", "1")
    ad.put(states.SUCCESS, "dropped")
    assert ad.merge(other) is ad
    assert len(ad.results) == 1 and ad.results is not other.results
    assert ad.results[0][0] is other.results[0][0]
    assert ad.results[0][1]["t"] is not other.results[0][1]["t"]
    assert ad.results[0][1]["t"].matches(other.results[0][1]["t"])
    assert ad.revert_results is other.revert_results
    with pytest.raises(TypeError):
        ad.merge(TaskDetail("t", "2"))


def test_retry_to_dict_from_dict_history():
    ad = _retry_with_history()
    ad.put(states.SUCCESS, [1, 2])
    data = json.loads(json.dumps(ad.to_dict()))
    back = RetryDetail.from_dict(data)
    assert [d for d, _ in back.results] == [{"shared": [1]}, [1, 2]]
    assert all(isinstance(entry, tuple) for entry in back.results)
    assert back.results[0][1]["t"].matches(ad.results[0][1]["t"])
    assert isinstance(back.results[0][1]["t"], Failure)
    assert back.last_results == [1, 2] and back.last_failures == {}


def test_atom_detail_class_and_type():
    assert atom_detail_class("TASK_DETAIL") is TaskDetail
    assert atom_detail_class("RETRY_DETAIL") is RetryDetail
    with pytest.raises(TypeError, match="NOPE"):
        atom_detail_class("NOPE")
    assert atom_detail_type(TaskDetail("t", "1")) == "TASK_DETAIL"
    assert atom_detail_type(RetryDetail("r", "2")) == "RETRY_DETAIL"

    class CustomTask(TaskDetail):
        pass

    assert atom_detail_type(CustomTask("c", "3")) == "TASK_DETAIL"
    with pytest.raises(TypeError):
        atom_detail_type(FlowDetail("f", "4"))
    for cls in (TaskDetail, RetryDetail):
        assert atom_detail_class(atom_detail_type(cls("x", "y"))) is cls
    assert issubclass(TaskDetail, AtomDetail) and issubclass(RetryDetail, AtomDetail)


# -- change tracking -----------------------------------------------------------
@pytest.mark.parametrize("change", [
    lambda r: setattr(r, "name", "new"),
    lambda r: r.meta.__setitem__("k", 1),
    lambda r: r.meta.update(k=1),
    lambda r: r.meta.setdefault("k", 1),
    lambda r: setattr(r, "meta", {"k": 1}),
    lambda r: r.touch(),
], ids=["attr", "meta-set", "meta-update", "meta-setdefault", "meta-replace", "touch"])
@pytest.mark.parametrize("make", [
    lambda: LogBook("lb"), lambda: FlowDetail("fd", "1"), lambda: TaskDetail("t", "2"),
    lambda: RetryDetail("r", "3"),
], ids=["logbook", "flow", "task", "retry"])
def test_changes_are_tracked(make, change):
    record = _saved(make())
    assert not record.changed and record.revision == 1
    change(record)
    assert record.changed


def test_meta_deletions_are_tracked_and_replaced_meta_stays_tracked():
    ad = TaskDetail("t", "1")
    ad.meta = {"a": 1, "b": 2, "c": 3}
    for change in (lambda m: m.pop("a"), lambda m: m.__delitem__("b"), lambda m: m.popitem(),
                   lambda m: m.clear()):
        ad.meta["x"] = 0
        _saved(ad)
        change(ad.meta)
        assert ad.changed
    _saved(ad)
    ad.meta |= {"merged": 1}
    assert ad.changed


def test_atom_state_changes_are_tracked():
    ad = _saved(TaskDetail("t", "1"))
    ad.state = states.RUNNING
    assert ad.changed
    _saved(ad)
    ad.reset(states.PENDING)
    assert ad.changed
    retry = _saved(RetryDetail("r", "2"))
    retry.put(states.SUCCESS, 1)
    assert retry.changed


def test_flow_and_logbook_additions_are_tracked():
    lb = _saved(LogBook("lb"))
    lb.add(FlowDetail("f", "1"))
    assert lb.changed


def test_copies_of_meta_are_plain_dicts():
    import copy
    ad = TaskDetail("t", "1")
    ad.meta["k"] = [1]
    assert type(copy.copy(ad.meta)) is dict and type(copy.deepcopy(ad.meta)) is dict
    assert copy.deepcopy(ad.meta)["k"] is not ad.meta["k"]


def test_flow_additions_are_tracked():
    fd = _saved(FlowDetail("f", "1"))
    fd.add(TaskDetail("t", "2"))
    assert fd.changed


def test_flow_update_keeps_tracking_its_own_meta():
    fd, other = FlowDetail("mine", "1"), FlowDetail("theirs", "2")
    other.meta["k"] = 1
    fd.update(other)
    _saved(fd)
    _saved(other)
    fd.meta["k"] = 2
    assert fd.changed
    assert not other.changed and other.meta["k"] == 1
