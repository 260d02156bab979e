"""Storage: fingerprints and staleness, invalidation, and listeners of durable changes."""

from __future__ import annotations

import logging

import pytest

import persistence
from persistence import states
from persistence.atom import Retry, Task
from persistence.exceptions import Conflict, FingerprintError
from persistence.models import FlowDetail, LogBook
from persistence.runtime.listeners import Change
from persistence.runtime.staleness import META_FINGERPRINT, digest
from persistence.storage import Storage
from persistence.testing.samples import new_uuid


@pytest.fixture
def store(tmp_path):
    """A durable backend (dir) holding one saved, empty flow detail; yields (backend, uuid)."""
    with persistence.backend({"connection": "dir", "path": str(tmp_path / "s")}) as be:
        with be.get_connection() as conn:
            book = LogBook("b")
            fd = FlowDetail("f", new_uuid())
            book.add(fd)
            conn.save_logbook(book)
        yield be, fd.uuid


def _load(be, flow_uuid):
    with be.get_connection() as conn:
        return conn.get_flow_details(flow_uuid)


def _pipeline(version=(1, 0)):
    """seed → a → b → c, and d beside them (needs only seed)."""
    return [Task("a", provides="x", requires="seed", version=version),
            Task("b", provides="y", requires="x"),
            Task("c", provides="z", requires=["y", "x"]),
            Task("d", provides="w", requires="seed")]


def _run(storage: Storage, atoms, fn=lambda name, args: (name, sorted(args.items()))):
    """What an engine does for each atom not finished yet."""
    for atom in atoms:
        if storage.get_atom_state(atom.name) == states.SUCCESS:
            continue
        storage.set_atom_state(atom.name, states.RUNNING)
        args = storage.fetch_mapped_args(atom.rebind, atom_name=atom.name,
                                         optional_args=atom.optional)
        storage.save(atom.name, fn(atom.name, args))


# -- staleness ----------------------------------------------------------------------

def test_success_records_a_fingerprint_and_nothing_is_stale(store):
    be, flow_uuid = store
    atoms = _pipeline()
    storage = Storage(_load(be, flow_uuid), be)
    storage.ensure_atoms(atoms)
    storage.inject({"seed": 1})
    _run(storage, atoms)
    stored = {ad.name: ad for ad in _load(be, flow_uuid)}
    mark = stored["a"].meta[META_FINGERPRINT]
    assert mark == {"version": "1.0", "args": digest({"seed": 1}, "a")}
    assert stored["c"].meta[META_FINGERPRINT]["args"] == digest(
        {"y": ["b", [["x", ["a", [["seed", 1]]]]]], "x": ["a", [["seed", 1]]]}, "c")
    assert storage.stale_atoms(atoms) == []
    # A fresh storage over the stored flow (a resumed run) agrees.
    again = Storage(_load(be, flow_uuid), be)
    again.ensure_atoms(atoms)
    assert again.stale_atoms(atoms) == []


def test_changed_injection_makes_its_consumers_and_everything_downstream_stale(store):
    be, flow_uuid = store
    atoms = _pipeline()
    first = Storage(_load(be, flow_uuid), be)
    first.ensure_atoms(atoms)
    first.inject({"seed": 1})
    _run(first, atoms)
    resumed = Storage(_load(be, flow_uuid), be)
    resumed.ensure_atoms(atoms)
    resumed.inject({"seed": 2})
    assert resumed.stale_atoms(atoms) == ["a", "b", "c", "d"]
    resumed.inject({"seed": 1})
    assert resumed.stale_atoms(atoms) == []


def test_new_version_invalidates_the_atom_and_downstream_only(store):
    be, flow_uuid = store
    first = Storage(_load(be, flow_uuid), be)
    first.ensure_atoms(_pipeline())
    first.inject({"seed": 1})
    _run(first, _pipeline())
    upgraded = _pipeline(version=(2, 0))
    resumed = Storage(_load(be, flow_uuid), be)
    resumed.ensure_atoms(upgraded)
    assert resumed.stale_atoms(upgraded) == ["a", "b", "c"]
    written = []
    resumed.add_listener(written.append)
    assert resumed.invalidate_stale(upgraded) == ["a", "b", "c"]
    stored = {ad.name: ad for ad in _load(be, flow_uuid)}
    for name in ("a", "b", "c"):
        assert stored[name].state == states.PENDING and stored[name].results is None
        assert META_FINGERPRINT not in stored[name].meta
    assert stored["d"].state == states.SUCCESS
    assert {c.name for c in written if c.field == "state"} == {"a", "b", "c"}
    # Re-running redoes exactly those three; then nothing is stale.
    ran = []
    _run(resumed, upgraded, lambda name, args: ran.append(name) or name)
    assert ran == ["a", "b", "c"]
    assert resumed.stale_atoms(upgraded) == []


def test_changed_upstream_result_makes_consumers_stale(store):
    be, flow_uuid = store
    atoms = _pipeline()
    storage = Storage(_load(be, flow_uuid), be)
    storage.ensure_atoms(atoms)
    storage.inject({"seed": 1})
    _run(storage, atoms)
    storage.save("b", "a different y")   # b re-ran by itself, c did not
    assert storage.stale_atoms(atoms) == ["c"]


def test_atoms_not_finished_or_without_fingerprint_are_not_reported(store):
    be, flow_uuid = store
    atoms = _pipeline()
    storage = Storage(_load(be, flow_uuid), be)
    storage.ensure_atoms(atoms)
    storage.inject({"seed": 1})
    _run(storage, atoms[:2])
    storage.update_atom_metadata("a", {})
    with be.get_connection() as conn:   # a result stored by an older version: no fingerprint
        fd = conn.get_flow_details(flow_uuid)
        for ad in fd:
            ad.meta.pop(META_FINGERPRINT, None)
        conn.update_flow_details(fd)
    resumed = Storage(_load(be, flow_uuid), be)
    resumed.ensure_atoms(atoms)
    resumed.inject({"seed": 5})
    assert resumed.stale_atoms(atoms) == []


