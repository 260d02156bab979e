"""Crash tests of the per-atom checkpoint: SIGKILL the engine, or the server, mid-flow.

An engine process runs a flow of atoms in order through :class:`Storage`
(``set_atom_state(RUNNING)``, then ``save(result)``), printing ``running i``
when the RUNNING call returned and ``saved i`` when the save returned.  The
test kills it (or the database/ZooKeeper server under it) at a random point,
then reads the store with a fresh process and checks that it holds a state
some run could have produced:

- every atom whose save returned is SUCCESS with its result (a result is durable
  once ``save`` returns, in both durability modes);
- SUCCESS atoms form a prefix of the flow, then at most one RUNNING atom, then
  PENDING ones: a RUNNING mark written after a result is never older than it,
  and no result is lost while a later mark survives;
- under ``at_most_once=True`` every atom whose RUNNING call returned is RUNNING
  or SUCCESS (the mark was durable before the call returned);
- a resumed engine finishes the flow with every result in place.

The default (at-least-once) mode may lose the RUNNING mark of the atom in
flight; it must never lose or reorder anything else.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid

import pytest

import persistence
from persistence import FlowDetail, LogBook, states
from persistence.atom import Task
from persistence.storage import Storage
from tests.conftest import unavailable
from tests.fixtures import _zkserver
from tests.test_pg_failover import _ppid

ATOMS = 60
ROUNDS = 3

ENGINE = textwrap.dedent("""
    import json, sys
    import persistence
    from persistence import states
    from persistence.storage import Storage

    conf, flow_uuid, atoms, at_most_once = (json.loads(sys.argv[1]), sys.argv[2],
                                            int(sys.argv[3]), sys.argv[4] == "1")
    options = {"at_most_once": True} if at_most_once else {}
    with persistence.backend(conf) as be:
        with be.get_connection() as conn:
            flow = conn.get_flow_details(flow_uuid)
        with Storage(flow, be, **options) as storage:
            for i in range(atoms):
                name = f"t{i:03d}"
                if storage.get_atom_state(name) == states.SUCCESS:
                    continue
                storage.set_atom_state(name, states.RUNNING)
                print(f"running {i}", flush=True)
                storage.save(name, {"i": i})
                print(f"saved {i}", flush=True)
    print("done", flush=True)
