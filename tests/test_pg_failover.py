"""PostgreSQL failover mid-flow: a primary SIGKILLed, its synchronous standby promoted.

The test builds its own pair on loopback (never the machine's main cluster):
``initdb`` a primary with synchronous replication to ``standby1``,
``pg_basebackup -R`` a standby from it, both on free ports.  An engine writes
through a multi-host URI (``host=primary&host=standby&target_session_attrs=
read-write``) while another thread SIGKILLs the primary's postmaster and
promotes the standby.  Then:

- the engine finishes its flow on the promoted server after transient errors
  (the backend retries them on a fresh connection, which psycopg opens on the
  first host that accepts writes);
- every write the engine saw acknowledged is on the promoted server — under
  ``at_most_once=True``; by default an atom's RUNNING mark commits without
  waiting for the standby, so the one in flight at the kill may be lost, and
  the atom's result is then written over the revision before it;
- no atom result was written twice: each atom's revision is exactly the number
  of writes the engine made to it, less a lost mark (a commit whose answer was
  lost is found by its transaction id and not applied again);
- a second engine, given the promoted server alone, resumes the flow and finds
  every atom done.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import pytest

import persistence
from persistence import FlowDetail, LogBook, states
from persistence.atom import Task
from persistence.storage import Storage
from tests.conftest import unavailable
from tests.fixtures._zkserver import free_ports
from tests.resumption.servers import _bindir, postgres_missing

ATOMS = 240


class _Node:
    """One PostgreSQL server of the pair, run as the postgres user."""

    def __init__(self, root: str, name: str, port: int) -> None:
        self.bindir = _bindir()
        self.dir = os.path.join(root, name)
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "server.log")
        self.port = port
        os.makedirs(self.dir)
        user = pwd.getpwnam("postgres")
        os.chown(self.dir, user.pw_uid, user.pw_gid)

    def run(self, tool: str, *args: str, timeout: float = 120) -> None:
        done = subprocess.run(["runuser", "-u", "postgres", "--",
                               os.path.join(self.bindir, tool), *args],
                              capture_output=True, text=True, timeout=timeout, cwd=self.dir)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed: {done.stdout}{done.stderr}{self.log_tail()}")

    def log_tail(self) -> str:
        try:
            with open(self.log) as fh:
                return "".join(fh.readlines()[-15:])
        except OSError:
            return ""

    def start(self) -> None:
        self.run("pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60",
                 "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1", "start")

    def postmaster_pid(self) -> int:
        with open(os.path.join(self.data, "postmaster.pid")) as fh:
            return int(fh.readline())

    def crash(self) -> None:
        """SIGKILL the postmaster and every process of it, as a dying machine would (a
        postmaster killed alone leaves its backends serving their sessions)."""
        pid = self.postmaster_pid()
        children = [int(p) for p in os.listdir("/proc") if p.isdigit() and _ppid(int(p)) == pid]
        for victim in [pid, *children]:
            try:
                os.kill(victim, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            subprocess.run(["runuser", "-u", "postgres", "--",
                            os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-m",
                            "immediate", "stop"], capture_output=True, timeout=60)


@pytest.fixture
def pair():
    """(primary, standby): a primary replicating synchronously to a hot standby."""
    why = postgres_missing()
    if why:
        unavailable(why)
    root = tempfile.mkdtemp(prefix="persistence-failover-")
    os.chmod(root, 0o755)
    p_port, s_port = free_ports(2)
    primary, standby = _Node(root, "primary", p_port), _Node(root, "standby", s_port)
    try:
        primary.run("initdb", "-D", primary.data, "-U", "postgres", "--auth=trust",
                    "--no-sync", "-E", "UTF8")
        with open(os.path.join(primary.data, "postgresql.conf"), "a") as fh:
            fh.write("wal_level = replica\nmax_wal_senders = 4\nhot_standby = on\n"
                     "synchronous_standby_names = 'standby1'\nsynchronous_commit = on\n"
                     "shared_buffers = 16MB\nmax_connections = 40\nfsync = on\n")
        with open(os.path.join(primary.data, "pg_hba.conf"), "a") as fh:
            fh.write("host replication all 127.0.0.1/32 trust\n")
        primary.start()
        standby.run("pg_basebackup", "-D", standby.data, "-R", "-X", "stream",
                    "-d", f"host=127.0.0.1 port={p_port} user=postgres "
                          f"application_name=standby1")
        standby.start()
        _wait_for_sync(primary)
        yield primary, standby
    finally:
        standby.stop()
        primary.stop()
        shutil.rmtree(root, ignore_errors=True)


def _ppid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _sql(node: _Node, query: str) -> str:
    done = subprocess.run(["runuser", "-u", "postgres", "--", os.path.join(node.bindir, "psql"),
                           "-h", "127.0.0.1", "-p", str(node.port), "-U", "postgres", "-Atc",
                           query], capture_output=True, text=True, timeout=30)
    return done.stdout.strip()


def _wait_for_sync(primary: _Node) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if _sql(primary, "SELECT sync_state FROM pg_stat_replication") == "sync":
            return
        time.sleep(0.2)
    raise RuntimeError(f"the standby never became synchronous:\n{primary.log_tail()}")


def _uri(*nodes: _Node) -> str:
    hosts = "&".join(f"host=127.0.0.1:{n.port}" for n in nodes)
    return (f"postgresql+psycopg://postgres@/postgres?{hosts}"
            f"&target_session_attrs=read-write&connect_timeout=3")


@pytest.mark.parametrize("at_most_once", [False, True], ids=["at-least-once", "at-most-once"])
def test_a_flow_survives_the_primary_dying_and_resumes_from_the_promoted_standby(
        pair, caplog, at_most_once):
    caplog.set_level("INFO", logger="persistence.backends.sql")
    primary, standby = pair
    # Retries must cover the failover: here about 1-2 s from the kill to a promoted server.
    conf = {"connection": _uri(primary, standby), "retry_attempts": 12,
            "retry_backoff": 0.2, "retry_max_backoff": 1.0}
    tasks = [Task(f"t{i:02d}") for i in range(ATOMS)]
    with persistence.backend(conf) as be:
        with be.get_connection() as conn:
            conn.upgrade()
            book, flow = LogBook("failover"), FlowDetail("flow", uuid="flow-1")
            book.add(flow)
            conn.save_logbook(book)
        acknowledged: dict[str, int] = {}      # atom name -> writes the engine saw succeed
        failover_done = threading.Event()
        at_kill: list[int] = []

        def fail_over() -> None:
            while len(acknowledged) < ATOMS // 8:
                time.sleep(0.005)
            at_kill.append(len(acknowledged))
            at_kill.append(time.monotonic())
            primary.crash()                                     # mid-flow, writes in flight
            standby.run("pg_ctl", "-D", standby.data, "-w", "-t", "60", "promote")
            # The new primary has no standby of its own yet: commits must not wait for
            # one (what an operator does on promotion, or a second standby makes moot).
            _sql(standby, "ALTER SYSTEM SET synchronous_standby_names = ''")
            _sql(standby, "SELECT pg_reload_conf()")
            failover_done.set()

        killer = threading.Thread(target=fail_over, daemon=True)
        killer.start()
        with Storage(flow, be, at_most_once=at_most_once) as storage:
            uuids = dict(zip((t.name for t in tasks), storage.ensure_atoms(tasks)))
            for task in tasks[: 2 * ATOMS // 3]:
                storage.set_atom_state(task.name, states.RUNNING)
                acknowledged[task.name] = acknowledged.get(task.name, 0) + 1
                storage.save(task.name, {"n": task.name})
                acknowledged[task.name] += 1
        killer.join(timeout=120)
        assert failover_done.is_set(), primary.log_tail() + standby.log_tail()
    # The primary died while the flow was running, and the engine went on through it.
    assert at_kill[0] < 2 * ATOMS // 3 and len(acknowledged) == 2 * ATOMS // 3
    assert any("transient" in r.getMessage() for r in caplog.records), \
        "no write was retried: the failover did not happen under the engine"

    # The promoted server alone: every acknowledged write is there, none twice.
    promoted = {"connection": _uri(standby)}
    with persistence.backend(promoted) as be, be.get_connection() as conn:
        stored = {ad.name: ad for ad in conn.get_flow_details("flow-1")}
        for name, writes in acknowledged.items():
            ad = stored[name]
            assert ad.state == states.SUCCESS and ad.results == {"n": name}, name
            # created by ensure_atoms (revision 1), then one revision per write
            lost_mark = 0 if at_most_once else 1
            assert 1 + writes - lost_mark <= ad.revision <= 1 + writes, \
                (name, ad.revision, writes)
            assert ad.uuid == uuids[name]

    # A second engine resumes from the promoted server: the rest runs, nothing again.
    with persistence.backend(promoted) as be:
        with be.get_connection() as conn:
            flow = conn.get_flow_details("flow-1")
        ran = []
        with Storage(flow, be, owner="engine-2", claim=True, ttl=5) as storage:
            storage.ensure_atoms(tasks)
            for task in tasks:
                if storage.get_atom_state(task.name) == states.SUCCESS:
                    continue
                storage.set_atom_state(task.name, states.RUNNING)
                storage.save(task.name, {"n": task.name})
                ran.append(task.name)
        assert ran == [t.name for t in tasks[2 * ATOMS // 3:]]
        with be.get_connection() as conn:
            done = conn.get_flow_details("flow-1")
        assert all(ad.state == states.SUCCESS for ad in done if ad.name.startswith("t"))
