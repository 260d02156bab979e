"""``persistence migrate taskflow+URI DST``: stores written by TaskFlow 6.5.0 itself (its SQL
schema on sqlite, PostgreSQL and MariaDB, its dir layout, its ZooKeeper layout) copied into
persistence backends by the real command, compared field by field with what TaskFlow's own
backends read back, resumed with our Storage, never written to, and resumable after a SIGKILL.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import uuid as uuidlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

import persistence
from persistence import states
from persistence.storage import Storage
from tests.conftest import IN_CI
from tests.fixtures import _zkserver
from tests.test_cli import run
from tests.test_cli_transfer import kill_migrate_mid_copy

if IN_CI:  # the test extra installs TaskFlow: under CI its absence fails, never skips
    import taskflow  # noqa: F401
ts = pytest.importorskip("tests.taskflow_stores", reason="TaskFlow 6.5.0 is not installed")

pytestmark = pytest.mark.timeout(300)

KINDS = ["sqlite", "postgresql", "mysql", "dir", "zookeeper"]
#: Where each kind of TaskFlow store is migrated besides sqlite (a cross-product sample).
SECOND_DESTINATION = {"sqlite": "postgresql", "postgresql": "mysql", "mysql": "zookeeper",
                      "dir": "dir", "zookeeper": "postgresql"}
RETRY_VALUES = ["first", "second", "third"]     # what the sample retry tried, in order
UTC = datetime.timezone.utc


@dataclass
class TaskFlowStore:
    kind: str
    conf: dict[str, Any]          # TaskFlow's own backend configuration
    uri: str                      # the same store for persistence: taskflow+...
    books: list[str] = field(default_factory=list)
    snapshot: Callable[[], Any] = lambda: None   # everything stored, to prove nothing changed


# -- making TaskFlow stores and persistence destinations ------------------------------

def _file_tree(root: str) -> list:
    found = []
    for base, dirs, files in os.walk(root):
        for name in sorted(dirs + files):
            path = os.path.join(base, name)
            st = os.lstat(path)
            item = [os.path.relpath(path, root), st.st_mode, st.st_mtime_ns]
            if os.path.islink(path):
                item.append(os.readlink(path))
            elif os.path.isfile(path):
                with open(path, "rb") as fh:
                    item.append(hashlib.sha256(fh.read()).hexdigest())
            found.append(item)
    return sorted(found)


def _database(url: str) -> Callable[[], Any]:
    import sqlalchemy as sa

    def snapshot() -> Any:
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                inspector = sa.inspect(conn)
                tables = sorted(inspector.get_table_names())
                rows = {t: sorted(map(repr, conn.execute(sa.text(f"SELECT * FROM {t}"))))
                        for t in tables}
                return tables, rows
        finally:
            engine.dispose()
    return snapshot


def _znodes(client, root: str) -> Callable[[], Any]:
    def snapshot() -> Any:
        found, todo = [], [root]
        while todo:
            path = todo.pop()
            data, stat = client.get(path)
            found.append((path, data, stat.mzxid, stat.pzxid, stat.numChildren))
            todo.extend(f"{path}/{c}" for c in client.get_children(path))
        return sorted(found)
    return snapshot


def _location(kind: str, request, tmp: str) -> tuple[dict[str, Any], str, Callable[[], Any]]:
    """A new, empty place for a TaskFlow store: (TaskFlow conf, our URI, snapshot)."""
    if kind == "sqlite":
        path = os.path.join(tmp, "taskflow.db")
        return ({"connection": f"sqlite:///{path}"}, f"taskflow+sqlite:///{path}",
                lambda: _file_tree(tmp))
    if kind in ("postgresql", "mysql"):
        url = request.getfixturevalue("sql_database_factory")(kind)
        return {"connection": url}, f"taskflow+{url}", _database(url)
    if kind == "dir":
        path = os.path.join(tmp, "taskflow-dir")
        return {"connection": "dir", "path": path}, f"taskflow+dir://{path}", \
            lambda: _file_tree(tmp)
    hosts = request.getfixturevalue("zookeeper_hosts")
    root = f"/taskflow-tests/{uuidlib.uuid4().hex}"
    client = request.getfixturevalue("zookeeper_admin")
    return ({"connection": "zookeeper", "hosts": hosts, "path": root, "check_compatible": False},
            f"taskflow+zookeeper://{hosts}{root}", _znodes(client, root))


def _destination(kind: str, request, tmp: str) -> str:
    """The URI of a new, empty persistence backend of ``kind``."""
    if kind == "sqlite":
        return f"sqlite:///{tmp}/dst-{uuidlib.uuid4().hex[:8]}.db"
    if kind in ("postgresql", "mysql"):
        return request.getfixturevalue("sql_database_factory")(kind)
    if kind == "dir":
        return f"file://{tmp}/dst-{uuidlib.uuid4().hex[:8]}"
    hosts = request.getfixturevalue("zookeeper_hosts")
    root = f"/persistence-tests/{uuidlib.uuid4().hex}"
    admin = request.getfixturevalue("zookeeper_admin")
    request.addfinalizer(lambda: _zkserver.purge(admin, root))
    return f"zookeeper://{hosts}{root}"


@pytest.fixture(scope="module", params=KINDS)
def taskflow_store(request, tmp_path_factory) -> Iterator[TaskFlowStore]:
    """A TaskFlow store of each kind, filled once by TaskFlow's engines (two logbooks)."""
    tmp = str(tmp_path_factory.mktemp(f"tf-{request.param}"))
    conf, uri, snapshot = _location(request.param, request, tmp)
    store = TaskFlowStore(request.param, conf, uri, snapshot=snapshot)
    admin = request.getfixturevalue("zookeeper_admin") if request.param == "zookeeper" else None
    store.books = ts.fill(conf, books=2)
    yield store
    if admin is not None:
        _zkserver.purge(admin, conf["path"])


