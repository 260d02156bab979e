"""The one read-only sqlite opener (``backends/drivers/sqlitefile``) and its three users:
the SQL backend's ``store_exists``, the TaskFlow-store probe, the TaskFlow reader.

Each opens the file it was given, even when its path holds ``?`` or ``#`` (which a
``file:`` URI would otherwise read as the start of its query or fragment and open a
shorter path, creating it), and leaves it and its directory exactly as they were."""

from __future__ import annotations

import os
import shutil
import sqlite3
import urllib.parse
from pathlib import Path

import pytest

import persistence
from persistence.backends.drivers.sqlitefile import connect_read_only, read_only_engine
from persistence.tools.taskflow_probe import taskflow_store_in
from tests.conftest import IN_CI

ODD = "a?b#c"   # unquoted, a file: URI would open ".../a" (and create it)


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every name below ``folder`` and its bytes, but for the WAL index and log a
    reader of a WAL database may leave beside it (sqlite's, not the database)."""
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"<dir>"
            for p in sorted(folder.rglob("*")) if not p.name.endswith(("-shm", "-wal"))}


def _uri(scheme: str, path: Path) -> str:
    return f"{scheme}:///{urllib.parse.quote(str(path))}"


@pytest.fixture
def odd_dir(tmp_path: Path) -> Path:
    folder = tmp_path / ODD
    folder.mkdir()
    return folder


def test_opens_the_named_file_and_cannot_write_it(odd_dir):
    path = odd_dir / "x.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (v)")
        conn.execute("INSERT INTO t VALUES (7)")
    conn.close()
    before = _snapshot(odd_dir.parent)
    conn = connect_read_only(str(path))
    try:
        assert conn.execute("SELECT v FROM t").fetchall() == [(7,)]
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            conn.execute("INSERT INTO t VALUES (8)")
    finally:
        conn.close()
    engine = read_only_engine(str(path))
    try:
        with engine.connect() as c:
            assert c.exec_driver_sql("SELECT v FROM t").scalar() == 7
    finally:
        engine.dispose()
    assert _snapshot(odd_dir.parent) == before


def test_a_missing_file_is_an_error_and_is_not_created(odd_dir):
    path = odd_dir / "missing.db"
    with pytest.raises(sqlite3.OperationalError):
        connect_read_only(str(path))
    engine = read_only_engine(str(path), lambda: LookupError("no such file"))
    with pytest.raises(LookupError, match="no such file"):
        engine.connect()
    assert os.listdir(odd_dir.parent) == [ODD] and os.listdir(odd_dir) == []


def test_store_exists_reads_a_store_at_an_odd_path_and_leaves_it_alone(tmp_path, odd_dir):
    made = tmp_path / "made.db"
    with persistence.backend(f"sqlite:///{made}"):
        pass
    shutil.move(made, odd_dir / "ours.db")
    (odd_dir / "empty.db").write_bytes(b"")
    before = _snapshot(tmp_path)
    for name, expected in (("ours.db", True), ("empty.db", False)):
        be = persistence.fetch({"connection": "sqlite", "path": str(odd_dir / name)})
        try:
            assert be.store_exists() is expected
        finally:
            be.close()
    assert _snapshot(tmp_path) == before


def _taskflow_store(tmp_path: Path, odd_dir: Path) -> tuple[Path, list[str]]:
    if IN_CI:  # the test extra installs TaskFlow: under CI its absence fails, never skips
        import taskflow  # noqa: F401
    ts = pytest.importorskip("tests.taskflow_stores", reason="TaskFlow 6.5.0 is not installed")
    made = tmp_path / "tf.db"
    uuids = ts.fill_plain({"connection": f"sqlite:///{made}"}, 2, atoms=2)
    shutil.move(made, odd_dir / "tf.db")
    return odd_dir / "tf.db", uuids


def test_the_taskflow_reader_and_probe_read_a_store_at_an_odd_path(tmp_path, odd_dir):
    path, uuids = _taskflow_store(tmp_path, odd_dir)
    before = _snapshot(tmp_path)
    be = persistence.fetch(_uri("taskflow+sqlite", path))
    try:
        with be.get_connection() as conn:
            books = {book.uuid: book for book in conn.get_logbooks()}
        assert sorted(books) == sorted(uuids)
        assert all(len(fd) == 2 for book in books.values() for fd in book)
    finally:
        be.close()
    plain = persistence.fetch(_uri("sqlite", path))
    try:
        assert taskflow_store_in(plain) == "TaskFlow's SQL schema"
    finally:
        plain.close()
    assert _snapshot(tmp_path) == before
