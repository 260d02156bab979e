"""ZooKeeper: writes whose answer is lost when a server dies are resolved, not failed.

A writer updates atoms back to back (the engine's hot path, one versioned
``setData`` each, or a mark and the result sent behind it before its answer)
and saves flow details (multi-op transactions) on a real
3-node ensemble on loopback while the leader is SIGKILLed.  Every write must
succeed (the backend finds out whether an unanswered write went through and
sends it again only if it did not), and afterwards each record's revision is
exactly its number of acknowledged writes: nothing applied twice, nothing lost.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

import pytest

import persistence
from persistence import states
from tests.conftest import unavailable
from tests.fixtures import _zkserver

pytest.importorskip("kazoo")

ATOMS = 4
WRITES_AFTER_KILL = 150


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_writes_in_flight_when_the_leader_dies_are_applied_exactly_once(tmp_path, caplog):
    why = _zkserver.missing()
    if why:
        unavailable(why)
    caplog.set_level(logging.INFO, logger="persistence.backends.zookeeper")
    with _zkserver.ensemble(str(tmp_path), tick_ms=500) as servers:
        conf = {"connection": "zookeeper", "hosts": ",".join(s.hosts for s in servers),
                "path": "/lost-answers", "timeout": 10}
        with persistence.backend(conf) as be, be.get_connection() as conn:
            book = persistence.LogBook("lost answers")
            fd = persistence.FlowDetail("flow", str(uuid.uuid4()))
            for n in range(ATOMS):
                fd.add(persistence.TaskDetail(f"task-{n}", str(uuid.uuid4())))
            book.add(fd)
            conn.save_logbook(book)
            writes = {ad.uuid: 1 for ad in fd}   # revision 1: created
            writes[fd.uuid] = 1
            done = threading.Event()
            count = [0]
            errors: list[BaseException] = []

            def writer() -> None:
                atoms = list(fd)
                try:
                    while not done.is_set():
                        step = count[0]
                        if step % 10 == 9:        # a multi-op save now and then
                            fd.meta["step"] = step
                            atoms[0].put(states.SUCCESS, step)
                            conn.update_flow_details(fd)
                            writes[fd.uuid] += 1
                            writes[atoms[0].uuid] += 1
                        elif step % 2:
                            ad = atoms[step % ATOMS]
                            ad.put(states.SUCCESS, step)
                            conn.update_atom_details(ad)
                            writes[ad.uuid] += 1
                        else:   # a mark, and the result sent behind it unanswered
                            ad = atoms[step % ATOMS]
                            ad.state = states.RUNNING
                            conn.update_atom_details_nowait(ad)
                            ad.put(states.SUCCESS, step)
                            conn.update_atom_details(ad)
                            writes[ad.uuid] += 2
                        count[0] += 1
                except BaseException as err:  # reported below
                    errors.append(err)

            thread = threading.Thread(target=writer, daemon=True)
            thread.start()
            try:
                deadline = time.monotonic() + 60
                while count[0] < 100 and not errors and time.monotonic() < deadline:
                    time.sleep(0.01)
                next(s for s in servers if s.mode() == "leader").kill()
                target = count[0] + WRITES_AFTER_KILL
                deadline = time.monotonic() + 90
                while count[0] < target and not errors and time.monotonic() < deadline:
                    time.sleep(0.01)
            finally:
                done.set()
                thread.join(timeout=60)
            assert errors == [], errors
            assert count[0] >= target

            with persistence.backend(conf) as fresh, fresh.get_connection() as reader:
                stored = reader.get_flow_details(fd.uuid)
                assert stored.revision == writes[fd.uuid]
                assert stored.meta == fd.meta
                for ad in stored:
                    assert ad.revision == writes[ad.uuid], ad.name
                    assert ad.results == fd.find(ad.uuid).results
    lost = caplog.text.count("was lost; it was")
    applied = caplog.text.count("was lost; it was applied")
    print(f"\n{count[0]} writes; {lost} answers lost, of which {applied} found applied")