def test_transient_arguments_count_by_name_only():
    class Connection:   # a resource: no stable value, not serializable
        pass

    atoms = [Task("q", provides="rows", requires=["db", "sql"])]
    storage = Storage(FlowDetail("f", new_uuid()))
    storage.ensure_atoms(atoms)
    storage.inject({"db": Connection(), "sql": "select 1"}, transient=True)
    storage.inject_atom_args("q", {"sql": "select 1"}, transient=False)
    _run(storage, atoms, lambda name, args: ["row"])
    storage.inject({"db": Connection()}, transient=True)
    assert storage.stale_atoms(atoms) == []
    storage.inject_atom_args("q", {"sql": "select 2"}, transient=False)
    assert storage.stale_atoms(atoms) == ["q"]


def test_unserializable_argument_is_named(tmp_path):
    atoms = [Task("make", provides="items"), Task("use", requires="items")]
    storage = Storage(FlowDetail("f", new_uuid()), policy="batch")
    storage.ensure_atoms(atoms)
    storage.save("make", {1, 2})   # a set: not stored yet (batch), given to "use"
    args = storage.fetch_mapped_args(atoms[1].rebind, atom_name="use")
    with pytest.raises(FingerprintError, match="argument 'items' of atom 'use'") as info:
        storage.save("use", sorted(args["items"]))
    assert info.value.argument == "items" and info.value.atom == "use"
    assert isinstance(info.value, TypeError)
    assert storage.get_atom_state("use") == states.PENDING   # nothing was saved
    with pytest.raises(FingerprintError, match="'conn'"):
        digest({"conn": object(), "n": 1}, "task")


def test_retries_and_policy_never_record_no_fingerprint_when_not_durable():
    never = Storage(FlowDetail("f", new_uuid()), policy="never")
    never.ensure_atoms([Task("t")])
    never.save("t", 1)
    assert META_FINGERPRINT not in never.flow_detail.find(never.get_atom_uuid("t")).meta
    storage = Storage(FlowDetail("g", new_uuid()))
    storage.ensure_atoms([Retry("r", provides="attempt")])
    storage.save("r", 1)
    assert storage.stale_atoms([Retry("r", provides="attempt")]) == []


# -- listeners ------------------------------------------------------------------------

def test_listeners_get_each_durable_change_with_old_and_new_values(store):
    be, flow_uuid = store
    storage = Storage(_load(be, flow_uuid), be)
    storage.ensure_atoms([Task("a", provides="x")])
    seen: list[Change] = []

    def check(change: Change) -> None:   # called after the write: the backend has it
        stored = {ad.name: ad for ad in _load(be, flow_uuid)}
        if change.kind == "atom":
            assert getattr(stored[change.name], change.field) == change.new
        seen.append(change)

    storage.add_listener(check)
    storage.set_atom_state("a", states.RUNNING)
    storage.save("a", {"rows": 3})
    storage.set_flow_state(states.RUNNING)
    storage.set_atom_state("a", states.SUCCESS)   # no change: no call
    uuid = storage.get_atom_uuid("a")
    assert seen == [
        Change("atom", "a", uuid, "state", states.PENDING, states.RUNNING),
        Change("atom", "a", uuid, "state", states.RUNNING, states.SUCCESS),
        Change("atom", "a", uuid, "results", None, {"rows": 3}),
        Change("flow", "f", flow_uuid, "state", None, states.RUNNING),
    ]
    storage.remove_listener(check)
    storage.reset("a")
    assert len(seen) == 4
    with pytest.raises(ValueError):
        storage.remove_listener(check)


def test_a_raising_listener_is_logged_and_the_write_stands(store, caplog):
    be, flow_uuid = store
    storage = Storage(_load(be, flow_uuid), be)
    storage.ensure_atoms([Task("a")])
    after = []

    def broken(change: Change) -> None:
        raise RuntimeError("listener bug")

    storage.add_listener(broken)
    storage.add_listener(after.append)
    with caplog.at_level(logging.ERROR, logger="persistence.runtime.listeners"):
        storage.save("a", 1)
    assert "listener bug" in caplog.text
    assert [c.field for c in after] == ["state", "results"]
    assert {ad.name: ad for ad in _load(be, flow_uuid)}["a"].results == 1


def test_batch_policy_notifies_after_the_flush_and_failed_writes_not_at_all(store):
    be, flow_uuid = store
    storage = Storage(_load(be, flow_uuid), be, policy="batch")
    storage.ensure_atoms([Task("a"), Task("b")])
    seen: list[Change] = []
    storage.add_listener(seen.append)
    storage.save("a", 1)
    storage.set_atom_state("b", states.RUNNING)
    assert seen == []
    storage.flush()
    assert sorted((c.name, c.field) for c in seen) == [
        ("a", "results"), ("a", "state"), ("b", "state")]
    seen.clear()
    # Another writer changes the flow: this storage's next flush conflicts.
    with be.get_connection() as conn:
        fd = conn.get_flow_details(flow_uuid)
        fd.meta["other"] = True
        conn.update_flow_details(fd)
    storage.save("b", 2)
    with pytest.raises(Conflict):
        storage.flush()
    assert seen == []


def test_policy_never_never_notifies():
    storage = Storage(FlowDetail("f", new_uuid()), policy="never")
    storage.ensure_atoms([Task("a")])
    seen = []
    storage.add_listener(seen.append)
    storage.save("a", 1)
    storage.set_flow_state(states.RUNNING)
    assert seen == []
