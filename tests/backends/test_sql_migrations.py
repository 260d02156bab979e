"""Alembic migrations: empty → head, older → head, no-op at head, racing processes."""

from __future__ import annotations

import contextlib
import datetime
import subprocess
import sys
import textwrap

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import persistence
from persistence.backends.sql import migrate
from persistence.backends.sql.tables import VERSION_TABLE, metadata
from persistence.exceptions import StorageFailure

KINDS = ["sqlite", "postgresql", "mysql"]


def _version(backend) -> str | None:
    with backend.engine.connect() as c:
        return migrate.current(c)


@pytest.mark.parametrize("kind", KINDS)
def test_empty_database_is_upgraded_once(sql_database_factory, kind):
    be = persistence.fetch(sql_database_factory(kind))
    with contextlib.closing(be.get_connection()) as conn:
        with pytest.raises(StorageFailure, match="run upgrade"):
            conn.validate()
        conn.upgrade()
        conn.validate()
        assert _version(be) == migrate.head()
        with be.engine.connect() as c:
            assert migrate.upgrade(c) is False  # at head: nothing to do
        conn.upgrade()
    be.close()


@pytest.mark.parametrize("kind", KINDS)
def test_schema_of_the_migrations_matches_tables_py(sql_database_factory, kind):
    with persistence.backend(sql_database_factory(kind)) as be, be.engine.connect() as c:
        context = MigrationContext.configure(
            c, opts={"version_table": VERSION_TABLE, "compare_type": True})
        assert compare_metadata(context, metadata) == []


@pytest.mark.parametrize("kind", KINDS)
def test_an_older_database_keeps_its_data(sql_database_factory, kind):
    be = persistence.fetch(sql_database_factory(kind))
    now = datetime.datetime(2020, 1, 2, 3, 4, 5, 678900)
    with be.engine.connect() as c:
        config = migrate._config(c)
        command.upgrade(config, "0001")
        c.commit()
        c.execute(sa.text("INSERT INTO logbooks (uuid, name, meta, created_at, updated_at, "
                          "revision) VALUES ('b1', 'old book', '{\"k\": 1}', :t, :t, 4)"),
                  {"t": now})
        c.execute(sa.text("INSERT INTO flowdetails (uuid, name, meta, state, parent_uuid, "
                          "revision) VALUES ('f1', 'old flow', '{}', 'RUNNING', 'b1', 2)"))
        c.execute(sa.text("INSERT INTO atomdetails (uuid, name, meta, atom_type, state, "
                          "intention, results, parent_uuid, revision) VALUES ('a1', 'old "
                          "task', '{}', 'TASK_DETAIL', 'SUCCESS', 'EXECUTE', '[1, 2]', 'f1', 7)"))
        c.commit()
        assert migrate.current(c) == "0001"
    with contextlib.closing(be.get_connection()) as conn:
        conn.upgrade()
        conn.validate()
        book = conn.get_logbook("b1")
        assert book.name == "old book" and dict(book.meta) == {"k": 1}
        assert book.created_at == now.replace(tzinfo=datetime.timezone.utc)
        ad = book.find("f1").find("a1")
        assert (ad.results, ad.revision) == ([1, 2], 7)
        ad.put("SUCCESS", [3])
        conn.update_atom_details(ad)
        assert conn.get_atom_details("a1").revision == 8
    be.close()


@pytest.mark.parametrize("kind", KINDS)
def test_downgrade_to_base_and_back(sql_database_factory, kind):
    with persistence.backend(sql_database_factory(kind)) as be:
        with be.engine.connect() as c:
            command.downgrade(migrate._config(c), "base")
            c.commit()
            assert migrate.current(c) is None
            assert not {"logbooks", "atomdetail_chunks"} & set(sa.inspect(c).get_table_names())
        with contextlib.closing(be.get_connection()) as conn:
            conn.upgrade()
            conn.validate()


_RACER = textwrap.dedent("""
    import sys, persistence
    be = persistence.fetch(sys.argv[1])
    conn = be.get_connection()
    sys.stdout.write("ready\\n"); sys.stdout.flush()
    sys.stdin.readline()          # everyone starts together
    conn.upgrade()
    conn.validate()
    print("upgraded")
""")


@pytest.mark.parametrize("kind", KINDS)
def test_processes_upgrading_at_once_do_not_break(sql_database_factory, kind):
    url = sql_database_factory(kind)
    racers = [subprocess.Popen([sys.executable, "-c", _RACER, url], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for _ in range(4)]
    try:
        for p in racers:
            assert p.stdout.readline().strip() == "ready", p.stderr.read()
        for p in racers:
            p.stdin.write("go\n")
            p.stdin.flush()
        outcomes = [p.communicate(timeout=120) for p in racers]
    finally:
        for p in racers:
            if p.poll() is None:
                p.kill()
    for p, (out, err) in zip(racers, outcomes):
        assert p.returncode == 0 and out.strip() == "upgraded", err
    be = persistence.fetch(url)
    assert _version(be) == migrate.head()
    be.close()
