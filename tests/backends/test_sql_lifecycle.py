"""SQL backend: history, listings, summaries and purge are done in SQL.

Listings and counts are single queries that never read atom rows (checked on
the statements sent for 10,000 logbooks); a summary reads no result column;
history rides in the write's transaction (or not at all with
``history=false``); purge deletes 10,000 logbooks in bounded batches while
another process keeps writing.
"""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

import persistence
from persistence import states
from persistence.backends.sql import SQLAlchemyBackend
from persistence.backends.sql.tables import atomdetails, flowdetails, history, logbooks
from persistence.testing.samples import make_book, make_failure, new_uuid

UTC = datetime.timezone.utc
BOOKS = 10_000
LONG_AGO = datetime.datetime(2020, 1, 1, tzinfo=UTC)


@pytest.fixture
def conn(sql_backend):
    connection = sql_backend.get_connection()
    yield connection
    connection.close()


def _bulk_books(backend, count: int, when: datetime.datetime = LONG_AGO,
                state: str = states.SUCCESS) -> None:
    """``count`` logbooks of one flow in ``state`` with two finished atoms, inserted in bulk."""
    naive = when.replace(tzinfo=None)
    books, flows, atoms = [], [], []
    for i in range(count):
        b, f = f"book-{i:06d}", f"flow-{i:06d}"
        stamp = naive + datetime.timedelta(microseconds=i)
        books.append({"uuid": b, "name": f"bulk-{i % 10}", "meta": "{}", "created_at": stamp,
                      "updated_at": stamp, "revision": 1})
        flows.append({"uuid": f, "name": "flow", "meta": "{}", "state": state,
                      "parent_uuid": b, "created_at": stamp, "updated_at": stamp,
                      "revision": 1})
        for a in range(2):
            atoms.append({"uuid": f"atom-{i:06d}-{a}", "name": f"t{a}", "meta": "{}",
                          "atom_type": "TASK_DETAIL", "state": states.SUCCESS,
                          "intention": "EXECUTE", "results": str(a), "parent_uuid": f,
                          "created_at": stamp, "updated_at": stamp, "revision": 1})
    with backend.engine.begin() as db:
        for table, rows in ((logbooks, books), (flowdetails, flows), (atomdetails, atoms)):
            for start in range(0, len(rows), 2000):
                db.execute(sa.insert(table), rows[start:start + 2000])


def _touch_no_atoms(statements: list[str]) -> None:
    for statement in statements:
        assert "atomdetails" not in statement, statement


def test_listing_10000_logbooks_reads_no_atom_rows(sql_backend, conn, statement_log):
    _bulk_books(sql_backend, BOOKS)
    with statement_log.counting() as statements:
        page = conn.list_logbooks(limit=50)
        assert [b.uuid for b in page] == [f"book-{i:06d}" for i in range(BOOKS - 1,
                                                                          BOOKS - 51, -1)]
        assert all(len(b) == 0 for b in page)
    assert len(statements) == 1
    queries = list(statements)
    with statement_log.counting() as statements:
        assert conn.count_logbooks() == BOOKS
        assert conn.count_logbooks(name="bulk-3") == BOOKS // 10
        named = conn.list_logbooks(name="bulk-3", limit=5, offset=5)
        assert [b.uuid for b in named] == [f"book-{i:06d}" for i in range(
            BOOKS - 7 - 50, BOOKS - 7 - 100, -10)]
        since = conn.list_logbooks(updated_since=page[9].updated_at)
        assert len(since) == 10
        flows = conn.list_flow_details(state=states.SUCCESS, limit=20, offset=100)
        assert len(flows) == 20 and all(len(fd) == 0 for fd in flows)
    assert len(statements) == 5
    _touch_no_atoms(queries + list(statements))


def test_summary_and_counts_read_no_results(sql_backend, conn, statement_log):
    book = make_book(flows=1, atoms=6)
    fd = next(iter(book))
    ad = next(iter(fd))
    ad.put(states.FAILURE, make_failure())
    conn.save_logbook(book)
    with statement_log.counting() as statements:
        summary = conn.summary(fd.uuid)
        assert summary.atoms == 6 and summary.failures == 1
        assert conn.count_atoms(fd.uuid, states=states.SUCCESS) == 5
    assert len(statements) == 3
    for statement in statements:
        assert "results" not in statement and "meta" not in statement, statement


def test_large_failures_count_in_summaries(sql_backend, conn):
    if sql_backend.max_inline_size is None:
        pytest.skip("values are never moved to chunk rows on this database")
    book = make_book(flows=1, atoms=2)
    fd = next(iter(book))
    ad = next(iter(fd))
    ad.put(states.FAILURE, make_failure("x" * (2 * sql_backend.max_inline_size)))
    conn.save_logbook(book)
    assert conn.summary(fd.uuid).failures == 1


def _without_history(sql_backend) -> SQLAlchemyBackend:
    return SQLAlchemyBackend({"history": False}, engine=sql_backend.engine)


