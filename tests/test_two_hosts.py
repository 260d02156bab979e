"""Resuming on a peer machine: two hosts (network namespaces), real engines, real servers.

Host A and host B are network namespaces joined to a server namespace by
veth pairs on a bridge (:mod:`tests.resumption.netns`); a PostgreSQL of the
test's own and a 3-node ZooKeeper ensemble listen there.  Each host runs the
reference engine (:mod:`tests.resumption.host`) in real processes, as the
flow's claimed owner.  For PostgreSQL and ZooKeeper alike:

* A is SIGKILLed at a random point of the flow (once a random number of
  tasks has started, a random fraction of a task later); B resumes the same
  logbook: no task whose result was stored runs again, and the results equal
  an uninterrupted run's.  Twenty times.
* A and B start on the same flow at the same instant: exactly one runs it,
  the other is refused (NotOwner) and exits cleanly.  Twenty times.

Then faults while one engine runs: PostgreSQL restarted, and the ZooKeeper
leader SIGKILLed; the run completes, every task ran once, and every atom was
written exactly as many times as in an undisturbed run (no result lost, none
written twice).  Traffic goes only to the namespaces' addresses; everything
is torn down at the end, also after a failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from typing import Any

import pytest
import sqlalchemy as sa

import persistence
from persistence import models, states
from persistence.storage import Storage
from persistence.tools.demo import COUNT, build_flow
from persistence.tools.engine import Engine
from tests.conftest import unavailable
from tests.fixtures import _zkserver
from tests.resumption import netns
from tests.resumption.host import REFUSED
from tests.resumption.servers import PostgreSQL, postgres_missing

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPEATS = 20
TTL = 1.5            # claims of the kill/start-together scenarios: B waits this out
DELAY = 0.04         # seconds each task takes
TASKS = [task.name for task in build_flow()]
BACKENDS = ["postgresql", "zookeeper"]


class Host:
    """One host: an agent process in a namespace that forks engine runs on request."""

    def __init__(self, name: str, prefix: tuple[str, ...], workdir: str) -> None:
        self.name, self.workdir = name, workdir
        env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = subprocess.Popen([*prefix, sys.executable, "-m", "tests.resumption.host"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     cwd=REPO, env=env)
        self._read()  # {"ready": pid}

    def _read(self) -> dict[str, Any]:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"host {self.name} stopped (exit {self.proc.poll()})")
        return json.loads(line)

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def run(self, log: str, **args: Any) -> int:
        return self._ask({"cmd": "run", "log": log, **args})["pid"]

    def wait(self, pid: int) -> tuple[int | None, int | None]:
        reply = self._ask({"cmd": "wait", "pid": pid})
        return reply["code"], reply["signal"]

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


class Lab:
    """The network, the servers, the two hosts and the test's own backends."""

    def __init__(self, net: netns.Network, pg: PostgreSQL, zk: list[_zkserver.ZkServer],
                 a: Host, b: Host, workdir: str) -> None:
        self.net, self.pg, self.zk, self.a, self.b, self.workdir = net, pg, zk, a, b, workdir
        self.confs = {
            "postgresql": {"connection": pg.url("flows")},
            "zookeeper": {"connection": "zookeeper", "hosts": ",".join(s.hosts for s in zk),
                          "path": "/two-hosts", "timeout": 10},
        }
        self.backends: dict[str, persistence.Backend] = {}

    def backend(self, kind: str) -> persistence.Backend:
        if kind not in self.backends:
            be = persistence.fetch(self.confs[kind])
            with be.get_connection() as conn:
                conn.upgrade()
            self.backends[kind] = be
        return self.backends[kind]

    def engine_args(self, kind: str, **extra: Any) -> dict[str, Any]:
        conf = dict(self.confs[kind])
        return {"uri": conf.pop("connection"), "backend_options": conf, **extra}

    def path(self, name: str) -> str:
        return os.path.join(self.workdir, name)


def _missing() -> str | None:
    return netns.missing() or postgres_missing() or _zkserver.missing()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    why = _missing()
    if why:
        unavailable(f"two-host test: {why}")
    workdir = str(tmp_path_factory.mktemp("two-hosts"))
    os.chmod(workdir, 0o777)
    with contextlib.ExitStack() as stack:
        net = netns.Network()
        stack.callback(net.close)
        server = net.exec_prefix(net.server_ns)
        pg = PostgreSQL(server, net.server_ip, net.subnet)
        stack.callback(pg.close)
        pg_started = threading.Thread(target=pg.start)  # while the ensemble starts
        pg_started.start()
        try:
            zk = stack.enter_context(_zkserver.ensemble(os.path.join(workdir, "zk"),
                                                        host=net.server_ip, prefix=server,
                                                        tick_ms=500))
        finally:
            pg_started.join(timeout=120)
        assert pg.running, f"PostgreSQL did not start; see {pg.log}"
        admin = sa.create_engine(pg.admin_url, isolation_level="AUTOCOMMIT",
                                 poolclass=sa.pool.NullPool)
        with admin.connect() as c:
            c.exec_driver_sql("CREATE DATABASE flows")
        admin.dispose()
        a = Host("A", net.exec_prefix(net.a_ns), workdir)
        stack.callback(a.close)
        b = Host("B", net.exec_prefix(net.b_ns), workdir)
        stack.callback(b.close)
        the_lab = Lab(net, pg, zk, a, b, workdir)
        stack.callback(lambda: [be.close() for be in the_lab.backends.values()])
        yield the_lab


