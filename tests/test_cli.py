"""The ``persistence`` command: ls, show, upgrade, validate, errors and output modes.

In-process calls (``cli.main``) check content; subprocesses check what a user
sees: stdout/stderr split, exit codes, no traceback, masked passwords.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys

import pytest

import persistence
from persistence import states
from persistence.models import FlowDetail, LogBook, TaskDetail
from persistence.testing.samples import make_failure, new_uuid
from persistence.tools.cli import app as cli
from persistence.tools.cli import browse
from persistence.tools.cli import console as _console
from tests.test_archive import rich_book

SECRET = "hunter2-s3cret"


def run(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m persistence ARGS`` in a fresh process (stdout and stderr are pipes)."""
    full_env = {k: v for k, v in os.environ.items() if k != cli.ENV_URI}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "persistence", *args], capture_output=True,
                          text=True, env=full_env, timeout=timeout)


def call(*args: str) -> tuple[int, str, str]:
    """``cli.main(ARGS)`` in this process: (exit code, stdout, stderr)."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = cli.main(list(args))
        except SystemExit as exit_:
            code = exit_.code
    return code, stdout.getvalue(), stderr.getvalue()


@pytest.fixture
def store(tmp_path):
    """A sqlite file with three logbooks (one with failures); yields (uri, books)."""
    uri = f"sqlite:///{tmp_path}/flows.db"
    books = []
    with persistence.backend(uri) as be, be.get_connection() as conn:
        for i, name in enumerate(["alpha", "beta", "beta"]):
            book = rich_book(name) if i == 0 else LogBook(name)
            conn.save_logbook(book)
            books.append(book)
    return uri, books


# -- ls ---------------------------------------------------------------------------

def test_ls_lists_newest_first_as_a_table_and_as_json(store):
    uri, books = store
    code, out, err = call("ls", uri)
    assert code == 0 and err == ""
    assert "Logbooks 1-3 of 3" in out
    lines = [line for line in out.splitlines() if any(b.uuid in line for b in books)]
    assert [b.uuid for b in reversed(books)] == [
        next(b.uuid for b in books if b.uuid in line) for line in lines]
    code, out, _ = call("ls", uri, "--json")
    data = json.loads(out)
    assert [b["uuid"] for b in data["logbooks"]] == [b.uuid for b in reversed(books)]
    assert data["total"] == 3 and data["offset"] == 0


def test_ls_filters_and_pages(store):
    uri, books = store
    data = json.loads(call("ls", uri, "--name", "beta", "--json")[1])
    assert {b["uuid"] for b in data["logbooks"]} == {books[1].uuid, books[2].uuid}
    code, out, _ = call("ls", uri, "--limit", "1", "--offset", "1")
    assert books[1].uuid in out and books[0].uuid not in out and books[2].uuid not in out
    assert "Logbooks 2-2 of 3" in out and "more: --offset 2" in out
    assert json.loads(call("ls", uri, "--updated-since", "1h", "--json")[1])["total"] == 3
    assert json.loads(call("ls", uri, "--updated-before", "2000-01-01", "--json")[1])[
        "logbooks"] == []
    assert json.loads(call("ls", uri, "--offset", "5", "--json")[1])["logbooks"] == []


def test_ls_takes_the_uri_from_the_environment(store):
    uri, books = store
    done = run("ls", "--json", env={cli.ENV_URI: uri})
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["logbooks"]) == 3


def test_list_logbooks_pages_and_counts_in_the_backend():
    calls = []

    class Listing:
        def list_logbooks(self, **kwargs):
            calls.append(("list", kwargs))
            return iter([LogBook("x")])

        def count_logbooks(self, **kwargs):
            calls.append(("count", kwargs))
            return 11

    books, total = browse.list_logbooks(Listing(), name="x", limit=5, offset=10)
    assert len(books) == 1 and total == 11
    filters = {"name": "x", "updated_since": None, "updated_before": None}
    assert calls == [("list", {**filters, "limit": 5, "offset": 10}), ("count", filters)]


# -- show -------------------------------------------------------------------------

def _tree_book() -> LogBook:
    book = LogBook("nightly [prod]")
    fd = FlowDetail("import", new_uuid())
    fd.state = states.FAILURE
    ok = TaskDetail("fetch", new_uuid())
    ok.put(states.SUCCESS, {"rows": 1200, "long": "x" * 500})
    bad = TaskDetail("load", new_uuid())
    bad.put(states.FAILURE, make_failure("disk full", "io"))
    bad.intention = states.REVERT
    pending = TaskDetail("report", new_uuid())
    for ad in (ok, bad, pending):
        fd.add(ad)
    book.add(fd)
    return book


def test_show_prints_the_tree_with_states_intentions_and_short_results(tmp_path):
    uri = f"file://{tmp_path}/store"
    book = _tree_book()
    with persistence.backend(uri) as be, be.get_connection() as conn:
        conn.save_logbook(book)
    code, out, err = call("show", uri, book.uuid)
    assert code == 0 and err == "", err
    assert "logbook nightly [prod]" in out and book.uuid in out
    assert "flow import FAILURE" in out
    assert "fetch (task) SUCCESS intention EXECUTE" in out
    assert 'result: {"rows": 1200, "long": "xxx' in out and "…" in out and "x" * 100 not in out
    assert "load (task) FAILURE intention REVERT" in out
    assert "failure: persistence.testing.samples.SampleError: disk full" in out
    assert "report (task) - intention EXECUTE" in out
    # A flow detail's uuid shows that flow.
    fd = next(iter(book))
    code, out, _ = call("show", uri, fd.uuid)
    assert code == 0 and out.startswith("flow import FAILURE") and "logbook" not in out


def test_show_json_has_every_record_in_full(store):
    uri, books = store
    code, out, _ = call("show", uri, books[0].uuid, "--json")
    data = json.loads(out)
    assert data["logbook"]["uuid"] == books[0].uuid
    want = {fd.uuid: {ad.uuid for ad in fd} for fd in books[0]}
    got = {fd["uuid"]: {ad["uuid"] for ad in fd["atom_details"]} for fd in data["flow_details"]}
    assert got == want
    failures = [ad["failure"] for fd in data["flow_details"] for ad in fd["atom_details"]
                if ad["failure"]]
    assert failures and "exc_type_names" in json.dumps(failures)


def test_show_of_an_unknown_uuid_is_one_error_line(store):
    uri, _ = store
    done = run("show", uri, "no-such-uuid")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == "persistence show: error: no logbook or flow detail no-such-uuid\n"


def test_plain_output_without_rich_strips_markup():
    stream = io.StringIO()
    out = _console.Output(stream, use_rich=False)
    out.tree(("[bold]root[/] " + _console.escape("[x]"), [("[red]child[/]", [])]))
    assert stream.getvalue() == "root [x]\n  child\n"


# -- upgrade ----------------------------------------------------------------------

def test_upgrade_creates_and_reports_the_schema(tmp_path):
    uri = f"sqlite:///{tmp_path}/new.db"
    code, out, _ = call("upgrade", uri)
    assert code == 0 and "migrated from an empty database to" in out
    code, out, _ = call("upgrade", uri, "--json")
    assert json.loads(out)["changed"] is False
    code, out, _ = call("upgrade", f"file://{tmp_path}/dir")
    assert code == 0 and "up to date" in out
    assert call("validate", f"file://{tmp_path}/dir")[0] == 0


@pytest.mark.parametrize("uri, marker", [
    (f"postgresql://bob:{SECRET}@127.0.0.1:1/flows", "CREATE TABLE logbooks"),
    (f"mysql://bob:{SECRET}@127.0.0.1:1/flows", "ENGINE=InnoDB"),
    ("sqlite:///{tmp}/never-created.db", "CREATE TABLE logbooks"),
])
def test_upgrade_sql_prints_the_sql_without_touching_a_database(uri, marker, tmp_path):
    uri = uri.format(tmp=tmp_path)
    done = run("upgrade", uri, "--sql", "--from", "base")
    assert done.returncode == 0, done.stderr
    assert marker in done.stdout and "persistence_alembic_version" in done.stdout
    assert SECRET not in done.stdout + done.stderr
    assert not (tmp_path / "never-created.db").exists()
    partial = run("upgrade", uri, "--sql", "--from", "0001")
    assert "CREATE TABLE logbooks" not in partial.stdout and "txn" in partial.stdout


def test_upgrade_sql_asks_the_database_where_it_is(store):
    uri, _ = store
    done = run("upgrade", uri, "--sql")
    assert done.returncode == 0 and "CREATE TABLE" not in done.stdout


def test_upgrade_sql_on_a_backend_without_sql_is_an_error(tmp_path):
    code, out, err = call("upgrade", f"file://{tmp_path}/d", "--sql")
    assert code == 2 and "--sql applies to SQL backends only" in err


# -- validate ---------------------------------------------------------------------

def test_validate_reports_unreadable_records_and_exits_1(tmp_path):
    uri = f"file://{tmp_path}/store"
    good, bad = _tree_book(), _tree_book()
    with persistence.backend(uri) as be, be.get_connection() as conn:
        conn.save_logbook(good)
        conn.save_logbook(bad)
    code, out, _ = call("validate", uri)
    assert code == 0 and "OK; 2 logbook(s), 2 flow detail(s), 6 atom detail(s) read" in out
    victim = next(iter(next(iter(bad))))
    (tmp_path / "store" / "atom_details" / victim.uuid / ".record").write_bytes(b"1\n{trunc")
    code, out, _ = call("validate", uri, "--json")
    data = json.loads(out)
    assert code == 1 and data["ok"] is False and data["checked"]["logbooks"] == 1
    assert len(data["problems"]) == 1 and bad.uuid in data["problems"][0]
    assert "corrupt or truncated" in data["problems"][0]


def test_validate_of_a_backend_never_upgraded(tmp_path):
    code, out, err = call("validate", f"sqlite:///{tmp_path}/empty.db")
    assert code == 2 and "no persistence store at" in err and "persistence upgrade" in err
    assert not (tmp_path / "empty.db").exists()


# -- errors -----------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["ls"], "no backend URI: pass one"),
    (["ls", "nosuch://x"], "no backend named 'nosuch'"),
    (["ls", f"postgresql://bob:{SECRET}@127.0.0.1:1/db?connect_timeout=1&retry_attempts=0"],
     "127.0.0.1:1"),
    (["ls", "file:///dev/null/not-a-dir"], "error"),
    (["import", "memory://", "/nonexistent/archive.zip"], "no archive at"),
    (["migrate", "memory://", "memory://"], "SRC and DST are the same backend"),
])
def test_errors_are_one_line_without_traceback_or_password(args, message):
    done = run(*args)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"persistence {args[0]}: error: "), lines
    assert message in lines[0]
    assert "Traceback" not in done.stderr and SECRET not in done.stderr + done.stdout


def test_debug_shows_the_traceback_with_the_password_masked():
    uri = f"postgresql://bob:{SECRET}@127.0.0.1:1/db?connect_timeout=1&retry_attempts=0"
    done = run("--debug", "ls", uri)
    assert done.returncode == 2 and "Traceback" in done.stderr
    assert SECRET not in done.stderr
    assert "Traceback" in run("ls", uri, "--debug").stderr


def test_usage_errors_exit_2():
    assert call("ls", "--limit", "x")[0] == 2
    assert call("nosuchcommand")[0] == 2


def test_every_subcommand_takes_json_and_debug():
    parser = cli.build_parser()
    for name in ("ls", "show", "upgrade", "validate", "export", "import", "migrate", "demo"):
        code, text, _ = call(name, "--help")
        assert code == 0
        assert "--json" in text and "--debug" in text, name
    assert parser.parse_args(["ls", "--json"]).json is True


def test_demo_json_reports_the_resumed_run(tmp_path):
    uri = f"file://{tmp_path}/demo"
    code, out, err = call("demo", "--backend", uri, "--crash-after", "2", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["skipped"] == ["generate", "square"] and report["identical"] is True
    assert report["crash_returncode"] == -9 and report["reexecuted_finished"] == []
    assert "run 1" in err                                   # the children's lines: stderr
    code, out, _ = call("show", uri, report["logbook"])
    assert code == 0 and "join (task) SUCCESS" in out
