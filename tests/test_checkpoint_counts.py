"""What one atom costs the store, counted (never timed): synchronous commits,
waits for an answer, fsyncs.

The engine's loop per atom is ``set_atom_state(RUNNING)`` then ``save(result)``.
By default the RUNNING mark is written without waiting for the disk (see
``Storage(at_most_once=...)``), so an atom costs one synchronous commit where
the store can relax one: PostgreSQL commits the mark with
``synchronous_commit = off``, ZooKeeper sends it and sends the result behind it
before its answer (conditional on it), dir writes it without fsync.  SQLite (WAL) and MySQL write it
as any other commit (see doc/storage.rst for why); they are counted too, so a
change to either shows here.
"""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa

from persistence import FlowDetail, LogBook, states
from persistence.atom import Task
from persistence.storage import Storage

ATOMS = 20


def _run(backend, at_most_once: bool) -> None:
    with backend.get_connection() as conn:
        book, flow = LogBook("counts"), FlowDetail("flow")
        book.add(flow)
        conn.save_logbook(book)
    with Storage(flow, backend, at_most_once=at_most_once) as storage:
        storage.ensure_atoms([Task(f"t{i}") for i in range(ATOMS)])
        yield storage
        for i in range(ATOMS):
            storage.set_atom_state(f"t{i}", states.RUNNING)
            storage.save(f"t{i}", {"i": i})


class _Commits:
    """Commits on a SQL engine, and how many of them ran with synchronous_commit off."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine, self.commits, self.relaxed = engine, 0, 0
        sa.event.listen(engine, "commit", self._commit)
        sa.event.listen(engine, "before_cursor_execute", self._statement)

    def _commit(self, conn) -> None:
        self.commits += 1

    def _statement(self, conn, cursor, statement, *args) -> None:
        if "synchronous_commit" in statement:
            self.relaxed += 1

    def reset(self) -> None:
        self.commits = self.relaxed = 0

    def close(self) -> None:
        sa.event.remove(self.engine, "commit", self._commit)
        sa.event.remove(self.engine, "before_cursor_execute", self._statement)


def _count_sql(backend, at_most_once: bool) -> tuple[int, int]:
    commits = _Commits(backend.engine)
    try:
        run = _run(backend, at_most_once)
        next(run)
        commits.reset()
        for _ in run:
            pass
        return commits.commits, commits.relaxed
    finally:
        commits.close()


@pytest.mark.parametrize("at_most_once", [False, True])
def test_postgresql_commits_the_running_mark_asynchronously(backend_postgresql, at_most_once):
    commits, relaxed = _count_sql(backend_postgresql, at_most_once)
    assert commits == 2 * ATOMS
    # Default: one synchronous commit per atom (the result's); at-most-once: two.
    assert commits - relaxed == (2 * ATOMS if at_most_once else ATOMS)


@pytest.mark.parametrize("kind", ["sqlite_file", "mysql"])
def test_sqlite_and_mysql_commit_twice_per_atom(request, kind):
    backend = request.getfixturevalue(f"backend_{kind}")
    assert _count_sql(backend, False) == (2 * ATOMS, 0)


@pytest.mark.parametrize("at_most_once", [False, True])
def test_zookeeper_sends_the_result_behind_the_unanswered_mark(backend_zookeeper, monkeypatch,
                                                               at_most_once):
    """Default: the mark is sent without waiting and the result goes out behind it,
    before its answer (one wait per atom); at-most-once: two waited writes."""
    from persistence.backends.zookeeper import pipeline, writes
    waited, sent, behind = [], [], []
    commit, follow = writes.commit, pipeline.follow

    def counted(conn, ops, wait=True):
        (waited if wait else sent).append(len(ops))
        return commit(conn, ops, wait)

    def followed(conn, earlier, put, entry):
        behind.append((earlier.put.path == put.path, put.expected - earlier.put.expected))
        return follow(conn, earlier, put, entry)

    requests = []
    client = backend_zookeeper.client
    call = client._call

    def sent_to_server(request, result):
        requests.append(type(request).__name__)
        return call(request, result)

    run = _run(backend_zookeeper, at_most_once)
    next(run)
    monkeypatch.setattr(writes, "commit", counted)
    monkeypatch.setattr(pipeline, "follow", followed)
    monkeypatch.setattr(client, "_call", sent_to_server)
    for _ in run:
        pass
    # Two requests per atom, the mark's and the result's (each one multi with its
    # history entry): no listing of parts the atoms are known not to have.
    assert requests == ["Transaction"] * (2 * ATOMS)
    if at_most_once:
        assert (len(waited), len(sent), behind) == (2 * ATOMS, 0, [])
    else:
        assert (len(waited), len(sent)) == (0, ATOMS)
        assert behind == [(True, 1)] * ATOMS


@pytest.mark.parametrize("at_most_once", [False, True])
def test_dir_fsyncs_only_the_result(backend_dir, monkeypatch, at_most_once):
    fsyncs = []
    real = os.fsync

    def counted(fd):
        fsyncs.append(fd)
        return real(fd)

    run = _run(backend_dir, at_most_once)
    next(run)
    monkeypatch.setattr(os, "fsync", counted)
    for _ in run:
        pass
    # The record file and its directory, per durable write.
    assert len(fsyncs) == (4 if at_most_once else 2) * ATOMS