@pytest.fixture
def taskflow_zookeeper(zookeeper_hosts, zookeeper_admin) -> Iterator[dict[str, Any]]:
    """TaskFlow's configuration for a new store under its own root (removed afterwards)."""
    root = f"/taskflow-tests/{uuidlib.uuid4().hex}"
    # check_compatible asks the server its version with a four-letter word ZooKeeper 3.8
    # no longer allows by default.
    yield {"connection": "zookeeper", "hosts": zookeeper_hosts, "path": root,
           "check_compatible": False}
    _zkserver.purge(zookeeper_admin, root)


@contextlib.contextmanager
def _open(uri: str) -> Iterator[persistence.base.Connection]:
    be = persistence.fetch(uri)
    try:
        with be.get_connection() as conn:
            yield conn
    finally:
        be.close()


# -- comparing with what TaskFlow reads back ---------------------------------------------

def _utc(moment: datetime.datetime | None) -> datetime.datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def assert_same_failure(ours, theirs, what: str) -> None:
    """Our Failure carries TaskFlow's: type names, message, traceback, cause chain."""
    assert (ours is None) == (theirs is None), what
    while theirs is not None:
        assert list(ours.exc_type_names) == list(theirs), what
        assert ours.exception_str == theirs.exception_str, what
        assert list(ours.exception_args) == list(theirs.exception_args), what
        assert ours.traceback_str == (theirs.traceback_str or ""), what
        theirs = theirs.causes[0] if theirs.causes else None
        ours = ours.cause
        assert (ours is None) == (theirs is None), f"{what}: cause chains differ"


def assert_same_atom(ours, theirs) -> None:
    what = f"atom {theirs.name!r}"
    assert type(ours).__name__ == type(theirs).__name__, what
    assert (ours.uuid, ours.name, ours.state) == (theirs.uuid, theirs.name, theirs.state), what
    assert ours.intention == theirs.intention, what
    assert ours.version == theirs.version and dict(ours.meta) == theirs.meta, what
    assert ours.revert_results == theirs.revert_results, what
    assert_same_failure(ours.failure, theirs.failure, f"{what} failure")
    assert_same_failure(ours.revert_failure, theirs.revert_failure, f"{what} revert failure")
    if type(theirs).__name__ != "RetryDetail":
        assert ours.results == theirs.results, what
        return
    assert len(ours.results) == len(theirs.results), what
    for i, ((value, failures), (their_value, their_failures)) in enumerate(
            zip(ours.results, theirs.results)):
        assert sorted(failures) == sorted(their_failures), what
        for name in failures:
            assert_same_failure(failures[name], their_failures[name], f"{what} attempt {i}")
        if their_failures:
            # TaskFlow 6.5.0's RetryDetail.from_dict reuses its loop variable: an attempt
            # that has failures reads back with the last failure's dict as its value.
            last = list(their_failures.values())[-1].to_dict()
            assert their_value == json.loads(json.dumps(last))
        else:
            assert value == their_value, what
    if theirs.name == "attempts":
        assert [value for value, _ in ours.results] == RETRY_VALUES


def assert_same_as_taskflow(conn, taskflow_books: dict, migrated_after: datetime.datetime
                            ) -> None:
    """Every logbook, flow and atom in ``conn`` equals TaskFlow's reading, field by field."""
    assert sorted(b.uuid for b in conn.get_logbooks(lazy=True)) == sorted(taskflow_books)
    for uuid, theirs in taskflow_books.items():
        book = conn.get_logbook(uuid)
        assert (book.name, dict(book.meta)) == (theirs.name, theirs.meta)
        assert book.created_at == _utc(theirs.created_at)
        # Every save stamps updated_at; a migrated logbook was saved by the migration.
        assert book.updated_at >= migrated_after
        assert sorted(fd.uuid for fd in book) == sorted(fd.uuid for fd in theirs)
        for their_fd in theirs:
            fd = book.find(their_fd.uuid)
            assert (fd.name, fd.state, dict(fd.meta)) == \
                (their_fd.name, their_fd.state, their_fd.meta)
            assert sorted(ad.uuid for ad in fd) == sorted(ad.uuid for ad in their_fd)
            for their_ad in their_fd:
                assert_same_atom(fd.find(their_ad.uuid), their_ad)


