"""Dropped connections, lost commit answers, busy databases, corrupt rows, killed writers.

Connections are really killed (``pg_terminate_backend``, MariaDB ``KILL``)
and a writer process really SIGKILLed; the one simulated event is a COMMIT
whose answer is lost after the server applied it, which cannot be produced
on demand.  The check is always the revision counter: it grows by exactly
one per write, so a write applied twice (or lost) shows.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time

import pytest
import sqlalchemy as sa

import persistence
from persistence import TaskDetail, states
from persistence.exceptions import StorageFailure
from persistence.testing.samples import make_book


def _admin(backend) -> sa.Engine:
    return sa.create_engine(backend.engine.url, poolclass=sa.pool.NullPool,
                            isolation_level="AUTOCOMMIT")


def _kill_sessions(admin: sa.Engine) -> int:
    """Kill every other session on the backend's database; return how many."""
    with admin.connect() as c:
        if admin.dialect.name == "postgresql":
            return len(c.execute(sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()")).all())
        ids = c.execute(sa.text("SELECT id FROM information_schema.processlist "
                                "WHERE db = DATABASE() AND id <> CONNECTION_ID()")).scalars()
        killed = 0
        for session_id in ids:
            with contextlib.suppress(sa.exc.DBAPIError):  # it may have gone already
                c.execute(sa.text(f"KILL {int(session_id)}"))
                killed += 1
        return killed


@pytest.fixture(params=["postgresql", "mysql"])
def server_backend(request):
    be = request.getfixturevalue(f"backend_{request.param}")
    conf = {"connection": be.engine.url.render_as_string(hide_password=False),
            "retry_attempts": 30, "retry_backoff": 0.01, "retry_max_backoff": 0.2}
    with persistence.backend(conf) as robust:
        yield robust


def test_killed_connections_lose_no_write_and_apply_none_twice(server_backend):
    admin = _admin(server_backend)
    book = make_book(flows=1, atoms=3)
    fd = next(iter(book))
    ad = next(iter(fd))
    conn = server_backend.get_connection()
    conn.save_logbook(book)
    start_atom, start_flow, start_book = ad.revision, fd.revision, book.revision
    atom_writes = flow_writes = book_writes = 0
    kills = 0
    try:
        for i in range(60):
            if i % 7 == 3:
                kills += _kill_sessions(admin)  # between two operations
            ad.put(states.SUCCESS, {"i": i})
            if i % 5 == 0:
                conn.update_flow_details(fd)
                flow_writes += 1
            elif i % 11 == 0:
                conn.save_logbook(book)
                book_writes += 1
                flow_writes += 1
            else:
                conn.update_atom_details(ad)
            atom_writes += 1
        # And with kills at random moments, inside statements and commits.
        stop = threading.Event()

        def killer() -> None:
            nonlocal kills
            for _ in range(15):
                if stop.wait(0.04):
                    return
                kills += _kill_sessions(admin)

        thread = threading.Thread(target=killer)
        thread.start()
        try:
            for i in range(60, 160):
                ad.put(states.SUCCESS, {"i": i})
                conn.update_atom_details(ad)
                atom_writes += 1
        finally:
            stop.set()
            thread.join()
    finally:
        conn.close()
    assert kills > 0
    with contextlib.closing(server_backend.get_connection()) as other:
        got = other.get_logbook(book.uuid)
    assert got.revision == start_book + book_writes
    assert got.find(fd.uuid).revision == start_flow + flow_writes
    assert got.find(fd.uuid).find(ad.uuid).revision == start_atom + atom_writes
    assert got.find(fd.uuid).find(ad.uuid).results == {"i": 159}
    admin.dispose()


def test_unconditional_writes_survive_kills_exactly_once(server_backend):
    """Records from elsewhere (no revision) take the probe+update path."""
    admin = _admin(server_backend)
    book = make_book(flows=1, atoms=2)
    conn = server_backend.get_connection()
    conn.save_logbook(book)
    original = next(iter(next(iter(book))))
    start = original.revision
    try:
        for i in range(30):
            if i % 4 == 1:
                _kill_sessions(admin)
            stranger = TaskDetail(original.name, original.uuid)
            stranger.put(states.SUCCESS, i)
            conn.update_atom_details(stranger)
            assert stranger.revision == start + i + 1
    finally:
        conn.close()
        admin.dispose()


def _pg_pid(dbapi_conn) -> int:
    return dbapi_conn.info.backend_pid


def _terminate_and_wait(admin: sa.Engine, pid: int) -> None:
    with admin.connect() as c:
        c.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        for _ in range(200):  # bounded: until the server has really dropped it
            gone = c.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"),
                             {"pid": pid}).scalar() == 0
            if gone:
                return
            time.sleep(0.01)
    raise AssertionError(f"backend {pid} still alive")


@pytest.mark.parametrize("applied", [False, True], ids=["commit-lost", "answer-lost"])
def test_a_failed_commit_is_checked_before_it_is_retried(backend_postgresql, applied):
    """The connection dies at COMMIT: before the server got it (nothing applied) or
    after it applied it (only the answer is lost).  Either way: applied exactly once."""
    admin = _admin(backend_postgresql)
    book = make_book(flows=1, atoms=2)
    ad = next(iter(next(iter(book))))
    calls = []

    def on_commit(sa_conn) -> None:
        if calls:
            return
        calls.append(1)
        dbapi = sa_conn.connection.dbapi_connection
        pid = _pg_pid(dbapi)
        if applied:
            dbapi.commit()  # the server applies the transaction...
        _terminate_and_wait(admin, pid)
        if applied:  # ...and its answer never arrives
            raise dbapi.OperationalError("simulated: connection lost after COMMIT was sent")

    with contextlib.closing(backend_postgresql.get_connection()) as conn:
        conn.save_logbook(book)
        start = ad.revision
        sa.event.listen(backend_postgresql.engine, "commit", on_commit)
        try:
            ad.put(states.SUCCESS, "once")
            conn.update_atom_details(ad)
            calls.clear()
            book.meta["x"] = 1
            conn.save_logbook(book)
        finally:
            sa.event.remove(backend_postgresql.engine, "commit", on_commit)
        assert ad.revision == start + 1
    with contextlib.closing(backend_postgresql.get_connection()) as other:
        got = other.get_logbook(book.uuid)
        assert got.find(next(iter(book)).uuid).find(ad.uuid).revision == start + 1
        assert got.revision == 2 and got.meta["x"] == 1
    admin.dispose()


def test_a_busy_sqlite_database_is_waited_for_and_retried(tmp_path):
    path = tmp_path / "busy.db"
    conf = {"connection": f"sqlite:///{path}", "busy_timeout": 0.05, "retry_attempts": 20,
            "retry_backoff": 0.02, "retry_max_backoff": 0.1}
    with persistence.backend(conf) as be, contextlib.closing(be.get_connection()) as conn:
        book = make_book(flows=1, atoms=1)
        conn.save_logbook(book)
        ad = next(iter(next(iter(book))))
        blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        blocker.execute("BEGIN IMMEDIATE")  # another writer holds the write lock
        timer = threading.Timer(0.3, lambda: blocker.execute("COMMIT"))
        timer.start()
        try:
            ad.put(states.SUCCESS, "after the lock")
            conn.update_atom_details(ad)
        finally:
            timer.join()
            blocker.close()
        assert conn.get_atom_details(ad.uuid).results == "after the lock"


def test_a_busy_sqlite_database_fails_after_the_retry_policy(tmp_path):
    path = tmp_path / "busy.db"
    conf = {"connection": f"sqlite:///{path}", "busy_timeout": 0.01, "retry_attempts": 2,
            "retry_backoff": 0.01}
    with persistence.backend(conf) as be, contextlib.closing(be.get_connection()) as conn:
        book = make_book(flows=1, atoms=1)
        conn.save_logbook(book)
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            book.meta["x"] = 1
            with pytest.raises(StorageFailure, match="gave up after 3 attempts"):
                conn.save_logbook(book)
        finally:
            blocker.close()


@pytest.mark.parametrize("column,value", [
    ("results", "{not json"),
    ("meta", "[1, 2"),
    ("atom_type", "NO_SUCH_DETAIL"),
    ("chunked", "results"),
])
def test_a_row_that_cannot_be_decoded_names_table_and_uuid(sql_backend, column, value):
    book = make_book(flows=1, atoms=2)
    ad = next(iter(next(iter(book))))
    with contextlib.closing(sql_backend.get_connection()) as conn:
        conn.save_logbook(book)
        with sql_backend.engine.begin() as c:
            c.execute(sa.text(f"UPDATE atomdetails SET {column} = :v WHERE uuid = :u"),
                      {"v": value, "u": ad.uuid})
        for load in (lambda: conn.get_atom_details(ad.uuid),
                     lambda: conn.get_logbook(book.uuid)):
            with pytest.raises(StorageFailure) as info:
                load()
            assert "atomdetails" in str(info.value) and ad.uuid in str(info.value)


_WRITER = textwrap.dedent("""
    import sys, persistence
    from persistence import states
    from persistence.testing.samples import make_book
    be = persistence.fetch(sys.argv[1])
    conn = be.get_connection()
    conn.upgrade()
    book = make_book(flows=1, atoms=1)
    conn.save_logbook(book)
    ad = next(iter(next(iter(book))))
    print(book.uuid, ad.uuid, flush=True)
    i = 0
    while True:
        i += 1
        ad.put(states.SUCCESS, i)
        conn.update_atom_details(ad)
        print(ad.revision, i, flush=True)   # acknowledged
""")


@pytest.mark.parametrize("synchronous", ["normal", "full"])
def test_sqlite_keeps_every_acknowledged_write_when_the_writer_is_killed(tmp_path,
                                                                          synchronous):
    url = f"sqlite:///{tmp_path}/killed.db?synchronous={synchronous}"
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, url], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        header = writer.stdout.readline().split()
        assert len(header) == 2, writer.stderr.read()
        atom_uuid = header[1]
        acked = None
        for _ in range(300):
            acked = writer.stdout.readline().split()
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(timeout=30)
    finally:
        if writer.poll() is None:
            writer.kill()
    last_revision, last_value = int(acked[0]), int(acked[1])
    with persistence.backend(url) as be, contextlib.closing(be.get_connection()) as conn:
        got = conn.get_atom_details(atom_uuid)
    assert got.revision >= last_revision and got.results >= last_value
    assert got.results == got.revision - 1  # one revision per write, none torn


