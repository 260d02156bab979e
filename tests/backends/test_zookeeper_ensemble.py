"""ZooKeeper backend on a real 3-node ensemble (loopback ports, own myid files).

A writer streams saves and updates while the leader is SIGKILLed: every
write the backend acknowledged is readable afterwards.  Then a second node
is killed: with no quorum left, writes and reads fail with a clear
StorageFailure after the configured timeout instead of hanging.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest

import persistence
from persistence import states
from persistence.exceptions import StorageFailure
from tests.conftest import unavailable
from tests.fixtures import _zkserver

pytest.importorskip("kazoo")

TIMEOUT = 4.0  # the backend's per-request bound
ATOMS = 5


class _Writer(threading.Thread):
    """Alternates new logbooks and atom updates; records what was acknowledged."""

    def __init__(self, be: persistence.Backend, fd: persistence.FlowDetail) -> None:
        super().__init__(daemon=True)
        self.be, self.fd = be, fd
        self.stop = threading.Event()
        self.acked_books: list[str] = []
        self.failed = 0
        # atom uuid -> [(value, acknowledged)] in the order written
        self.history: dict[str, list[tuple[int, bool]]] = {ad.uuid: [] for ad in fd}
        self.errors: list[BaseException] = []

    @property
    def acked(self) -> int:
        return len(self.acked_books) + sum(ok for h in self.history.values() for _, ok in h)

    def run(self) -> None:
        atoms = list(self.fd)
        step = 0
        try:
            with self.be.get_connection() as conn:
                while not self.stop.is_set():
                    step += 1
                    if step % 2:
                        self._save_book(conn, step)
                    else:
                        atoms = self._update_atom(conn, atoms, step)
        except BaseException as err:  # reported in the test's thread
            self.errors.append(err)

    def _save_book(self, conn, step: int) -> None:
        book = persistence.LogBook(f"book-{step}")
        fd = persistence.FlowDetail("flow", str(uuid.uuid4()))
        fd.add(persistence.TaskDetail("task", str(uuid.uuid4())))
        book.add(fd)
        try:
            conn.save_logbook(book)
        except StorageFailure:
            self.failed += 1
            return
        self.acked_books.append(book.uuid)

    def _update_atom(self, conn, atoms, step: int):
        i = (step // 2) % len(atoms)
        ad = atoms[i]
        ad.put(states.SUCCESS, step)
        try:
            conn.update_atom_details(ad)
        except StorageFailure:
            # Outcome unknown (it may have been applied): note it, reload, go on.
            self.failed += 1
            self.history[ad.uuid].append((step, False))
            atoms[i] = self._reload(conn, ad.uuid)
            return atoms
        self.history[ad.uuid].append((step, True))
        return atoms

    def _reload(self, conn, atom_uuid: str):
        deadline = time.monotonic() + 60
        while True:
            try:
                return conn.get_atom_details(atom_uuid)
            except StorageFailure:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_acknowledged_writes_survive_a_killed_node_and_no_quorum_fails_cleanly(tmp_path):
    why = _zkserver.missing()
    if why:
        unavailable(why)
    with _zkserver.ensemble(str(tmp_path)) as servers:
        hosts = ",".join(s.hosts for s in servers)
        conf = {"connection": "zookeeper", "hosts": hosts, "path": "/ensemble",
                "timeout": TIMEOUT}
        with persistence.backend(conf) as be:
            book = persistence.LogBook("stream")
            fd = persistence.FlowDetail("flow", str(uuid.uuid4()))
            for n in range(ATOMS):
                fd.add(persistence.TaskDetail(f"task-{n}", str(uuid.uuid4())))
            book.add(fd)
            with be.get_connection() as conn:
                conn.save_logbook(book)

            writer = _Writer(be, fd)
            writer.start()
            try:
                _wait_for(lambda: writer.acked >= 40 or writer.errors, 60, "40 writes")
                leader = next(s for s in servers if s.mode() == "leader")
                before = writer.acked
                leader.kill()  # mid-stream: writes are in flight
                _wait_for(lambda: writer.acked >= before + 40 or writer.errors, 90,
                          "40 writes after the leader was killed")
            finally:
                writer.stop.set()
                writer.join(timeout=90)
            assert not writer.is_alive()
            assert writer.errors == []

            # Every acknowledged write is there (read through a fresh backend).
            with persistence.backend(conf) as fresh, fresh.get_connection() as conn:
                for book_uuid in writer.acked_books:
                    assert conn.get_logbook(book_uuid).uuid == book_uuid
                for atom_uuid, history in writer.history.items():
                    stored = conn.get_atom_details(atom_uuid).results
                    acked_at = [k for k, (_, ok) in enumerate(history) if ok]
                    if not acked_at:
                        continue
                    # The last acknowledged value, or a later one whose outcome was unknown.
                    allowed = {value for value, _ in history[acked_at[-1]:]}
                    assert stored in allowed, (atom_uuid, stored, history[-5:])

            # Kill a second node: no quorum.  Every write fails, clearly and in bounded
            # time (the backend's timeout; pytest's timeout would catch a hang).  A
            # read may still be served by the survivor until it notices (ZooKeeper
            # serves reads locally), or fail the same way: it never hangs either.
            with be.get_connection() as conn:
                next(s for s in servers if s.running()).kill()
                for attempt in range(2):
                    with pytest.raises(StorageFailure) as info:
                        conn.save_logbook(persistence.LogBook(f"after quorum loss {attempt}"))
                    assert hosts in str(info.value)
                try:
                    assert conn.get_atom_details(next(iter(fd)).uuid).uuid
                except StorageFailure as err:
                    assert hosts in str(err)
            assert writer.acked_books and writer.history
