"""The number of statements each Connection method sends: deterministic, unlike times.

These counts are the SQL backend's speed design made testable: a single
UPDATE per atom update, O(changed) flow updates, bulk inserts for a new
book, and loads whose statement count does not grow with the book.  With
history on (the default) every write adds exactly one INSERT into ``history``
(all its rows at once), in the same transaction.
"""

from __future__ import annotations

import pytest

from persistence import FlowDetail, LogBook, TaskDetail, states
from persistence.testing.samples import make_book, new_uuid


@pytest.fixture
def conn(sql_backend):
    connection = sql_backend.get_connection()
    yield connection
    connection.close()


def _is_history(statement: str) -> bool:
    return statement.upper().replace("`", "").startswith("INSERT INTO HISTORY")


def _split(statements: list[str]) -> tuple[list[str], list[str]]:
    """(statements on the record tables, inserts of history rows)."""
    logged = [s for s in statements if _is_history(s)]
    return [s for s in statements if s not in logged], logged


def _count(statement_log, fn, logged: int = 1) -> int:
    """Statements ``fn`` sends besides its ``logged`` history insert(s)."""
    with statement_log.counting() as statements:
        fn()
    rest, history = _split(statements)
    assert len(history) == logged, statements
    return len(rest)


def _probes_first(backend) -> bool:
    """MySQL has no INSERT … ON CONFLICT DO NOTHING: new rows are probed for first."""
    return backend.engine.dialect.name in ("mysql", "mariadb")


def test_save_new_book_is_three_bulk_inserts(conn, statement_log, sql_backend):
    book = make_book(flows=4, atoms=25)
    with statement_log.counting() as statements:
        conn.save_logbook(book)
    statements, logged = _split(statements)
    assert len(logged) == 1
    kinds = [s.split()[0].upper() for s in statements]
    probes = 3 if _probes_first(sql_backend) else 0
    assert kinds.count("INSERT") == 3 and kinds.count("SELECT") == probes, statements
    assert len(kinds) == 3 + probes


def test_save_again_unchanged_writes_book_and_flows_only(conn, statement_log):
    book = make_book(flows=4, atoms=25)
    conn.save_logbook(book)
    assert _count(statement_log, lambda: conn.save_logbook(book)) == 2  # 2 executemany


def test_update_atom_details_is_one_statement(conn, statement_log, sql_backend):
    book = make_book(flows=1, atoms=3)
    conn.save_logbook(book)
    ad = next(iter(next(iter(book))))
    for i in range(3):
        ad.put(states.SUCCESS, {"i": i})
        with statement_log.counting() as statements:
            conn.update_atom_details(ad)
        if sql_backend.dialect_name == "postgresql":   # the UPDATE in a CTE, then INSERT
            (statement,) = statements
            assert statement.startswith("WITH updated AS") and "UPDATE atomdetails" in statement
            assert "INSERT INTO history" in statement
            assert "revision" in statement.split("WHERE")[1]
            continue
        assert len(statements) == 2 and statements[0].upper().startswith("UPDATE")
        assert "revision" in statements[0].split("WHERE")[1]
        assert _is_history(statements[1])  # after the UPDATE, in its transaction


def test_update_atom_details_of_a_record_from_elsewhere_is_probe_and_update(
        conn, statement_log, sql_backend):
    book = make_book(flows=1, atoms=3)
    conn.save_logbook(book)
    original = next(iter(next(iter(book))))
    stranger = TaskDetail(original.name, original.uuid)  # never loaded: no revision
    stranger.put(states.SUCCESS, "overwrite")
    assert _count(statement_log, lambda: conn.update_atom_details(stranger)) == 2
    assert stranger.revision == original.revision + 1


def test_saving_over_records_from_elsewhere_overwrites_them(conn, statement_log, sql_backend):
    book = make_book(flows=2, atoms=3)
    conn.save_logbook(book)
    copy = make_book(flows=0)  # the same uuids, never loaded: create-or-overwrite
    copy.uuid = book.uuid
    for fd in book:
        clone = FlowDetail(fd.name, fd.uuid)
        for ad in fd:
            clone.add(TaskDetail(ad.name, ad.uuid))
        copy.add(clone)
    with statement_log.counting() as statements:
        conn.save_logbook(copy)
    statements, logged = _split(statements)
    assert len(logged) == 1
    # per table: [insert-if-absent,] probe of the existing, update
    assert len(statements) == (6 if _probes_first(sql_backend) else 9)
    assert copy.revision == 2 and all(ad.revision == 2 for fd in copy for ad in fd)
    assert conn.get_logbook(book.uuid).revision == 2


def test_update_flow_details_writes_only_what_changed(conn, statement_log, sql_backend):
    book = LogBook("big")
    fd = FlowDetail("flow", new_uuid())
    for i in range(500):
        fd.add(TaskDetail(f"t{i}", new_uuid()))
    book.add(fd)
    conn.save_logbook(book)

    fd.state = states.SUCCESS  # only the flow changed
    with statement_log.counting() as statements:
        conn.update_flow_details(fd)
    statements, logged = _split(statements)
    assert len(logged) == 1
    assert len(statements) == 1 and statements[0].upper().startswith("UPDATE")

    atoms = list(fd)
    atoms[3].put(states.SUCCESS, 3)
    atoms[7].put(states.SUCCESS, 7)
    assert _count(statement_log, lambda: conn.update_flow_details(fd)) == 2  # flow + 1 executemany

    fd.add(TaskDetail("new", new_uuid()))
    new_atom = 3 if _probes_first(sql_backend) else 2  # flow, [probe,] insert
    assert _count(statement_log, lambda: conn.update_flow_details(fd)) == new_atom


@pytest.mark.parametrize("flows,atoms", [(1, 2), (6, 40)])
def test_loads_take_a_constant_number_of_statements(conn, statement_log, flows, atoms):
    book = make_book(flows=flows, atoms=atoms)
    conn.save_logbook(book)
    fd = next(iter(book))
    ad = next(iter(fd))
    expected = [
        (lambda: conn.get_logbook(book.uuid), 3),
        (lambda: conn.get_logbook(book.uuid, lazy=True), 1),
        (lambda: list(conn.get_logbooks()), 3),
        (lambda: list(conn.get_logbooks(lazy=True)), 1),
        (lambda: list(conn.get_flows_for_book(book.uuid)), 3),
        (lambda: conn.get_flow_details(fd.uuid), 2),
        (lambda: conn.get_flow_details(fd.uuid, lazy=True), 1),
        (lambda: list(conn.get_atoms_for_flow(fd.uuid)), 2),
        (lambda: conn.get_atom_details(ad.uuid), 1),
    ]
    for fn, count in expected:
        assert _count(statement_log, fn, logged=0) == count


def test_destroy_logbook_is_one_delete(conn, statement_log):
    book = make_book(flows=3, atoms=5)
    conn.save_logbook(book)
    assert _count(statement_log, lambda: conn.destroy_logbook(book.uuid), logged=0) == 1


def test_upgrade_at_head_only_reads_the_version(conn, statement_log):
    with statement_log.counting() as statements:
        conn.upgrade()
    assert statements and not any(s.lstrip().upper().startswith(("CREATE", "ALTER", "INSERT",
                                                                  "UPDATE"))
                                  for s in statements)
