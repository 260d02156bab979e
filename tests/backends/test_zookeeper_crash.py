"""ZooKeeper backend: a save split over many transactions, SIGKILLed half-way.

A child process saves a logbook far larger than one request (tiny
``max_request_bytes`` makes it hundreds of transactions) and is killed with
SIGKILL while the atoms, then while the flow's links, are being written.
Afterwards no reader sees the logbook or the flow, every atom is either
absent or whole, and saving the logbook again completes it without leaving
parts of the dead writer behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

import persistence
from persistence import states
from persistence.exceptions import NotFound
from persistence.models import encoding
from persistence.testing._support import same_atom, same_book

pytest.importorskip("kazoo")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMALL = {"chunk_size": 1000, "max_request_bytes": 5096}

_CHILD = """
import sys
import persistence
from tests.backends.test_zookeeper_crash import build_book, SMALL
hosts, root, atoms, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
be = persistence.fetch({"connection": "zookeeper", "hosts": hosts, "path": root,
                        "timeout": 30, **SMALL})
with be.get_connection() as conn:
    conn.save_logbook(build_book(atoms, size))
print("saved", flush=True)
"""


def build_book(atoms: int, size: int) -> persistence.LogBook:
    """The same logbook (same uuids and values) in every process."""
    book = persistence.LogBook("crash", uuid=f"crash-book-{atoms}-{size}")
    fd = persistence.FlowDetail("flow", f"crash-flow-{atoms}-{size}")
    for i in range(atoms):
        ad = persistence.TaskDetail(f"task-{i}", f"crash-atom-{i}")
        ad.put(states.SUCCESS, f"{i}:" + "z" * size)
        fd.add(ad)
    book.add(fd)
    return book


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 60.0) -> bool:
    """SIGKILL ``proc`` as soon as ``ready()``; False if it finished first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if ready():
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            return True
        time.sleep(0.002)
    proc.kill()
    proc.wait(timeout=30)
    raise AssertionError("the writer made no visible progress within the time limit")


@pytest.mark.slow
@pytest.mark.parametrize("phase, atoms, size", [("atoms", 300, 1500), ("links", 1500, 40)])
def test_killed_save_exposes_nothing_incomplete(zookeeper_backend_factory, zookeeper_hosts,
                                               zookeeper_admin, phase, atoms, size):
    be = zookeeper_backend_factory(**SMALL)
    atom_dir, flow_dir = f"{be.path}/atom_details", f"{be.path}/flow_details"
    if phase == "atoms":
        def ready() -> bool:
            return len(zookeeper_admin.get_children(atom_dir)) >= atoms // 3
    else:
        def ready() -> bool:
            return bool(zookeeper_admin.get_children(flow_dir))
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, zookeeper_hosts, be.path,
                             str(atoms), str(size)], cwd=ROOT, stdout=subprocess.PIPE)
    killed = _kill_when(proc, ready)
    proc.stdout.close()
    if not killed:
        pytest.fail(f"the writer finished before it could be killed in phase {phase!r}")
    expected = build_book(atoms, size)
    fd = next(iter(expected))
    if phase == "links":
        # Killed while the flow's links were written: its znode exists, still empty.
        links, stat = zookeeper_admin.get_children(f"{flow_dir}/{fd.uuid}", include_data=True)
        assert stat.dataLength == 0 and len(links) < atoms
    with be.get_connection() as conn:
        assert list(conn.get_logbooks()) == []
        for read in (conn.get_logbook, conn.get_flows_for_book):
            with pytest.raises(NotFound):
                read(expected.uuid)
        for read in (conn.get_flow_details, conn.get_atoms_for_flow):
            with pytest.raises(NotFound):
                read(fd.uuid)
        whole = 0
        for ad in fd:
            try:
                got = conn.get_atom_details(ad.uuid)
            except NotFound:
                continue
            same_atom(got, ad)
            whole += 1
        if phase == "atoms":
            # The kill may land between creating a znode (empty: "being written")
            # and setting its data, so count what is stored rather than the children.
            stored = sum(1 for name in zookeeper_admin.get_children(atom_dir)
                         if zookeeper_admin.exists(f"{atom_dir}/{name}").dataLength > 0)
            assert whole == stored > 0
        else:
            assert whole >= atoms
        # Saving again (fresh objects, as after a restart) completes the logbook.
        again = build_book(atoms, size)
        conn.save_logbook(again)
    with be.get_connection() as conn:
        same_book(conn.get_logbook(expected.uuid), again)
    if phase == "atoms":
        record = len(encoding.encode_record(
            encoding.atom_record(next(iter(fd)), None), next(iter(fd))))
        per_atom = -(-record // SMALL["chunk_size"])
        parts = sum(len(zookeeper_admin.get_children(f"{atom_dir}/{ad.uuid}/.chunks"))
                    for ad in fd)
        assert parts == per_atom * atoms  # no parts of the killed writer left
