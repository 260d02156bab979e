"""The ``persistence history``, ``summary`` and ``purge`` subcommands."""

from __future__ import annotations

import json
import sqlite3

import pytest

import persistence
from persistence import states
from persistence.testing.samples import make_book, make_failure
from tests.test_cli import call, run


@pytest.fixture
def store(tmp_path):
    """A sqlite file with two logbooks: one finished (SUCCESS), one RUNNING with a
    failed atom; yields (uri, finished book, running book)."""
    uri = f"sqlite:///{tmp_path}/flows.db"
    with persistence.backend(uri) as be, be.get_connection() as conn:
        done = make_book(flows=2, atoms=2, name="done")
        for fd in done:
            fd.state = states.SUCCESS
        conn.save_logbook(done)
        running = make_book(flows=1, atoms=3, name="running")
        conn.owner = "worker-1"
        conn.save_logbook(running)
        ad = next(iter(next(iter(running))))
        ad.put(states.FAILURE, make_failure("disk full"))
        conn.update_atom_details(ad)
    return uri, done, running


def test_history_of_a_flow_as_a_table_and_as_json(store):
    uri, _, running = store
    fd = next(iter(running))
    code, out, err = call("history", uri, "--flow", fd.uuid)
    assert code == 0 and err == ""
    assert "History (5 entries, newest first)" in out and "SUCCESS → FAILURE" in out
    assert "worker-1" in out
    code, out, _ = call("history", uri, "--flow", fd.uuid, "--json")
    entries = json.loads(out)["entries"]
    assert [e["new_state"] for e in entries][0] == states.FAILURE      # newest first
    assert {e["flow_uuid"] for e in entries} == {fd.uuid}
    failed = next(iter(fd)).uuid
    one = json.loads(call("history", uri, "--uuid", failed, "--json")[1])["entries"]
    assert [e["revision"] for e in one] == [2, 1]
    oldest = json.loads(call("history", uri, "--uuid", failed, "--json", "--oldest-first")[1])
    assert [e["revision"] for e in oldest["entries"]] == [1, 2]
    every = json.loads(call("history", uri, "--json", "--limit", "0")[1])
    newest = json.loads(call("history", uri, "--limit", "2", "--json")[1])
    assert newest["entries"] == every["entries"][:2] and newest["total"] == every["total"]
    code, out, _ = call("history", uri, "--limit", "2")
    assert f"more: {every['total'] - 2} older entries" in out
    assert json.loads(call("history", uri, "--since", "2999-01-01", "--json")[1])[
        "entries"] == []


def test_summary_as_a_table_and_as_json(store):
    uri, _, running = store
    fd = next(iter(running))
    code, out, err = call("summary", uri, fd.uuid)
    assert code == 0 and err == ""
    assert "3 atom(s)" in out and "failures: 1" in out
    data = json.loads(call("summary", uri, fd.uuid, "--json")[1])
    assert data["by_state"] == {states.SUCCESS: 2, states.FAILURE: 1}
    assert data["failures"] == 1 and data["state"] == states.RUNNING
    done = run("summary", uri, "no-such-flow")
    assert done.returncode == 2 and "no flow detail no-such-flow" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_purge_dry_run_then_for_real_with_progress(store):
    uri, done, running = store
    code, out, err = call("purge", uri, "--finished-before", "0s", "--dry-run", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["dry_run"] and report["logbooks"] == [done.uuid]
    assert (report["flow_details"], report["atom_details"]) == (2, 4)
    assert "dry run: 1/1 logbooks" in err   # plain progress lines when not on a terminal
    code, out, err = call("purge", uri, "--finished-before", "0s", "--batch-size", "1")
    assert code == 0
    assert out.strip() == ("deleted 1 logbook(s), 2 flow detail(s), 4 atom detail(s) in "
                           "1 batch(es)")
    with persistence.backend(uri) as be, be.get_connection() as conn:
        assert [b.uuid for b in conn.list_logbooks()] == [running.uuid]
    code, out, _ = call("purge", uri, "--finished-before", "0s", "--state", "RUNNING",
                        "--json")
    assert json.loads(out)["logbooks"] == [running.uuid]


def test_purge_needs_a_cutoff_and_a_positive_batch(store):
    uri, _, _ = store
    assert call("purge", uri)[0] == 2
    code, _, err = call("purge", uri, "--finished-before", "1d", "--batch-size", "0")
    assert code == 2 and "--batch-size must be at least 1" in err
    code, _, err = call("purge", uri, "--finished-before", "yesterday")
    assert code == 2 and "not a time" in err


def test_printing_the_upgrade_sql_of_a_sqlite_file_changes_nothing(tmp_path):
    missing = tmp_path / "missing.db"
    code, out, _ = call("upgrade", "--sql", f"sqlite:///{missing}")
    assert code == 0 and "CREATE TABLE" in out
    assert not missing.exists()                       # read-only: nothing created
    legacy = tmp_path / "legacy.db"
    with sqlite3.connect(legacy) as raw:             # a rollback-journal file, no schema
        raw.execute("CREATE TABLE unrelated (x)")
    header = legacy.read_bytes()[:100]
    code, out, _ = call("upgrade", "--sql", f"sqlite:///{legacy}")
    assert code == 0 and "CREATE TABLE" in out
    assert legacy.read_bytes()[:100] == header        # not switched to WAL
