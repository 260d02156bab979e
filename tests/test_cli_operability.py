"""The ``persistence`` command as a new user meets it: real processes only.

Read-only commands create nothing; every error is one line (and a JSON object
with ``--json``); permanent errors are not retried; interrupted copies say how
to finish; exit codes are the documented ones.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import signal
import subprocess
import sys

import persistence
from persistence.tools.cli import errors as cli_errors
from tests.test_cli import SECRET, run
from tests.test_cli_transfer import _fill

_PROGRESS = re.compile(r"^[a-z ]+: [\d,]+/[\d,]+ ")
DOC = pathlib.Path(__file__).resolve().parent.parent / "doc" / "cli.rst"


def _one_error_line(done: subprocess.CompletedProcess, command: str) -> str:
    """The error line; nothing else on stderr but progress lines ("verify: 1/2 …")."""
    lines = [line for line in done.stderr.splitlines() if not _PROGRESS.match(line)]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"persistence {command}: error: "), lines
    assert "Traceback" not in done.stderr
    return lines[0]


def test_read_only_commands_and_sources_create_nothing(tmp_path):
    typo, folder = f"sqlite:///{tmp_path}/typo.db", f"file://{tmp_path}/no/such/dir"
    for args in (["ls", typo], ["ls", folder], ["show", typo, "x"], ["history", folder],
                 ["summary", typo, "x"], ["validate", folder], ["export", typo,
                                                               str(tmp_path / "a.zip")],
                 ["migrate", typo, f"sqlite:///{tmp_path}/dst.db"]):
        done = run(*args)
        assert done.returncode == 2, (args, done.stderr)
        line = _one_error_line(done, args[0])
        assert "no persistence store at" in line and "persistence upgrade" in line, line
    assert sorted(os.listdir(tmp_path)) == []        # no file, no directory, no lock

    # --dry-run import into a store that is not there yet: an empty store, still nothing made.
    src = f"sqlite:///{tmp_path}/src.db"
    _fill(src, 2, atoms=1)
    archive = tmp_path / "two.zip"
    assert run("export", src, str(archive)).returncode == 0
    done = run("import", typo, str(archive), "--dry-run", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["valid"] is True
    assert sorted(os.listdir(tmp_path)) == ["src.db", "two.zip"]

    # Importing twice: the error says how to go on.
    dst = f"file://{tmp_path}/dst"
    assert run("import", dst, str(archive)).returncode == 0
    line = _one_error_line(run("import", dst, str(archive)), "import")
    assert "already in the destination" in line and "--existing" in line
    # A dry run against a store that has them reports the same.
    assert "--existing" in _one_error_line(run("import", dst, str(archive), "--dry-run"),
                                           "import")

    # Export into a missing directory names the user's path, not a temporary file.
    target = tmp_path / "missing" / "out.zip"
    line = _one_error_line(run("export", src, str(target)), "export")
    assert str(target) in line and ".tmp" not in line and "does not exist" in line


def test_json_errors_go_to_stdout_as_an_object():
    done = run("ls", f"postgresql://bob:{SECRET}@127.0.0.1:1/db?connect_timeout=1"
                     f"&retry_attempts=0", "--json")
    assert done.returncode == 2
    line = _one_error_line(done, "ls")
    error = json.loads(done.stdout)["error"]
    assert error["command"] == "ls" and error["exit_code"] == 2
    assert error["message"] in line and SECRET not in done.stdout + done.stderr
    usage = run("ls", "--limit", "many", "--json")         # bad usage: argparse's exit 2
    assert usage.returncode == 2 and "usage:" in usage.stderr
    error = json.loads(usage.stdout)["error"]
    assert error["type"] == "UsageError" and error["command"] == "ls"
    assert "--limit" in error["message"] and error["exit_code"] == 2


def test_permanent_postgresql_connection_errors_are_not_transient():
    """What libpq says (no SQLSTATE) when a connection can never succeed as configured;
    checked without a server, which a busy shared one may refuse for other reasons."""
    import psycopg
    import sqlalchemy as sa

    from persistence.backends.sql import errors
    dialect = sa.create_engine("postgresql+psycopg://u@h/db").dialect
    prefix = 'connection failed: connection to server at "127.0.0.1", port 5432 failed: '
    for text in ('FATAL: database "nope" does not exist', 'FATAL: role "nope" does not exist',
                 'FATAL: password authentication failed for user "bob"',
                 "failed to resolve host 'nope.invalid': Name or service not known"):
        assert not errors.is_transient(psycopg.OperationalError(prefix + text), dialect), text
    for text in ("FATAL: sorry, too many clients already", "Connection refused"):
        assert errors.is_transient(psycopg.OperationalError(prefix + text), dialect), text


def test_permanent_connection_errors_fail_at_once_in_one_line():
    for uri, says in (("postgresql://root@no-such-host.invalid/test", "resolve host"),
                      ("mysql://root@no-such-host.invalid/test", "no-such-host.invalid"),
                      ("zookeeper://no-such-host.invalid:2181/flows", "unknown host"),
                      ("mysql://root@127.0.0.1/no_such_database_x", "Unknown database")):
        for command in ("ls", "upgrade"):
            done = run(command, uri)
            line = _one_error_line(done, command)
            assert says in line, line
            assert "gave up after" not in line         # not retried as if transient
            assert "sqlalche.me" not in line and "(psycopg." not in line


def test_unreachable_zookeeper_is_one_line_without_driver_logs():
    done = run("ls", "zookeeper://127.0.0.1:1/flows?timeout=1")
    assert "cannot connect to ZooKeeper" in _one_error_line(done, "ls")
    debug = run("ls", "zookeeper://127.0.0.1:1/flows?timeout=1", "--debug")
    assert "kazoo" in debug.stderr                      # --debug shows everything


def test_validate_groups_identical_damage_with_a_count(tmp_path):
    uri = f"file://{tmp_path}/store"
    _fill(uri, 6, atoms=1)
    for record in (tmp_path / "store" / "atom_details").glob("*/.record"):
        record.write_bytes(b"1\n{trunc")
    done = run("validate", uri)
    assert done.returncode == 1
    problems = [line for line in done.stdout.splitlines() if line.startswith("problem")]
    assert len(problems) == 1 and problems[0].startswith("problem (6 times): "), problems
    report = json.loads(run("validate", uri, "--json").stdout)
    assert len(report["problems"]) == 6 and [g["count"] for g in report["groups"]] == [6]


def test_an_interrupted_migration_says_to_re_run_and_exits_130(tmp_path):
    src, dst = f"sqlite:///{tmp_path}/src.db", f"file://{tmp_path}/dst"
    _fill(src, 60)
    env = {k: v for k, v in os.environ.items() if k != "PERSISTENCE_URI"}
    proc = subprocess.Popen([sys.executable, "-m", "persistence", "migrate", src, dst],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=env)
    try:
        first = proc.stderr.readline()          # the copy is under way
        assert first.startswith("copy: "), first
        proc.send_signal(signal.SIGINT)
        rest = proc.stderr.read()
    finally:
        proc.wait(timeout=60)
        proc.stderr.close()
    assert proc.returncode == 130, rest
    assert "persistence migrate: error: interrupted" in rest and "re-run" in rest
    assert "Traceback" not in rest
    done = run("migrate", src, dst, "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["logbooks"] == 60


def test_version_and_documented_exit_codes():
    done = run("--version")
    assert done.returncode == 0 and done.stdout.startswith(f"persistence "
                                                           f"{persistence.__version__}")
    readme = (DOC.parent.parent / "README.rst").read_text()
    assert "persistence --version" in readme and "persistence[otel]" in readme
    helped = run("--help").stdout
    doc = DOC.read_text()
    for code, meaning in cli_errors.EXIT_CODES.items():
        assert f"{code} {meaning}" in " ".join(helped.split())
        assert f"``{code}``" in doc, code


def test_a_missing_zookeeper_store_is_reported_and_not_created(zookeeper_hosts,
                                                              zookeeper_admin):
    path = f"/operability-{os.getpid()}-store"
    uri = f"zookeeper://{zookeeper_hosts}{path}"
    assert "no persistence store at" in _one_error_line(run("ls", uri), "ls")
    assert zookeeper_admin.exists(path) is None                 # nothing was created
    try:
        assert run("upgrade", uri).returncode == 0
        listed = run("ls", uri, "--json")
        assert listed.returncode == 0 and json.loads(listed.stdout)["total"] == 0
    finally:
        zookeeper_admin.delete(path, recursive=True)