# -- helpers -------------------------------------------------------------------
def _reference() -> dict[str, Any]:
    engine = Engine(build_flow(), models.FlowDetail("reference", "reference"), policy="never")
    engine.storage.inject({"count": COUNT})
    return {o.name: o.result for o in engine.run()}


REFERENCE = _reference()


def _new_flow(be: persistence.Backend) -> str:
    book = models.LogBook("two-hosts")
    flow = models.FlowDetail("numbers", str(uuid.uuid4()))
    book.add(flow)
    with be.get_connection() as conn:
        conn.save_logbook(book)
    with Storage(flow, be) as storage:
        storage.inject({"count": COUNT})
    return flow.uuid


def _stored(be: persistence.Backend, flow: str) -> tuple[str | None, dict[str, Any]]:
    with be.get_connection() as conn:
        detail = conn.get_flow_details(flow)
    return detail.state, {ad.name: ad for ad in detail if ad.name in TASKS}


def _stored_when_takeable(be: persistence.Backend, flow: str) -> tuple[str | None, dict]:
    """What is stored once the dead engine's claim has expired: what B finds when it
    takes over.  (Right after the kill, a write A sent before dying may still be on
    its way, and a ZooKeeper follower may lag behind: ``sync`` first.)"""
    with be.get_connection() as conn:
        _wait_for(lambda: conn.get_claim(flow) is None, "the dead engine's claim to expire",
                  poll=0.02)
    if hasattr(be, "client"):
        be.client.sync(be.path)
    return _stored(be, flow)


def _journal(path: str) -> list[tuple[str, int]]:
    if not os.path.exists(path):
        return []
    with open(path) as fh:
        return [(name, int(pid)) for name, pid in (line.split() for line in fh if line.strip())]


def _wait_for(condition, what: str, limit: float = 30.0, log: str | None = None,
              poll: float = 0.002) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}" +
                                 (f"; log:\n{_log(log)}" if log else ""))
        time.sleep(poll)


def _log(path: str) -> str:
    try:
        with open(path) as fh:
            return fh.read()[-3000:]
    except OSError:
        return "(no log)"


def _finished_like_an_uninterrupted_run(be, flow: str) -> None:
    state, atoms = _stored(be, flow)
    assert state == states.SUCCESS
    assert {name: ad.state for name, ad in atoms.items()} == dict.fromkeys(TASKS, states.SUCCESS)
    assert {name: ad.results for name, ad in atoms.items()} == REFERENCE


# -- the scenarios ---------------------------------------------------------------
@pytest.mark.parametrize("kind", BACKENDS)
def test_engine_killed_on_host_a_is_resumed_on_host_b(lab, kind):
    be = lab.backend(kind)
    rng = random.Random()
    seed = rng.randrange(2**32)
    rng.seed(seed)
    report = []
    for rep in range(REPEATS):
        flow = _new_flow(be)
        journal, log_a, log_b = (lab.path(f"{kind}-kill-{rep}.{x}") for x in ("j", "a", "b"))
        pid_a = lab.a.run(log_a, **lab.engine_args(kind, flow=flow, owner=f"A-{rep}",
                                                   ttl=TTL, journal=journal, delay=DELAY))
        started = rng.randint(0, len(TASKS))    # kill once this many tasks have started ...
        _wait_for(lambda pid=pid_a, path=journal, n=started:
                  sum(p == pid for _, p in _journal(path)) >= n,
                  f"{started} tasks to start on host A", log=log_a)
        time.sleep(rng.uniform(0, 1.5 * DELAY))  # ... and a random part of a task later
        os.kill(pid_a, signal.SIGKILL)           # (a zombie until its host reaps it)
        code_a, signal_a = lab.a.wait(pid_a)
        assert signal_a == signal.SIGKILL or code_a == 0, _log(log_a)
        _, after_kill = _stored_when_takeable(be, flow)
        stored = {name for name, ad in after_kill.items() if ad.state == states.SUCCESS}

        pid_b = lab.b.run(log_b, **lab.engine_args(kind, flow=flow, owner=f"B-{rep}", ttl=TTL,
                                                   journal=journal, delay=0.0,
                                                   wait_claim=10 * TTL + 10))
        code_b, _ = lab.b.wait(pid_b)
        context = f"(rep {rep}, seed {seed}, killed after {started} started)\n{_log(log_b)}"
        assert code_b == 0, context
        on_b = Counter(name for name, pid in _journal(journal) if pid == pid_b)
        assert not stored & set(on_b), f"finished tasks ran again on B: {context}"
        assert all(n == 1 for n in on_b.values()), context
        assert set(on_b) == set(TASKS) - stored, context
        _finished_like_an_uninterrupted_run(be, flow)
        report.append((started, len(stored), signal_a is not None))
    killed = sum(k for _, _, k in report)
    print(f"\n{kind}: {len(report)} kills passed ({killed} mid-run), stored before the "
          f"kill: {Counter(n for _, n, _ in report)}")
    assert len(report) == REPEATS


