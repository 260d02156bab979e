"""Storage as the flow's only writer (owner=, claim=True) and Storage.refresh()."""

from __future__ import annotations

import logging
import time

import pytest

from persistence import models, states
from persistence.atom import Task
from persistence.exceptions import ConfigurationError, Conflict, NotOwner
from persistence.storage import Storage

TTL = 0.6


def _flow(conn, atoms=("first", "second")) -> models.FlowDetail:
    book = models.LogBook("claims")
    fd = models.FlowDetail("flow", f"flow-{time.monotonic_ns()}")
    book.add(fd)
    conn.save_logbook(book)
    with Storage(conn.get_flow_details(fd.uuid), conn.backend) as storage:
        storage.ensure_atoms([Task(name, provides=name) for name in atoms])
    return fd


def _wait(condition, what: str, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_claim_makes_one_storage_the_only_writer(backend, conn):
    fd = _flow(conn)
    a = Storage(conn.get_flow_details(fd.uuid), backend, owner="engine-a", claim=True, ttl=TTL)
    try:
        assert a.claim.owner == "engine-a" and a.owner == "engine-a"
        with pytest.raises(NotOwner) as info:
            Storage(conn.get_flow_details(fd.uuid), backend, owner="engine-b", claim=True)
        assert "engine-a" in str(info.value)
        # Renewed in the background: still held (and writable) well after its ttl.
        _wait(lambda: conn.get_claim(fd.uuid).expires_at > a.claim.claimed_at + 2 * TTL,
              "two renewals")
        a.save("first", 1)
        assert conn.get_claim(fd.uuid).owner == "engine-a"
    finally:
        a.close()
    assert conn.get_claim(fd.uuid) is None            # released on close
    with Storage(conn.get_flow_details(fd.uuid), backend, owner="engine-b", claim=True) as b:
        assert b.get("first") == 1 and b.claim.taken_over_from is None


def test_a_storage_that_lost_its_claim_writes_nothing(backend, conn):
    fd = _flow(conn)
    a = Storage(conn.get_flow_details(fd.uuid), backend, owner="engine-a", claim=True, ttl=TTL)
    try:
        conn.release_flow(fd.uuid, "engine-a")        # as if it had expired ...
        conn.claim_flow(fd.uuid, "engine-b", 60)      # ... and been taken over
        _wait(lambda: not a._writes.keeper.held, "the renewal to find the claim gone")
        with pytest.raises(NotOwner) as info:
            a.save("first", "from a")
        assert "engine-b" in str(info.value)
        assert a.get_atom_state("first") == states.PENDING   # in memory: as before
        stored = {ad.name: ad for ad in conn.get_flow_details(fd.uuid)}
        assert stored["first"].state == states.PENDING and stored["first"].results is None
    finally:
        a.close()                                     # does not release engine-b's claim
    assert conn.get_claim(fd.uuid).owner == "engine-b"


def test_an_expired_claim_is_taken_over_and_the_flow_reloaded(backend, conn, caplog):
    fd = _flow(conn)
    stale = conn.get_flow_details(fd.uuid)            # loaded before the last writes
    with Storage(conn.get_flow_details(fd.uuid), backend) as writer:
        writer.save("first", "written by the dead engine")
    conn.claim_flow(fd.uuid, "dead-engine", 0.3)      # never renewed: it died
    _wait(lambda: conn.get_claim(fd.uuid) is None, "the claim to expire")
    with caplog.at_level(logging.WARNING, logger="persistence"):
        with Storage(stale, backend, owner="engine-b", claim=True) as b:
            assert b.claim.taken_over_from == "dead-engine"
            assert b.get("first") == "written by the dead engine"   # reloaded
            b.save("second", 2)                        # at current revisions: no Conflict
    assert "took over" in caplog.text and "dead-engine" in caplog.text
    assert {ad.name: ad.results for ad in conn.get_flow_details(fd.uuid)}["second"] == 2


def test_conflict_surfaces_unchanged_and_refresh_reloads(backend, conn):
    fd = _flow(conn)
    a = Storage(conn.get_flow_details(fd.uuid), backend)
    b = Storage(conn.get_flow_details(fd.uuid), backend)
    try:
        a.save("first", "a")
        with pytest.raises(Conflict) as info:
            b.save("first", "b")
        assert info.value.expected is not None and info.value.found is not None
        assert b.get_atom_state("first") == states.PENDING   # the failed write left nothing
        flow = b.refresh()
        assert flow is b.flow_detail and b.get("first") == "a"
        b.save("second", "b")
        a.refresh()
        assert a.get("second") == "b"
    finally:
        a.close()
        b.close()


def test_claim_needs_an_owner_and_a_policy_that_writes(backend, conn):
    fd = _flow(conn)
    with pytest.raises(ConfigurationError):
        Storage(conn.get_flow_details(fd.uuid), backend, claim=True)
    with pytest.raises(ConfigurationError):
        Storage(conn.get_flow_details(fd.uuid), backend, owner="x", claim=True, policy="never")
    with pytest.raises(ValueError):
        Storage(conn.get_flow_details(fd.uuid), backend, owner="")
    assert conn.get_claim(fd.uuid) is None
