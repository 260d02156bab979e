"""What a user expects of the ``persistence`` command beyond the basics: purge asks on a
terminal, globs, the injector marked, no wrapped fields in a pipe, sub-second times,
one environment variable."""

from __future__ import annotations

import json
import pathlib
import re

import sqlalchemy as sa

import persistence
from persistence import states
from persistence.atom import Task
from persistence.models import FlowDetail, LogBook
from persistence.storage import Storage
from tests.cli_pty import run_on_a_terminal
from tests.test_cli import run

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _finished_books(uri: str, names: list[str]) -> list[LogBook]:
    books = []
    with persistence.backend(uri) as be, be.get_connection() as conn:
        for name in names:
            book, flow = LogBook(name), FlowDetail("flow")
            flow.state = states.SUCCESS
            book.add(flow)
            conn.save_logbook(book)
            books.append(book)
    return books


def test_purge_asks_on_a_terminal_unless_yes_and_dry_run_lists(tmp_path):
    uri = f"sqlite:///{tmp_path}/flows.db"
    old = _finished_books(uri, ["a", "b"])
    listed = run("purge", uri, "--finished-before", "0s", "--dry-run")
    assert listed.returncode == 0
    assert all(f"  {b.uuid}" in listed.stdout for b in old) and "would delete 2" in \
        listed.stdout

    done = run_on_a_terminal(["purge", uri, "--finished-before", "0s"], answer=b"n\n")
    seen = done.terminal
    assert done.returncode == 0 and "Delete these 2 logbook(s)" in seen
    assert "nothing deleted" in seen and all(b.uuid in seen for b in old)
    assert json.loads(run("ls", uri, "--json").stdout)["total"] == 2

    done = run_on_a_terminal(["purge", uri, "--finished-before", "0s"], answer=b"y\n")
    assert done.returncode == 0 and "deleted 2 logbook(s)" in done.terminal
    assert json.loads(run("ls", uri, "--json").stdout)["total"] == 0

    _finished_books(uri, ["c"])
    done = run_on_a_terminal(["purge", uri, "--finished-before", "0s", "--yes"])
    assert done.returncode == 0 and "[y/N]" not in done.terminal
    assert "deleted 1 logbook(s)" in done.terminal


def test_ls_name_globs_and_piped_output_never_wraps_a_field(tmp_path):
    uri = f"sqlite:///{tmp_path}/flows.db"
    long_name = "nightly-" + "x" * 300
    books = _finished_books(uri, ["nightly-1", "nightly-2", "weekly-1", long_name])
    done = run("ls", uri, "--name", "nightly-?", "--json")
    assert {b["name"] for b in json.loads(done.stdout)["logbooks"]} == {"nightly-1",
                                                                        "nightly-2"}
    page = json.loads(run("ls", uri, "--name", "nightly-*", "--limit", "1", "--json").stdout)
    assert page["total"] == 3 and len(page["logbooks"]) == 1
    assert json.loads(run("ls", uri, "--name", "[w]*", "--json").stdout)["total"] == 1
    table = run("ls", uri).stdout                          # a pipe, not a terminal
    row = next(line for line in table.splitlines() if books[3].uuid in line)
    assert long_name in row                                # whole, on the uuid's line


def test_show_marks_the_injector_as_engine_internal(tmp_path):
    uri = f"file://{tmp_path}/store"
    book, flow = LogBook("injected"), FlowDetail("flow")
    book.add(flow)
    with persistence.backend(uri) as be:
        with be.get_connection() as conn:
            conn.save_logbook(book)
        storage = Storage(flow, be)
        storage.ensure_atoms([Task("work", requires=["size"])])
        storage.inject({"size": 3, "colour": "red"})
        storage.close()
    out = run("show", uri, book.uuid).stdout
    assert "injected values (2: colour, size)" in out and "engine-internal" in out
    assert "1 atom(s)" in out and "_TaskFlow_INJECTOR (task)" not in out
    atoms = json.loads(run("show", uri, book.uuid, "--json").stdout)["flow_details"][0][
        "atom_details"]
    assert {a["name"]: a["engine_internal"] for a in atoms} == {
        "work": False, storage.injector_name: True}


def test_sqlite_server_times_have_sub_seconds(tmp_path):
    uri = f"sqlite:///{tmp_path}/flows.db"
    book, flow = LogBook("b"), FlowDetail("f")
    book.add(flow)
    with persistence.backend(uri) as be, be.get_connection() as conn:
        conn.save_logbook(book)
        for state in (states.RUNNING, states.SUCCESS):
            flow.state = state
            conn.update_flow_details(flow)
        flow.state = states.FAILURE
    engine = sa.create_engine(uri)
    with engine.connect() as db:
        created, updated = db.execute(sa.text(
            "select created_at, updated_at from flowdetails")).one()
    engine.dispose()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}", updated), updated
    assert updated > created or updated == created


def test_one_environment_variable_names_the_default_store():
    """The CLI's PERSISTENCE_URI is the only store variable the docs and examples use."""
    names = set()
    for folder in ("doc", "examples"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in (".rst", ".py"):
                names.update(re.findall(r"\bPERSISTENCE_[A-Z_]+", path.read_text()))
    names.update(re.findall(r"\bPERSISTENCE_[A-Z_]+", (ROOT / "README.rst").read_text()))
    names = {n for n in names if "_TEST_" not in n}   # test-suite settings are not stores
    assert names == {"PERSISTENCE_URI"}, names
