"""Contract part 4: flow ownership (claims) and writers on several backend instances.

Expiry tests wait (bounded) for a short claim to lapse by the store's clock;
nothing asserts how long anything takes.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import pytest

from ..backends.base import Backend
from ..exceptions import Conflict, NotFound, NotOwner, PersistenceError
from ..models import states
from ..models.claim import Claim
from ..models.records import TaskDetail
from ._support import needs, reopen
from .samples import make_book, new_uuid

SHORT_TTL = 0.5
LONG_TTL = 60.0
RACERS = 6


def _saved_flow(conn) -> str:
    book = make_book(flows=1, atoms=2)
    conn.save_logbook(book)
    return next(iter(book)).uuid


def _wait_expired(conn, flow_uuid: str, limit: float = 30.0) -> None:
    """Wait until the store says the claim on ``flow_uuid`` has lapsed (at most ``limit`` s)."""
    deadline = time.monotonic() + limit
    while conn.get_claim(flow_uuid) is not None:
        assert time.monotonic() < deadline, "a claim did not expire within its ttl and 30 s"
        time.sleep(0.05)


@contextlib.contextmanager
def twin(backend: Backend) -> Iterator[Backend]:
    """A second backend *instance* on the same store (as another process would build
    from the same configuration), or ``backend`` itself where no second instance can
    reach its store (a private in-memory store)."""
    book = make_book(flows=0)
    with reopen(backend) as conn:
        conn.save_logbook(book)
    try:
        other = type(backend)(backend.conf)
    except Exception:  # built from more than its conf (an engine or client passed in)
        yield backend
        return
    try:
        try:
            with reopen(other) as conn:
                shared = any(b.uuid == book.uuid for b in conn.get_logbooks(lazy=True))
        except PersistenceError:  # an empty store of its own: not even set up
            shared = False
        yield other if shared else backend
    finally:
        other.close()


class ClaimsContract:
    """At most one live owner per flow detail; expired claims are taken over, visibly."""

    @needs("claims")
    def test_claim_is_seen_by_other_connections(self, backend, conn):
        flow = _saved_flow(conn)
        claim = conn.claim_flow(flow, "engine-a", LONG_TTL)
        assert isinstance(claim, Claim)
        assert (claim.flow_uuid, claim.owner, claim.ttl) == (flow, "engine-a", LONG_TTL)
        assert claim.taken_over_from is None and claim.expires_at > claim.claimed_at
        with reopen(backend) as other:
            seen = other.get_claim(flow)
        assert seen is not None and seen.owner == "engine-a"
        assert seen.taken_over_from is None

    @needs("claims")
    def test_live_claim_of_another_owner_is_refused(self, backend, conn):
        flow = _saved_flow(conn)
        conn.claim_flow(flow, "engine-a", LONG_TTL)
        with reopen(backend) as other:
            with pytest.raises(NotOwner) as info:
                other.claim_flow(flow, "engine-b", LONG_TTL)
            assert "engine-a" in str(info.value)
            with pytest.raises(NotOwner):
                other.renew_claim(flow, "engine-b", LONG_TTL)
            with pytest.raises(NotOwner):
                other.release_flow(flow, "engine-b")
        assert conn.get_claim(flow).owner == "engine-a"

    @needs("claims")
    def test_owner_may_claim_again_and_renew(self, backend, conn):
        flow = _saved_flow(conn)
        first = conn.claim_flow(flow, "engine-a", LONG_TTL)
        again = conn.claim_flow(flow, "engine-a", LONG_TTL)
        assert again.owner == "engine-a" and again.expires_at >= first.expires_at
        renewed = conn.renew_claim(flow, "engine-a", 2 * LONG_TTL)
        assert renewed.ttl == 2 * LONG_TTL and renewed.expires_at > first.expires_at
        assert conn.renew_claim(flow, "engine-a").ttl == 2 * LONG_TTL

    @needs("claims")
    def test_release_lets_another_owner_claim(self, backend, conn):
        flow = _saved_flow(conn)
        conn.release_flow(flow, "engine-a")          # nothing to release: fine
        conn.claim_flow(flow, "engine-a", LONG_TTL)
        conn.release_flow(flow, "engine-a")
        assert conn.get_claim(flow) is None
        with pytest.raises(NotOwner):
            conn.renew_claim(flow, "engine-a")
        with reopen(backend) as other:
            claim = other.claim_flow(flow, "engine-b", LONG_TTL)
        assert claim.owner == "engine-b" and claim.taken_over_from is None

    @needs("claims")
    def test_expired_claim_is_taken_over_and_the_takeover_recorded(self, backend, conn):
        flow = _saved_flow(conn)
        conn.claim_flow(flow, "engine-a", SHORT_TTL)
        _wait_expired(conn, flow)
        with reopen(backend) as other:
            claim = other.claim_flow(flow, "engine-b", LONG_TTL)
        assert claim.owner == "engine-b"
        assert claim.taken_over_from == "engine-a" and claim.taken_over_at is not None
        seen = conn.get_claim(flow)
        assert (seen.owner, seen.taken_over_from) == ("engine-b", "engine-a")
        with pytest.raises(NotOwner):
            conn.renew_claim(flow, "engine-a")
        with pytest.raises(NotOwner):
            conn.release_flow(flow, "engine-a")
        assert conn.get_claim(flow).owner == "engine-b"

    @needs("claims")
    def test_expired_claim_nobody_took_can_be_renewed_by_its_owner(self, backend, conn):
        flow = _saved_flow(conn)
        conn.claim_flow(flow, "engine-a", SHORT_TTL)
        _wait_expired(conn, flow)
        claim = conn.renew_claim(flow, "engine-a", LONG_TTL)
        assert claim.owner == "engine-a" and conn.get_claim(flow).owner == "engine-a"

    @needs("claims")
    def test_claims_need_an_existing_flow_and_valid_arguments(self, backend, conn):
        with pytest.raises(NotFound):
            conn.claim_flow(new_uuid(), "engine-a", LONG_TTL)
        flow = _saved_flow(conn)
        for owner in ("", "x" * 256, None, 7):
            with pytest.raises((TypeError, ValueError)):
                conn.claim_flow(flow, owner, LONG_TTL)
        for ttl in (0, -1, float("nan"), float("inf"), "10", True):
            with pytest.raises((TypeError, ValueError)):
                conn.claim_flow(flow, "engine-a", ttl)
        with pytest.raises(ValueError):
            conn.claim_flow("../escape", "engine-a", LONG_TTL)
        assert conn.get_claim(flow) is None
        assert conn.get_claim(new_uuid()) is None

    @needs("claims")
    def test_racing_owners_exactly_one_wins(self, backend, conn):
        flow = _saved_flow(conn)
        barrier = threading.Barrier(RACERS)
        won, lost, errors = [], [], []

        def race(k: int, be: Backend) -> None:
            try:
                with reopen(be) as mine:
                    barrier.wait(timeout=30)
                    try:
                        won.append(mine.claim_flow(flow, f"engine-{k}", LONG_TTL).owner)
                    except NotOwner:
                        lost.append(k)
            except Exception as err:  # reported below
                errors.append(err)

        with twin(backend) as other:
            threads = [threading.Thread(target=race, args=(k, (backend, other)[k % 2]))
                       for k in range(RACERS)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=120)
            assert not errors, errors
            assert len(won) == 1 and len(lost) == RACERS - 1
            # (Inside the block: a ZooKeeper claim lives as long as its client's session.)
            assert conn.get_claim(flow).owner == won[0]

    # -- several backend instances on one store (as several processes) -----
    def test_stale_copy_from_another_instance_conflicts(self, backend, conn):
        book = make_book(flows=1, atoms=1)
        conn.save_logbook(book)
        atom = next(ad for fd in book for ad in fd if isinstance(ad, TaskDetail))
        with twin(backend) as other, reopen(other) as b:
            stale = b.get_atom_details(atom.uuid)
            with reopen(backend) as a:
                fresh = a.get_atom_details(atom.uuid)
                fresh.put(states.SUCCESS, "first")
                a.update_atom_details(fresh)
            stale.put(states.SUCCESS, "second")
            with pytest.raises(Conflict) as info:
                b.update_atom_details(stale)
            assert (info.value.expected, info.value.found) == (stale.revision, fresh.revision)
        with reopen(backend) as check:
            assert check.get_atom_details(atom.uuid).results == "first"

    def test_record_loaded_through_one_instance_writes_conditionally_through_another(
            self, backend, conn):
        """"Came from the backend" means from the same store, whichever backend object
        of this process loaded it: its write is checked against its revision."""
        book = make_book(flows=1, atoms=1)
        conn.save_logbook(book)
        flow_uuid = next(iter(book)).uuid
        with twin(backend) as other:
            with reopen(backend) as a:
                loaded = a.get_flow_details(flow_uuid)
            with reopen(other) as b:
                newer = b.get_flow_details(flow_uuid)
                newer.meta["by"] = "newer"
                b.update_flow_details(newer)
                loaded.meta["by"] = "stale"
                with pytest.raises(Conflict):
                    b.update_flow_details(loaded)
        with reopen(backend) as check:
            assert check.get_flow_details(flow_uuid).meta["by"] == "newer"

    def test_unchanged_atoms_loaded_elsewhere_are_not_rewritten(self, backend, conn):
        book = make_book(flows=1, atoms=2)
        conn.save_logbook(book)
        flow_uuid = next(iter(book)).uuid
        with twin(backend) as other:
            with reopen(other) as b:
                loaded = b.get_flow_details(flow_uuid)
            with reopen(backend) as a:
                revisions = {ad.uuid: ad.revision for ad in loaded}
                loaded.state = states.RUNNING
                a.update_flow_details(loaded)
                got = a.get_flow_details(flow_uuid)
        assert got.state == states.RUNNING
        assert {ad.uuid: ad.revision for ad in got} == revisions