def test_writers_creating_the_same_records_at_once_all_succeed(sql_backend):
    """Create-or-overwrite from several backends at once: a create race is retried
    as an overwrite, never reported as a duplicate key."""
    if sql_backend.memory:
        pytest.skip("one in-memory database cannot be shared by several backends")
    url = sql_backend.engine.url.render_as_string(hide_password=False)
    template = make_book(flows=2, atoms=20)
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def writer() -> None:
        try:
            with persistence.backend(url) as be, contextlib.closing(be.get_connection()) as c:
                copy = make_book(flows=0)
                copy.uuid = template.uuid
                for fd in template:
                    clone = persistence.FlowDetail(fd.name, fd.uuid)
                    for ad in fd:
                        clone.add(TaskDetail(ad.name, ad.uuid))
                    copy.add(clone)
                barrier.wait(timeout=30)
                c.save_logbook(copy)
        except BaseException as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    with contextlib.closing(sql_backend.get_connection()) as conn:
        got = conn.get_logbook(template.uuid)
    assert got.revision == 4 and sum(len(fd) for fd in got) == 40


def test_the_same_record_twice_in_one_save_is_refused_before_any_write(sql_backend):
    book = make_book(flows=2, atoms=1)
    first, second = list(book)
    second.add(TaskDetail("twin", next(iter(first)).uuid))
    with contextlib.closing(sql_backend.get_connection()) as conn:
        with pytest.raises(ValueError, match="appears twice"):
            conn.save_logbook(book)
        assert list(conn.get_logbooks()) == []