@pytest.mark.parametrize("kind", BACKENDS)
def test_engines_started_together_exactly_one_runs_the_flow(lab, kind):
    be = lab.backend(kind)
    outcomes = Counter()
    for rep in range(REPEATS):
        flow = _new_flow(be)
        go = lab.path(f"{kind}-together-{rep}.go")
        journal = lab.path(f"{kind}-together-{rep}.j")
        logs = {h: lab.path(f"{kind}-together-{rep}.{h}") for h in "ab"}
        # (Tasks take DELAY: the winner still runs the flow when the loser asks.)
        pids = {h: host.run(logs[h], **lab.engine_args(kind, flow=flow, owner=f"{h}-{rep}",
                                                        ttl=TTL, journal=journal, go=go,
                                                        delay=DELAY))
                for h, host in (("a", lab.a), ("b", lab.b))}
        _wait_for(lambda logs=logs: all("waiting for the go" in _log(logs[h]) for h in "ab"),
                  "both hosts to be ready", log=logs["a"])
        open(go, "w").close()
        codes = {"a": lab.a.wait(pids["a"]), "b": lab.b.wait(pids["b"])}
        context = f"(rep {rep}) A: {_log(logs['a'])}\nB: {_log(logs['b'])}"
        assert sorted(code for code, _ in codes.values()) == [0, REFUSED], context
        winner = next(h for h in "ab" if codes[h][0] == 0)
        loser = "b" if winner == "a" else "a"
        assert "refused" in _log(logs[loser]), context
        ran = _journal(journal)
        assert sorted(name for name, _ in ran) == sorted(TASKS), context
        assert {pid for _, pid in ran} == {pids[winner]}, context
        _finished_like_an_uninterrupted_run(be, flow)
        outcomes[winner] += 1
    print(f"\n{kind}: {REPEATS} simultaneous starts, winners {dict(outcomes)}")


# -- faults while running ------------------------------------------------------------
def _revisions(be, flow: str) -> dict[str, int]:
    return {name: ad.revision for name, ad in _stored(be, flow)[1].items()}


def _run_through_a_fault(lab, kind: str, fault, options: dict[str, Any]) -> str:
    """Run a flow on host A with ``fault()`` happening once two tasks have started;
    return the run's log."""
    be = lab.backend(kind)
    # An undisturbed run first: how many times each atom is written.
    calm = _new_flow(be)
    journal, log = lab.path(f"{kind}-calm.j"), lab.path(f"{kind}-calm.log")
    pid = lab.a.run(log, **lab.engine_args(kind, flow=calm, owner="A-calm", ttl=15,
                                           journal=journal))
    assert lab.a.wait(pid) == (0, None), _log(log)
    expected = _revisions(be, calm)

    flow = _new_flow(be)
    journal, log = lab.path(f"{kind}-fault.j"), lab.path(f"{kind}-fault.log")
    args = lab.engine_args(kind, flow=flow, owner="A-fault", ttl=15, journal=journal,
                           delay=0.15)
    args["backend_options"].update(options)
    pid = lab.a.run(log, **args)
    _wait_for(lambda: len(_journal(journal)) >= 2, "two tasks to start")
    fault()
    assert lab.a.wait(pid) == (0, None), _log(log)
    assert Counter(name for name, _ in _journal(journal)) == dict.fromkeys(TASKS, 1)
    _finished_like_an_uninterrupted_run(be, flow)
    assert _revisions(be, flow) == expected          # nothing written twice, nothing lost
    return _log(log)


def test_postgresql_restarted_mid_flow(lab):
    # Retry long enough to outlast a restart (the default gives up after ~1.5 s).
    log = _run_through_a_fault(lab, "postgresql", lab.pg.restart,
                               {"retry_attempts": 60, "retry_backoff": 0.05,
                                "retry_max_backoff": 0.5})
    assert "after a transient failure" in log     # the restart hit the running engine


def test_zookeeper_leader_killed_mid_flow(lab):
    def kill_leader() -> None:
        leader = next(s for s in lab.zk if s.mode() == "leader")
        leader.kill()
    log = _run_through_a_fault(lab, "zookeeper", kill_leader, {})
    assert "Connection dropped" in log            # the engine's client felt it
