"""The TaskFlow store reader on the wrong input: missing stores (never created), other
kinds of store (a persistence store given as TaskFlow's and the other way round), corrupt
or unknown records (a typed error naming the record and where it is, and nothing of its
logbook copied), writes (refused), and stores left at an older TaskFlow schema revision."""

from __future__ import annotations

import json
import os
import uuid as uuidlib

import pytest
import sqlalchemy as sa

import persistence
from persistence.backends.taskflow import NoTaskFlowStore, ReadOnlyStore, TaskFlowRecordError
from persistence.exceptions import ConfigurationError, NotFound
from tests.conftest import IN_CI
from tests.test_cli import run

if IN_CI:  # the test extra installs TaskFlow: under CI its absence fails, never skips
    import taskflow  # noqa: F401
ts = pytest.importorskip("tests.taskflow_stores", reason="TaskFlow 6.5.0 is not installed")
from tests.test_migrate_taskflow import _file_tree, _open, taskflow_zookeeper  # noqa: E402,F401

pytestmark = pytest.mark.timeout(180)


def _fail(*args: str) -> str:
    done = run(*args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    return done.stderr


def _atom_uuid(book_uuid: str, index: int, atom: int = 1) -> str:
    """The uuid ts.fill_plain gives atom ``atom`` of the flow of logbook number ``index``."""
    return f"atom-{atom}-flow-{index}-{book_uuid[:8]}"


# -- nothing there, or something else there -------------------------------------------------

def test_a_missing_store_is_a_typed_error_and_is_not_created(tmp_path, zookeeper_hosts,
                                                             zookeeper_admin):
    dst = f"sqlite:///{tmp_path}/dst.db"
    missing_db, missing_dir = tmp_path / "old.db", tmp_path / "old-dir"
    for src in (f"taskflow+sqlite:///{missing_db}", f"taskflow+dir://{missing_dir}",
                f"taskflow+zookeeper://{zookeeper_hosts}/no-such-{uuidlib.uuid4().hex}"):
        assert "no TaskFlow store at" in _fail("migrate", src, dst)
    assert os.listdir(tmp_path) == []                           # not even the destination
    assert zookeeper_admin.get_children("/") == [c for c in zookeeper_admin.get_children("/")
                                                 if not c.startswith("no-such-")]
    with pytest.raises(NoTaskFlowStore, match="no such file"):
        persistence.fetch(f"taskflow+sqlite:///{missing_db}").get_connection()
    assert not missing_db.exists()


def test_an_empty_database_is_not_a_taskflow_store(sql_database_factory):
    url = sql_database_factory("postgresql")
    err = _fail("ls", f"taskflow+{url}")
    assert "no TaskFlow store at" in err and "has no logbooks, flowdetails, atomdetails" in err
    with sa.create_engine(url).connect() as conn:                 # nothing was created
        assert sa.inspect(conn).get_table_names() == []


@pytest.mark.parametrize("kind", ["sqlite", "dir", "zookeeper"])
def test_a_persistence_store_given_as_taskflow_s_is_refused(kind, tmp_path, request):
    if kind == "zookeeper":
        ours = request.getfixturevalue("zookeeper_backend_factory")()   # removed afterwards
        uri = f"zookeeper://{request.getfixturevalue('zookeeper_hosts')}{ours.path}"
    else:
        uri = f"sqlite:///{tmp_path}/ours.db" if kind == "sqlite" else f"file://{tmp_path}/ours"
    with persistence.backend(uri) as be, be.get_connection() as conn:
        conn.save_logbook(persistence.LogBook("ours"))
    err = _fail("migrate", f"taskflow+{uri}", f"sqlite:///{tmp_path}/dst.db")
    assert "no TaskFlow store at" in err and "persistence" in err and "taskflow+" in err


@pytest.mark.parametrize("kind", ["sqlite", "dir", "zookeeper"])
def test_a_taskflow_store_given_as_a_persistence_one_is_refused_and_left_alone(
        kind, tmp_path, request):
    if kind == "zookeeper":
        conf = request.getfixturevalue("taskflow_zookeeper")
        plain = f"zookeeper://{conf['hosts']}{conf['path']}"
    elif kind == "sqlite":
        conf = {"connection": f"sqlite:///{tmp_path}/tf/taskflow.db"}
        os.mkdir(tmp_path / "tf")
        plain = conf["connection"]
    else:
        conf = {"connection": "dir", "path": str(tmp_path / "tf")}
        plain = f"file://{tmp_path}/tf"
    ts.fill_plain(conf, 2)
    before = _file_tree(str(tmp_path / "tf")) if kind != "zookeeper" else None
    other = f"sqlite:///{tmp_path}/other.db"
    with persistence.backend(other) as be, be.get_connection() as conn:
        conn.save_logbook(persistence.LogBook("ours"))
    for args in (("migrate", plain, f"sqlite:///{tmp_path}/dst.db"), ("ls", plain),
                 ("migrate", other, plain)):
        err = _fail(*args)
        assert "holds a TaskFlow store" in err and f"taskflow+{plain}" in err, err
    if before is not None:
        assert _file_tree(str(tmp_path / "tf")) == before
    assert not os.path.exists(tmp_path / "dst.db")
    assert len(ts.read_back(conf)) == 2


def test_a_taskflow_store_is_never_a_destination_and_writes_are_refused(tmp_path):
    conf = {"connection": "dir", "path": str(tmp_path / "tf")}
    ts.fill_plain(conf, 1)
    src = f"sqlite:///{tmp_path}/src.db"
    with persistence.backend(src) as be, be.get_connection() as conn:
        conn.save_logbook(persistence.LogBook("ours"))
    before = _file_tree(str(tmp_path / "tf"))
    assert "can only be a source" in _fail("migrate", src, f"taskflow+dir://{tmp_path}/tf")

    be = persistence.fetch(f"taskflow+dir://{tmp_path}/tf")
    with be.get_connection() as conn:
        conn.upgrade()                                      # checks; creates nothing
        book = next(conn.get_logbooks())
        fd = next(iter(book))
        for write in (lambda: conn.save_logbook(book), lambda: conn.update_flow_details(fd),
                      lambda: conn.update_atom_details(next(iter(fd))), conn.clear_all,
                      lambda: conn.destroy_logbook(book.uuid)):
            with pytest.raises(ReadOnlyStore, match="TaskFlow store"):
                write()
        with pytest.raises(NotFound):
            conn.get_logbook(str(uuidlib.uuid4()))
    be.close()
    assert _file_tree(str(tmp_path / "tf")) == before


@pytest.mark.parametrize("uri, message", [
    ("taskflow://somewhere", "say which kind of TaskFlow store"),
    ("taskflow+redis://localhost/0", "unknown kind of TaskFlow store 'redis'"),
    ("taskflow+dir://host/path", "takes no host"),
    ("taskflow+sqlite://", "name the TaskFlow sqlite file"),
    ("taskflow+dir:///x?timeout=3", "does not apply"),
    ("taskflow+dir:///x?colour=red", "unknown option(s) 'colour'"),
])
def test_bad_taskflow_uris_say_what_is_wrong(uri, message):
    with pytest.raises(ConfigurationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        persistence.fetch(uri).get_connection()


# -- corrupt or unknown records ------------------------------------------------------------

def _sqlite_corruption(column: str, value: str):
    def corrupt(conf, book, atom):
        engine = sa.create_engine(conf["connection"])
        with engine.begin() as conn:
            conn.execute(sa.text(f"UPDATE atomdetails SET {column} = :v WHERE uuid = :u"),
                         {"v": value, "u": atom})
        engine.dispose()
    return corrupt


def _dir_truncation(conf, book, atom):
    path = os.path.join(conf["path"], "atom_details", atom, "metadata")
    with open(path, "rb") as fh:
        data = fh.read()
    with open(path, "wb") as fh:
        fh.write(data[:len(data) // 2])


def _znode_garbage(conf, book, atom):
    from kazoo.client import KazooClient
    client = KazooClient(hosts=conf["hosts"])
    client.start(timeout=30)
    try:
        client.set(f"{conf['path']}/atom_details/{atom}", json.dumps(
            {"atom": {"name": "x", "uuid": atom, "state": "SUCCESS"}, "type": "ODD_DETAIL"}
        ).encode())
    finally:
        client.stop()
        client.close()


CORRUPTIONS = {
    "sqlite-json": ("sqlite", _sqlite_corruption("results", '{"truncated'), "not valid JSON"),
    "sqlite-state": ("sqlite", _sqlite_corruption("state", "EXPLODED"),
                     "unknown atom state 'EXPLODED'"),
    "sqlite-failure-version": ("sqlite", _sqlite_corruption("failure", json.dumps(
        {"version": 2, "exc_type_names": ["ValueError"], "exception_str": "x",
         "traceback_str": ""})), "failure dict version 2"),
    "dir-truncated": ("dir", _dir_truncation, "not valid JSON"),
    "zookeeper-atom-type": ("zookeeper", _znode_garbage, "unknown atom detail type 'ODD_DETAIL'"),
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_a_corrupt_record_is_named_with_its_location_and_its_logbook_is_not_copied(
        case, tmp_path, request):
    kind, corrupt, message = CORRUPTIONS[case]
    if kind == "zookeeper":
        conf = request.getfixturevalue("taskflow_zookeeper")
        root = conf["path"]
        src, where = f"taskflow+zookeeper://{conf['hosts']}{root}", f"znode {root}/atom_details/"
    elif kind == "sqlite":
        conf = {"connection": f"sqlite:///{tmp_path}/taskflow.db"}
        src, where = f"taskflow+{conf['connection']}", "table atomdetails"
    else:
        conf = {"connection": "dir", "path": str(tmp_path / "tf")}
        src, where = f"taskflow+dir://{tmp_path}/tf", f"{tmp_path}/tf/atom_details/"
    books = ts.fill_plain(conf, 3)
    victim, atom = books[1], _atom_uuid(books[1], 1)
    corrupt(conf, victim, atom)
    dst = f"sqlite:///{tmp_path}/dst.db"

    err = _fail("migrate", src, dst)
    assert f"atom detail {atom}" in err and where in err and message in err, err
    with _open(dst) as conn:
        with pytest.raises(NotFound):
            conn.get_logbook(victim)                 # not a record of it was written
        for book in conn.get_logbooks():             # the ones before it are whole
            assert len(book) == 1 and len(next(iter(book))) == 4

    with _open(src) as conn, pytest.raises(TaskFlowRecordError) as caught:
        conn.get_logbook(victim)
    assert caught.value.record.startswith(f"atom detail {atom}")
    assert where in caught.value.location


# -- older TaskFlow schemas ----------------------------------------------------------------

@pytest.mark.parametrize("revision", ["1c783c0c2875", "84d6e888850"])
def test_a_store_at_an_older_taskflow_schema_revision_reads(revision, tmp_path):
    """TaskFlow's own alembic migrations build the old schema (``taskdetails``, without
    intention and revert columns, and before 84d6e888850 without atom_type)."""
    from taskflow.persistence.backends.sqlalchemy import migration

    url = f"sqlite:///{tmp_path}/old.db"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        migration.db_sync(conn, revision)
        conn.execute(sa.text("INSERT INTO logbooks (created_at, meta, name, uuid) VALUES "
                             "('2014-03-01 10:00:00.000001', '{\"a\": 1}', 'old', 'b-1')"))
        conn.execute(sa.text("INSERT INTO flowdetails (parent_uuid, meta, name, state, uuid) "
                             "VALUES ('b-1', NULL, 'f', 'SUCCESS', 'f-1')"))
        columns = {c["name"] for c in sa.inspect(conn).get_columns("taskdetails")}
        typed = "atom_type" in columns
        conn.execute(sa.text(
            "INSERT INTO taskdetails (parent_uuid, name, results, version, state, uuid, "
            f"failure{', atom_type' if typed else ''}) VALUES ('f-1', 't', '[1, 2]', '1.0', "
            f"'SUCCESS', 't-1', NULL{', :kind' if typed else ''})"), {"kind": "TASK_DETAIL"})
    engine.dispose()
    with _open(f"taskflow+{url}") as conn:
        book = conn.get_logbook("b-1")
    assert "intention" not in columns and "revert_results" not in columns
    assert (book.name, dict(book.meta), book.created_at.microsecond) == ("old", {"a": 1}, 1)
    atom = book.find("f-1").find("t-1")
    assert type(atom).__name__ == "TaskDetail"
    assert (atom.results, atom.intention, atom.revert_results, atom.failure) == \
        ([1, 2], "EXECUTE", None, None)