""")


def _prepare(conf: dict) -> str:
    """Store a flow of ATOMS pending tasks; its uuid."""
    flow_uuid = str(uuid.uuid4())
    with persistence.backend(conf) as be:
        with be.get_connection() as conn:
            conn.upgrade()
            book, flow = LogBook("crash"), FlowDetail("flow", uuid=flow_uuid)
            book.add(flow)
            conn.save_logbook(book)
        with Storage(flow, be) as storage:
            storage.ensure_atoms([Task(f"t{i:03d}") for i in range(ATOMS)])
    return flow_uuid


def _engine(conf: dict, flow_uuid: str, at_most_once: bool) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", ENGINE, json.dumps(conf), flow_uuid, str(ATOMS),
         "1" if at_most_once else "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _run_until(proc: subprocess.Popen, saves: int, on_kill) -> tuple[set[int], set[int]]:
    """Read the engine's lines until ``saves`` saves returned, then ``on_kill()``;
    (atoms whose RUNNING returned, atoms whose save returned)."""
    running, saved = set(), set()
    for line in proc.stdout:
        word, _, number = line.strip().partition(" ")
        if word == "running":
            running.add(int(number))
        elif word == "saved":
            saved.add(int(number))
            if len(saved) >= saves:
                break
        elif word == "done":
            break
    # A random extra moment so the kill lands anywhere in the next atom's writes.
    time.sleep(random.random() * 0.004)
    on_kill()
    proc.wait(timeout=60)
    return running, saved


def _states(conf: dict, flow_uuid: str) -> list[tuple[str | None, object]]:
    with persistence.backend(conf) as be, be.get_connection() as conn:
        flow = conn.get_flow_details(flow_uuid)
        by_name = {ad.name: ad for ad in flow}
    return [(by_name[f"t{i:03d}"].state, by_name[f"t{i:03d}"].results)
            for i in range(ATOMS)]


def _check(stored: list[tuple[str | None, object]], running: set[int], saved: set[int],
           at_most_once: bool) -> None:
    names = [state for state, _ in stored]
    for i in saved:
        assert stored[i] == (states.SUCCESS, {"i": i}), (i, stored[i])
    done = next((i for i, s in enumerate(names) if s != states.SUCCESS), ATOMS)
    for i in range(done):
        assert stored[i][1] == {"i": i}, (i, stored[i])
    rest = names[done:]
    if rest and rest[0] == states.RUNNING:
        rest = rest[1:]
    assert all(s == states.PENDING for s in rest), names
    if at_most_once:
        for i in running:
            assert names[i] in (states.RUNNING, states.SUCCESS), (i, names[i])


def _resume(conf: dict, flow_uuid: str, at_most_once: bool) -> None:
    proc = _engine(conf, flow_uuid, at_most_once)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and out.rstrip().endswith("done"), err[-2000:]
    assert _states(conf, flow_uuid) == [(states.SUCCESS, {"i": i}) for i in range(ATOMS)]


def _kill_engine_rounds(conf: dict, at_most_once: bool) -> None:
    rng = random.Random(os.getpid())
    for _ in range(ROUNDS):
        flow_uuid = _prepare(conf)
        proc = _engine(conf, flow_uuid, at_most_once)
        running, saved = _run_until(proc, rng.randrange(1, ATOMS - 1),
                                    lambda p=proc: p.send_signal(signal.SIGKILL))
        _check(_states(conf, flow_uuid), running, saved, at_most_once)
        _resume(conf, flow_uuid, at_most_once)


MODES = [pytest.param(False, id="at-least-once"), pytest.param(True, id="at-most-once")]


@pytest.fixture(params=["dir", "sqlite", "postgresql", "mysql", "zookeeper"])
def conf(request, tmp_path, sql_database_factory):
    kind = request.param
    if kind == "dir":
        return {"connection": "dir", "path": str(tmp_path / "store")}
    if kind in ("sqlite", "postgresql", "mysql"):
        return {"connection": sql_database_factory(kind)}
    hosts = request.getfixturevalue("zookeeper_hosts")
    return {"connection": "zookeeper", "hosts": hosts, "timeout": 20,
            "path": f"/persistence-tests/crash-{uuid.uuid4().hex}"}


@pytest.mark.parametrize("at_most_once", MODES)
def test_an_engine_killed_mid_flow_leaves_a_state_some_run_could_have_produced(
        conf, at_most_once):
    _kill_engine_rounds(conf, at_most_once)


# -- the server dies ---------------------------------------------------------------
@pytest.fixture
def zookeeper_server(tmp_path):
    why = _zkserver.missing()
    if why:
        unavailable(why)
    server = _zkserver.ZkServer(str(tmp_path / "zk"), _zkserver.free_ports(1)[0])
    server.start()
    server.wait_serving()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("at_most_once", MODES)
def test_zookeeper_killed_mid_flow_keeps_every_acknowledged_result(
        zookeeper_server, at_most_once):
    conf = {"connection": "zookeeper", "hosts": zookeeper_server.hosts, "timeout": 20,
            "path": "/crash"}
    rng = random.Random(os.getpid())
    for _ in range(ROUNDS):
        flow_uuid = _prepare(conf)
        proc = _engine(conf, flow_uuid, at_most_once)

        def crash(p: subprocess.Popen = proc) -> None:
            zookeeper_server.kill()
            p.send_signal(signal.SIGKILL)

        running, saved = _run_until(proc, rng.randrange(1, ATOMS - 1), crash)
        zookeeper_server.start()
        zookeeper_server.wait_serving()
        _check(_states(conf, flow_uuid), running, saved, at_most_once)
        _resume(conf, flow_uuid, at_most_once)


@pytest.fixture
def postgresql_server():
    from tests.test_pg_failover import _Node, postgres_missing

    why = postgres_missing()
    if why:
        unavailable(why)
    root = tempfile.mkdtemp(prefix="persistence-crash-pg-")   # readable by postgres
    os.chmod(root, 0o755)
    node = _Node(root, "server", _zkserver.free_ports(1)[0])
    node.run("initdb", "-D", node.data, "-U", "postgres", "--auth=trust", "--no-sync",
             "-E", "UTF8")
    with open(os.path.join(node.data, "postgresql.conf"), "a") as fh:
        fh.write("shared_buffers = 16MB\nmax_connections = 20\nfsync = on\n"
                 "synchronous_commit = on\n")
    node.start()
    try:
        yield node
    finally:
        node.stop()
        shutil.rmtree(root, ignore_errors=True)


def _crash(node) -> list[int]:
    """SIGKILL the server's postmaster and all its processes; their pids."""
    pid = node.postmaster_pid()
    victims = [pid, *(int(p) for p in os.listdir("/proc") if p.isdigit() and _ppid(int(p)) == pid)]
    node.crash()
    return victims


