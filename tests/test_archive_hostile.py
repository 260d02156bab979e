"""Archive import: everything checked before anything is written, all or nothing,
bounded memory on hostile archives, and a refused archive touches no store."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile

import pytest

import persistence
from persistence.exceptions import StorageFailure
from persistence.models import LogBook
from persistence.testing.samples import make_book
from persistence.tools import archive
from persistence.tools import copy as migrate
from tests.test_archive import all_books

MiB = 1024 * 1024


@pytest.fixture
def three(tmp_path):
    """An archive of three logbooks (each with flows and atoms); (path, books)."""
    books = [make_book(flows=2, atoms=2) for _ in range(3)]
    path = tmp_path / "three.zip"
    with persistence.backend("memory://") as be, be.get_connection() as conn:
        for book in books:
            conn.save_logbook(book)
        archive.export_archive(conn, path, [b.uuid for b in books])
    return path, books


def rebuild(path, records: bytes, extra: dict[str, bytes] | None = None,
            manifest_change: dict | None = None) -> None:
    """Rewrite the archive with ``records`` and a manifest whose checksums match them."""
    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    manifest["members"]["records.jsonl"] = {"sha256": hashlib.sha256(records).hexdigest(),
                                            "size": len(records)}
    manifest.update(manifest_change or {})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", json.dumps(manifest))
        zf.writestr("records.jsonl", records)
        for name, data in (extra or {}).items():
            zf.writestr(name, data)


def records_of(path) -> bytes:
    with zipfile.ZipFile(path) as zf:
        return zf.read("records.jsonl")


def state(conn) -> dict[str, str]:
    """Everything the destination holds, as a digest per logbook."""
    return {uuid: migrate.logbook_digest(book) for uuid, book in all_books(conn).items()}


# -- verify everything first ------------------------------------------------------------

@pytest.mark.parametrize("spoil", ["flow name with NUL", "logbook uuid with /"])
def test_an_unstorable_record_in_the_last_logbook_is_refused_before_anything_is_written(
        three, conn, spoil):
    path, books = three
    data = records_of(path)
    if spoil == "flow name with NUL":
        name = json.dumps(next(iter(books[2])).name).encode()
        at = data.rindex(name)   # in the last logbook
        data = data[:at] + b'"bad\\u0000name"' + data[at + len(name):]
    else:
        data = data.replace(books[2].uuid.encode(), b"a/" + books[2].uuid.encode())
    rebuild(path, data)
    before = state(conn)
    with pytest.raises(archive.ArchiveError, match="line .*nothing was written"):
        archive.import_archive(conn, path)
    assert state(conn) == before == {}


def test_members_the_manifest_does_not_list_are_refused(three, tmp_path):
    path, _ = three
    rebuild(path, records_of(path), extra={"payload.bin": b"x"})
    with pytest.raises(archive.CorruptArchive, match="does not list: 'payload.bin'"):
        archive.verify_archive(path)
    rebuild(path, records_of(path), manifest_change={
        "members": {"records.jsonl": {"sha256": "0", "size": 0}, "other": {}}})
    with pytest.raises(archive.CorruptArchive, match="lists members"):
        archive.verify_archive(path)


# -- all or nothing ---------------------------------------------------------------------

@pytest.mark.parametrize("failure, late", [(StorageFailure("server went away"), False),
                                           (KeyboardInterrupt(), True)],
                         ids=["storage failure", "ctrl-c after the third save"])
def test_a_failure_while_writing_puts_the_destination_back_exactly(three, conn, monkeypatch,
                                                                    failure, late):
    """Every backend: the logbooks written are deleted, those replaced restored."""
    path, books = three
    kept = LogBook("unrelated")
    conn.save_logbook(kept)
    old = LogBook("the old version", uuid=books[1].uuid)
    conn.save_logbook(old)
    before = state(conn)
    written = []
    real = archive.put_logbook

    def put(dst, book, existing):
        if len(written) == 2:
            if late:   # the third logbook is saved, then the import stops
                real(dst, book, existing)
            raise failure
        written.append(book.uuid)
        return real(dst, book, existing)

    monkeypatch.setattr(archive, "put_logbook", put)
    with pytest.raises(type(failure)) as info:
        archive.import_archive(conn, path, existing="replace")
    assert written == [books[0].uuid, books[1].uuid]   # one created, one replaced
    assert "put back as it was" in "".join(getattr(info.value, "__notes__", []))
    assert state(conn) == before
    assert conn.get_logbook(books[1].uuid).name == "the old version"
    # atomic=False keeps what was written, each logbook whole.
    with pytest.raises(type(failure)):
        written.clear()
        archive.import_archive(conn, path, existing="replace", atomic=False)
    assert books[0].uuid in state(conn) and state(conn)[books[1].uuid] != before[books[1].uuid]


def test_an_archive_changed_after_its_check_is_rolled_back(three, monkeypatch):
    """The write pass checks the checksums again; a mismatch at its end undoes everything."""
    path, books = three
    checked = archive.scan(path, archive.Limits())
    monkeypatch.setattr(archive, "scan", lambda *a, **k: checked)
    data = records_of(path)
    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    manifest["members"]["records.jsonl"]["sha256"] = "0" * 64   # no longer matching
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("manifest.json", json.dumps(manifest))
        zf.writestr("records.jsonl", data)
    with persistence.backend("memory://") as be, be.get_connection() as conn:
        with pytest.raises(archive.CorruptArchive, match="checksum"):
            archive.import_archive(conn, path)
        assert all_books(conn) == {}


# -- bounded memory ---------------------------------------------------------------------

def test_the_line_limit_is_configurable(three):
    path, books = three
    longest = max(len(line) for line in records_of(path).splitlines(keepends=True))
    with pytest.raises(archive.CorruptArchive, match="longer than"):
        archive.verify_archive(path, limits=archive.Limits(line_bytes=longest - 1))
    assert archive.verify_archive(path, limits=archive.Limits(line_bytes=longest)).counts[
        "logbooks"] == 3
    with pytest.raises(ValueError):
        archive.Limits(line_bytes=0)


def _bomb(path, member: str, size: int) -> None:
    """A zip whose ``member`` expands to ``size`` bytes of one JSON string, no newline."""
    manifest = {"format": "persistence-archive", "version": 1, "created_at": "x",
                "producer": "test", "source": None,
                "counts": {"logbooks": 1, "flow_details": 0, "atom_details": 0},
                "members": {"records.jsonl": {"sha256": "0" * 64, "size": size}}}
    chunk = b"A" * MiB
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        if member != "manifest.json":
            zf.writestr("manifest.json", json.dumps(manifest))
        with zf.open(member, "w", force_zip64=True) as out:
            out.write(b'{"kind": "logbook", "name": "')
            for _ in range(size // MiB):
                out.write(chunk)
        if member == "manifest.json":
            zf.writestr("records.jsonl", b"")
    assert os.path.getsize(path) < size // 200     # a bomb: tiny on disk


@pytest.mark.parametrize("member", ["records.jsonl", "manifest.json"])
def test_a_zip_bomb_is_refused_with_bounded_memory_and_no_store_created(tmp_path, member):
    bomb = tmp_path / "bomb.zip"
    _bomb(bomb, member, 400 * MiB)
    store = tmp_path / "never.db"
    env = {k: v for k, v in os.environ.items() if k != "PERSISTENCE_URI"}
    status_file = tmp_path / "status"
    # The child reports its own peak (VmHWM of its own address space) as it exits:
    # wait4's ru_maxrss would also count the parent's pages before exec (a big pytest
    # process late in a full run), not only what the import itself used.
    child = (f"import atexit, runpy, sys; atexit.register(lambda: open({str(status_file)!r}, "
             f"'w').write(open('/proc/self/status').read())); "
             f"sys.argv = ['persistence', 'import', {f'sqlite:///{store}'!r}, {str(bomb)!r}]; "
             f"runpy.run_module('persistence', run_name='__main__')")
    with open(tmp_path / "err", "w+") as err:
        proc = subprocess.run([sys.executable, "-c", child], stdout=subprocess.DEVNULL,
                              stderr=err, env=env, timeout=300)
        err.seek(0)
        message = err.read()
    hwm = next(line for line in status_file.read_text().splitlines()
               if line.startswith("VmHWM:"))
    peak_mib = int(hwm.split()[1]) / 1024     # kB
    assert 10 < peak_mib < 300, f"peak RSS {peak_mib:.0f} MiB refusing a 400 MiB {member}"
    assert proc.returncode == 2, message
    assert "refused" in message and ("longer than" in message or "larger than" in message)
    assert not store.exists()   # nothing created or upgraded before the archive verified


def test_a_corrupt_archive_refused_by_the_cli_creates_no_store(three, tmp_path):
    path, _ = three
    rebuild(path, records_of(path)[:-10])
    store = tmp_path / "store"
    done = subprocess.run([sys.executable, "-m", "persistence", "import", f"file://{store}",
                           str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "truncated" in done.stderr, done.stderr
    assert not store.exists()