def _migrate(src: str, dst: str, *extra: str) -> dict:
    done = run("migrate", src, dst, "--json", *extra, timeout=240)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


# -- the tests ------------------------------------------------------------------------------

@pytest.mark.parametrize("second", [False, True], ids=["to-sqlite", "to-second-backend"])
def test_migrated_store_equals_what_taskflow_reads_and_source_is_untouched(
        taskflow_store, second, request, tmp_path):
    dst_kind = SECOND_DESTINATION[taskflow_store.kind] if second else "sqlite"
    dst = _destination(dst_kind, request, str(tmp_path))
    before = taskflow_store.snapshot()
    started = datetime.datetime.now(UTC)

    report = _migrate(taskflow_store.uri, dst)

    assert report["verified"] and report["logbooks"] == 2 and report["created"] == 2
    assert report["flow_details"] == 2 * 6 and report["atom_details"] == 2 * 18
    assert taskflow_store.snapshot() == before          # not a byte, row or znode changed
    with _open(dst) as conn:
        assert_same_as_taskflow(conn, ts.read_back(taskflow_store.conf), started)
    again = _migrate(taskflow_store.uri, dst)            # resumable: nothing left to do
    assert (again["skipped"], again["created"], again["replaced"]) == (2, 0, 0)


def test_storage_resumes_a_migrated_flow(taskflow_store, tmp_path):
    dst = f"sqlite:///{tmp_path}/resumed.db"
    _migrate(taskflow_store.uri, dst)
    from taskflow import storage as tf_storage

    theirs = ts.read_back(taskflow_store.conf)[taskflow_store.books[0]]
    with persistence.backend(dst) as be, be.get_connection() as conn:
        book = conn.get_logbook(taskflow_store.books[0])
        flows = {fd.name: fd for fd in book}
        for their_fd in theirs:
            reference = tf_storage.Storage(their_fd)      # TaskFlow's view, in memory
            ours = Storage(flows[their_fd.name], be)
            assert ours.fetch_all() == reference.fetch_all(), their_fd.name
            for ad in their_fd:
                assert ours.get_atom_state(ad.name) == reference.get_atom_state(ad.name)
                assert ours.get_atom_intention(ad.name) == \
                    reference.get_atom_intention(ad.name)
            assert sorted(ours.get_execute_failures()) == \
                sorted(reference.get_execute_failures())
            assert sorted(ours.get_revert_failures()) == sorted(reference.get_revert_failures())
        assert [value for value, _ in Storage(flows["retried"], be)
                .get_retry_history("attempts")] == RETRY_VALUES
        assert Storage(flows["failed"], be).get_execute_failures()["boom"].check(ValueError)

        # Resume the flow TaskFlow suspended half-way, as an engine would: register its
        # atoms (TaskFlow's own task objects), then run what is left.
        atoms = [ts.Double("s-double"), ts.Stop("stop", []), ts.AddOne("s-add-one")]
        suspended = Storage(flows["suspended"], be)
        reference = tf_storage.Storage(next(fd for fd in theirs if fd.name == "suspended"))
        suspended.ensure_atoms(atoms)
        reference.ensure_atoms(atoms)
        assert suspended.fetch_all() == reference.fetch_all()
        assert suspended.get_flow_state() == states.SUSPENDED
        assert suspended.get_atom_state("s-add-one") == states.PENDING
        suspended.set_flow_state(states.RUNNING)
        suspended.set_atom_state("s-add-one", states.RUNNING)
        suspended.save("s-add-one", atoms[2].execute(suspended.fetch("doubled")))
        suspended.set_flow_state(states.SUCCESS)
    with _open(dst) as conn:
        fd = conn.get_flow_details(flows["suspended"].uuid)
        assert fd.state == states.SUCCESS
        assert {ad.name: ad.results for ad in fd}["s-add-one"] == 17


def test_a_migration_killed_half_way_finishes_when_run_again(tmp_path):
    conf = {"connection": "dir", "path": str(tmp_path / "taskflow-dir")}
    uuids = ts.fill_plain(conf, 120)
    src, dst = f"taskflow+dir://{tmp_path}/taskflow-dir", f"file://{tmp_path}/dst"
    kill_migrate_mid_copy(src, dst)
    with _open(dst) as conn:
        partial = len(list(conn.get_logbooks(lazy=True)))
    assert 0 < partial < 120

    report = _migrate(src, dst)
    assert report["verified"] and report["logbooks"] == 120
    assert report["skipped"] >= partial - 1            # at most one was half-written
    assert report["created"] + report["replaced"] == 120 - report["skipped"]
    with _open(dst) as conn:
        assert_same_as_taskflow(conn, ts.read_back(conf), datetime.datetime.min.replace(
            tzinfo=UTC))
    assert sorted(ts.read_back(conf)) == sorted(uuids)
    assert _migrate(src, dst)["skipped"] == 120