def _restart(node, victims: list[int]) -> None:
    """Start the crashed server once its old processes are dead.  A killed postmaster
    whose parent never reaps it stays a zombie, which PostgreSQL's lock-file checks
    take for a live server: the stale lock files go once they are all dead."""
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in victims) and time.monotonic() < deadline:
        time.sleep(0.05)
    stale = [os.path.join(node.data, "postmaster.pid"),
             os.path.join(node.dir, f".s.PGSQL.{node.port}.lock")]
    for path in stale:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    node.start()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("at_most_once", MODES)
def test_postgresql_killed_mid_flow_keeps_every_acknowledged_result(
        postgresql_server, at_most_once):
    node = postgresql_server
    conf = {"connection": f"postgresql+psycopg://postgres@127.0.0.1:{node.port}/postgres",
            "retry_attempts": 1}
    rng = random.Random(os.getpid())
    for _ in range(ROUNDS):
        flow_uuid = _prepare(conf)
        proc = _engine(conf, flow_uuid, at_most_once)

        victims: list[int] = []

        def crash(p: subprocess.Popen = proc, victims: list[int] = victims) -> None:
            victims.extend(_crash(node))
            p.send_signal(signal.SIGKILL)

        running, saved = _run_until(proc, rng.randrange(1, ATOMS - 1), crash)
        _restart(node, victims)
        _check(_states(conf, flow_uuid), running, saved, at_most_once)
        _resume(conf, flow_uuid, at_most_once)


# -- a mark the server lost, the engine alive -------------------------------------
def _roll_back_row(backend, uuid: str, revision: int, state: str) -> None:
    """Put an atom row back to what it was before the last write, as a PostgreSQL
    server that crashed before flushing an asynchronous commit leaves it."""
    import sqlalchemy as sa
    with backend.engine.begin() as conn:
        conn.execute(sa.text("UPDATE atomdetails SET revision = :r, state = :s WHERE uuid = :u"),
                     {"r": revision, "s": state, "u": uuid})


def test_a_lost_mark_does_not_turn_the_result_into_a_conflict(backend_postgresql):
    be = backend_postgresql
    with be.get_connection() as conn:
        book, flow = LogBook("lost"), FlowDetail("flow")
        book.add(flow)
        conn.save_logbook(book)
    with Storage(flow, be) as storage:
        uuid_a, uuid_b = storage.ensure_atoms([Task("a"), Task("b")])
        before = flow.find(uuid_a).revision
        storage.set_atom_state("a", states.RUNNING)          # the mark, not waited for
        _roll_back_row(be, uuid_a, before, states.PENDING)   # ... and lost by the server
        storage.save("a", 1)                                 # written over the old revision
        assert storage.get_atom_state("a") == states.SUCCESS
        # Another writer's change is no lost mark: still a Conflict.
        storage.set_atom_state("b", states.RUNNING)
        other = Storage(be.get_connection().get_flow_details(flow.uuid), be)
        other.save("b", "theirs")
        with pytest.raises(persistence.exceptions.Conflict):
            storage.save("b", "ours")
        other.close()
    with be.get_connection() as conn:
        stored = {ad.name: (ad.state, ad.results) for ad in conn.get_flow_details(flow.uuid)}
    assert stored == {"a": (states.SUCCESS, 1), "b": (states.SUCCESS, "theirs")}
