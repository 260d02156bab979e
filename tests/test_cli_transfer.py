"""``persistence export``, ``import`` and ``migrate`` as a user runs them: real processes,
durable backends (``memory://`` lives in one process only), progress on stderr, a
migration SIGKILLed half-way and finished by running it again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import zipfile

import persistence
from persistence import states
from persistence.models import FlowDetail, LogBook, TaskDetail
from tests.cli_pty import run_on_a_terminal
from tests.test_archive import all_books, rich_book, same_books
from tests.test_cli import SECRET, run


def _fill(uri: str, count: int, atoms: int = 5) -> list[str]:
    uuids = []
    with persistence.backend(uri) as be, be.get_connection() as conn:
        for i in range(count):
            book = LogBook(f"book-{i}")
            fd = FlowDetail("flow", f"flow-{i}")
            for a in range(atoms):
                ad = TaskDetail(f"task-{a}", f"atom-{i}-{a}")
                ad.put(states.SUCCESS, {"i": i, "a": a})
                fd.add(ad)
            book.add(fd)
            conn.save_logbook(book)
            uuids.append(book.uuid)
    return uuids


def _books(uri: str) -> dict[str, LogBook]:
    with persistence.backend(uri) as be, be.get_connection() as conn:
        return all_books(conn)


def test_export_then_import_into_another_backend(tmp_path):
    src, dst = f"sqlite:///{tmp_path}/src.db", f"file://{tmp_path}/dst"
    books = [rich_book(f"b{i}") for i in range(3)]
    with persistence.backend(src) as be, be.get_connection() as conn:
        for book in books:
            conn.save_logbook(book)
    archive_path = tmp_path / "all.zip"
    done = run("export", src, str(archive_path), "--json")
    assert done.returncode == 0, done.stderr
    manifest = json.loads(done.stdout)
    assert manifest["counts"]["logbooks"] == 3 and manifest["source"] == src
    assert "export: 3/3 logbooks (100%)" in done.stderr        # plain progress: not a terminal

    done = run("import", dst, str(archive_path), "--dry-run")
    assert done.returncode == 0 and "nothing written" in done.stdout
    done = run("import", dst, str(archive_path))
    assert done.returncode == 0, done.stderr
    assert "3 created, 0 replaced, 0 skipped; every record verified" in done.stdout
    same_books(_books(dst), books)

    again = run("import", dst, str(archive_path))               # default: refuse, write nothing
    assert again.returncode == 2 and "already in the destination" in again.stderr
    resumed = run("import", dst, str(archive_path), "--existing", "resume", "--json")
    assert json.loads(resumed.stdout)["skipped"] == 3

    one = tmp_path / "one.zip"
    assert run("export", src, str(one), "--logbook", books[1].uuid).returncode == 0
    with zipfile.ZipFile(one) as zf:
        assert json.loads(zf.read("manifest.json"))["counts"]["logbooks"] == 1


def test_import_of_a_truncated_archive_is_refused_and_writes_nothing(tmp_path):
    src, dst = f"sqlite:///{tmp_path}/src.db", f"sqlite:///{tmp_path}/dst.db"
    _fill(src, 5)
    path = tmp_path / "a.zip"
    assert run("export", src, str(path)).returncode == 0
    path.write_bytes(path.read_bytes()[:-200])
    done = run("import", dst, str(path))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("persistence import: error: ") and "truncated" in done.stderr
    assert len(done.stderr.splitlines()) == 1
    assert _books(dst) == {}


def test_migrate_prints_json_and_masks_passwords(tmp_path, sql_database_factory):
    src = f"sqlite:///{tmp_path}/src.db"
    uuids = _fill(src, 4)
    server = sql_database_factory("postgresql")
    dst = server.replace("postgresql+psycopg://postgres@",
                         f"postgresql://postgres:{SECRET}@")   # trust auth ignores it
    done = run("migrate", src, dst, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["created"] == 4 and report["verified"] is True
    assert SECRET not in done.stdout + done.stderr and "***" in report["dst"]
    assert "copy: 4/4 logbooks (100%)" in done.stderr and "verify: 4/4" in done.stderr
    assert sorted(_books(dst)) == sorted(uuids)


def kill_migrate_mid_copy(src: str, dst: str) -> None:
    """Start ``persistence migrate SRC DST`` and SIGKILL it once the copy is under way."""
    env = {k: v for k, v in os.environ.items() if k != "PERSISTENCE_URI"}
    proc = subprocess.Popen([sys.executable, "-m", "persistence", "migrate", src, dst],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=env)
    try:
        first = proc.stderr.readline()          # "copy: 6/60 ..." — the copy is under way
        assert first.startswith("copy: "), first
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL


def test_a_killed_migration_finishes_when_run_again_without_duplicates(tmp_path):
    src, dst = f"sqlite:///{tmp_path}/src.db", f"file://{tmp_path}/dst"
    uuids = _fill(src, 60)
    kill_migrate_mid_copy(src, dst)
    partial = len(_books(dst))
    assert 0 < partial < 60

    done = run("migrate", src, dst, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["verified"] and report["logbooks"] == 60
    assert report["skipped"] >= partial - 1          # at most one was half-written
    assert report["created"] + report["replaced"] >= 60 - partial
    assert sorted(_books(dst)) == sorted(uuids)
    assert json.loads(run("migrate", src, dst, "--json").stdout)["skipped"] == 60


def test_progress_is_a_bar_with_counts_and_rate_on_a_terminal(tmp_path):
    src, dst = f"sqlite:///{tmp_path}/src.db", f"sqlite:///{tmp_path}/dst.db"
    _fill(src, 30)
    done = run_on_a_terminal(["migrate", src, dst], on_terminal=["stderr"],
                             env={"NO_COLOR": None, "TERM": "xterm-256color", "COLUMNS": "120"})
    assert done.returncode == 0
    text = done.terminal
    assert "copy logbooks" in text and "30/30" in text and "verify logbooks" in text
    assert "━" in text and "\x1b[" in text                   # a drawn bar, in colour
    assert "/s" in text
    assert b"30 created" in done.stdout