def test_history_off_writes_no_history(sql_backend, statement_log):
    quiet = _without_history(sql_backend)
    with quiet.get_connection() as conn:
        book = make_book(flows=2, atoms=3)
        conn.save_logbook(book)
        ad = next(iter(next(iter(book))))
        ad.put(states.SUCCESS, "again")
        with statement_log.counting() as statements:
            conn.update_atom_details(ad)
        assert len(statements) == 1 and statements[0].upper().startswith("UPDATE")
        assert conn.get_history() == []
    with sql_backend.engine.connect() as db:
        assert db.execute(sa.select(sa.func.count()).select_from(history)).scalar() == 0


def test_history_row_and_write_share_their_transaction(sql_backend, conn):
    """A write whose history row cannot be inserted is not applied either."""
    book = make_book(flows=1, atoms=1)
    conn.save_logbook(book)
    ad = next(iter(next(iter(book))))
    before = conn.get_atom_details(ad.uuid)
    with sql_backend.engine.begin() as db:   # make every history insert fail
        db.execute(sa.text("DROP TABLE history" if sql_backend.dialect_name != "postgresql"
                           else "DROP TABLE history CASCADE"))
    try:
        ad.put(states.SUCCESS, "lost")
        with pytest.raises(persistence.exceptions.StorageFailure):
            conn.update_atom_details(ad)
        other = sql_backend.get_connection()
        try:
            got = other.get_atom_details(ad.uuid)
        finally:
            other.close()
        assert (got.results, got.revision) == (before.results, before.revision)
    finally:
        with sql_backend.engine.begin() as db:
            history.create(db)


WRITER = r"""
import os, sys, time
import persistence
from persistence import states
from persistence.models import FlowDetail, LogBook, TaskDetail

uri, stop, progress = sys.argv[1], sys.argv[2], sys.argv[3]
with persistence.backend(uri) as be, be.get_connection() as conn:
    n, deadline = 0, time.monotonic() + 120
    while not os.path.exists(stop) and time.monotonic() < deadline:
        book = LogBook(f"live-{n}")
        fd = FlowDetail("live", f"live-flow-{n}")
        fd.state = states.RUNNING
        ad = TaskDetail("t", f"live-atom-{n}")
        fd.add(ad)
        book.add(fd)
        conn.save_logbook(book)
        for i in range(5):
            ad.put(states.SUCCESS, i)
            conn.update_atom_details(ad)
        n += 1
        with open(progress + ".tmp", "w") as fh:
            fh.write(str(n))
        os.replace(progress + ".tmp", progress)
"""


def _progress(path) -> int:
    try:
        with open(path) as fh:
            return int(fh.read() or 0)
    except FileNotFoundError:
        return 0


def test_purge_10000_logbooks_in_batches_while_another_process_writes(
        sql_backend, conn, tmp_path, request):
    if sql_backend.memory:
        pytest.skip("an in-memory database has no other process")
    url = sql_backend.engine.url.render_as_string(hide_password=False)
    _bulk_books(sql_backend, BOOKS)
    stop, progress = tmp_path / "stop", tmp_path / "progress"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, url, str(stop), str(progress)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        deadline = time.monotonic() + 60
        while _progress(progress) < 3 and writer.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert writer.poll() is None, writer.communicate()[0]
        before = _progress(progress)
        started = time.monotonic()
        report = conn.purge(finished_before=datetime.datetime.now(UTC), batch_size=500)
        took = time.monotonic() - started
        after = _progress(progress)
    finally:
        stop.touch()
        out, _ = writer.communicate(timeout=120)
    assert writer.returncode == 0, out
    assert after > before, "the writer made no progress while the purge ran"
    assert len(report.logbooks) == BOOKS and set(report.logbooks) == {
        f"book-{i:06d}" for i in range(BOOKS)}
    assert (report.flow_details, report.atom_details, report.batches) == (BOOKS, 2 * BOOKS, 20)
    live = conn.list_logbooks()
    assert len(live) == _progress(progress) and all(b.name.startswith("live-") for b in live)
    request.node.user_properties.append(("purge_seconds", round(took, 1)))


def test_purge_leaves_unfinished_and_recent_logbooks(sql_backend, conn):
    _bulk_books(sql_backend, 30)
    _bulk_books_named(sql_backend, "running", states.RUNNING)
    recent = make_book(flows=1, atoms=1, name="recent")
    next(iter(recent)).state = states.SUCCESS
    conn.save_logbook(recent)
    cutoff = datetime.datetime.now(UTC) - datetime.timedelta(days=1)
    dry = conn.purge(finished_before=cutoff, batch_size=7, dry_run=True)
    assert len(dry.logbooks) == 30 and dry.batches == 5
    assert conn.count_logbooks() == 32
    done = conn.purge(finished_before=cutoff, batch_size=7)
    assert sorted(done.logbooks) == sorted(dry.logbooks) and done.batches == 5
    assert {b.name for b in conn.list_logbooks()} == {"running", "recent"}


def _bulk_books_named(backend, name: str, state: str) -> None:
    uuid = new_uuid()
    with backend.engine.begin() as db:
        db.execute(sa.insert(logbooks), {"uuid": uuid, "name": name, "meta": "{}",
                                         "created_at": LONG_AGO, "updated_at": LONG_AGO,
                                         "revision": 1})
        db.execute(sa.insert(flowdetails), {"uuid": new_uuid(), "name": "f", "meta": "{}",
                                            "state": state, "parent_uuid": uuid,
                                            "created_at": LONG_AGO, "updated_at": LONG_AGO,
                                            "revision": 1})
