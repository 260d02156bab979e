"""Archives: a lossless round trip through any backend, and corrupt archives refused
with nothing written."""

from __future__ import annotations

import json
import os
import zipfile

import pytest

import persistence
from persistence import states
from persistence.exceptions import Duplicate, NotFound
from persistence.failure import Failure
from persistence.models import FlowDetail, LogBook, RetryDetail, TaskDetail
from persistence.testing._support import same_atom, same_failure
from persistence.testing.samples import (
    FALSY_RESULTS,
    UNICODE_RESULT,
    make_book,
    make_failure,
    new_uuid,
)
from persistence.tools import archive
from persistence.tools.copy import logbook_digest


def rich_book(name: str = "rich ✓") -> LogBook:
    """A logbook with every awkward value: failures, retry histories, unicode, falsy values."""
    book = make_book(flows=2, atoms=3, name=name)
    fd = FlowDetail("failures", new_uuid())
    fd.state = states.FAILURE
    task = TaskDetail("täsk", new_uuid())
    task.put(states.FAILURE, make_failure("execute failed ✗", "cause"))
    task.revert_failure = make_failure("revert failed", "other")
    task.meta.update({"progress": 0.5, "falsy": FALSY_RESULTS})
    task.version = (1, 2)
    fd.add(task)
    retry = RetryDetail("retry", new_uuid())
    for i in range(3):
        retry.put(states.SUCCESS, {"attempt": i, "value": UNICODE_RESULT})
        retry.results[-1][1]["task"] = make_failure(f"attempt {i} failed", f"k{i}")
    fd.add(retry)
    book.add(fd)
    return book


def all_books(conn) -> dict[str, LogBook]:
    return {book.uuid: book for book in conn.get_logbooks()}


def same_books(got: dict[str, LogBook], want: list[LogBook]) -> None:
    """Same logbooks with the same content (all but updated_at), failures as Failure objects."""
    assert sorted(got) == sorted(b.uuid for b in want)
    for book in want:
        assert logbook_digest(got[book.uuid]) == logbook_digest(book)
        for fd in book:
            for ad in fd:
                same_atom(got[book.uuid].find(fd.uuid).find(ad.uuid), ad)


@pytest.fixture
def source():
    """A memory backend holding three rich logbooks."""
    with persistence.backend("memory://") as be, be.get_connection() as conn:
        books = [rich_book(f"book-{i}") for i in range(3)]
        for book in books:
            conn.save_logbook(book)
        yield conn, books


@pytest.fixture
def exported(source, tmp_path):
    conn, books = source
    path = tmp_path / "flows.zip"
    archive.export_archive(conn, path, source="memory://")
    return path, books


def test_round_trip_into_every_backend_is_lossless(exported, conn, tmp_path):
    path, books = exported
    report = archive.import_archive(conn, path)
    assert (report.created, report.skipped, report.replaced, report.verified) == (3, 0, 0, True)
    assert report.atom_details == sum(len(fd) for b in books for fd in b)
    got = all_books(conn)
    same_books(got, books)
    failed = got[books[0].uuid].find([fd for fd in books[0]][-1].uuid)
    task, retry = sorted(failed, key=lambda ad: ad.name, reverse=True)
    assert isinstance(task.failure, Failure) and task.failure.check(ValueError)
    same_failure(retry.results[1][1]["task"], [fd for fd in books[0]][-1].find(
        retry.uuid).results[1][1]["task"])

    # ... and back out of that backend into a new archive, which imports the same again.
    again = tmp_path / "again.zip"
    archive.export_archive(conn, again)
    with persistence.backend("memory://") as be, be.get_connection() as other:
        archive.import_archive(other, again)
        same_books(all_books(other), books)


def test_manifest_describes_the_archive(exported):
    path, books = exported
    manifest = archive.verify_archive(path)
    atoms = sum(len(fd) for b in books for fd in b)
    assert manifest.counts == {"logbooks": 3, "flow_details": 9, "atom_details": atoms}
    assert manifest.version == archive.VERSION and manifest.source == "memory://"
    with zipfile.ZipFile(path) as zf:
        raw = json.loads(zf.read("manifest.json"))
        lines = zf.read("records.jsonl").splitlines()
    assert raw["format"] == "persistence-archive"
    assert len(raw["members"]["records.jsonl"]["sha256"]) == 64
    assert [json.loads(x)["kind"] for x in lines].count("atom") == atoms


def test_export_of_selected_logbooks(source, tmp_path):
    conn, books = source
    path = tmp_path / "one.zip"
    manifest = archive.export_archive(conn, path, [books[1].uuid])
    assert manifest.counts["logbooks"] == 1
    with persistence.backend("memory://") as be, be.get_connection() as other:
        archive.import_archive(other, path)
        same_books(all_books(other), [books[1]])


def test_export_of_a_missing_logbook_fails_and_leaves_no_file(source, tmp_path):
    conn, _ = source
    with pytest.raises(NotFound):
        archive.export_archive(conn, tmp_path / "x.zip", [new_uuid()])
    assert os.listdir(tmp_path) == []


def test_existing_logbooks_fail_by_default_with_nothing_written(exported):
    path, books = exported
    with persistence.backend("memory://") as be, be.get_connection() as conn:
        conn.save_logbook(LogBook("already there", uuid=books[2].uuid))
        with pytest.raises(Duplicate, match="nothing was written"):
            archive.import_archive(conn, path)
        assert sorted(all_books(conn)) == [books[2].uuid]
        report = archive.import_archive(conn, path, existing="skip")
        assert (report.created, report.skipped) == (2, 1)
        report = archive.import_archive(conn, path, existing="resume")
        assert (report.created, report.skipped, report.replaced) == (0, 2, 1)
        same_books(all_books(conn), books)


def test_dry_run_verifies_and_writes_nothing(exported):
    path, _ = exported
    with persistence.backend("memory://") as be, be.get_connection() as conn:
        report = archive.import_archive(conn, path, dry_run=True)
        assert report.created == 0 and all_books(conn) == {}


# -- damaged archives ------------------------------------------------------------------

def _rewrite(path, records: bytes | None = None, manifest: dict | None = None,
             drop: str | None = None) -> None:
    """Rebuild the zip with a changed member: CRCs valid, content wrong."""
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    if records is not None:
        members["records.jsonl"] = records
    if manifest is not None:
        members["manifest.json"] = json.dumps(manifest).encode()
    members.pop(drop, None)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def _records(path) -> bytes:
    with zipfile.ZipFile(path) as zf:
        return zf.read("records.jsonl")


def _manifest(path) -> dict:
    with zipfile.ZipFile(path) as zf:
        return json.loads(zf.read("manifest.json"))


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])


def _flip_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF      # inside the compressed records
    path.write_bytes(bytes(data))


def _last_line_changed(path):
    records = _records(path)
    _rewrite(path, records=records[:-10] + b'"x"}}}}}}\n')


def _last_line_cut(path):
    records = _records(path)
    _rewrite(path, records=records[:-1])


def _line_dropped(path):
    lines = _records(path).splitlines(keepends=True)
    del lines[-1]
    _rewrite(path, records=b"".join(lines))   # a valid record missing: checksum and counts


def _value_changed_checksum_kept(path):
    records = _records(path).replace(b'"attempt":1', b'"attempt":7', 1)
    _rewrite(path, records=records)


def _atom_moved_to_other_flow(path):
    lines = _records(path).splitlines(keepends=True)
    line = json.loads(lines[-1])
    line["parent_uuid"] = new_uuid()
    lines[-1] = json.dumps(line).encode() + b"\n"
    _rewrite(path, records=b"".join(lines))


def _no_manifest(path):
    _rewrite(path, drop="manifest.json")


def _no_records(path):
    _rewrite(path, drop="records.jsonl")


def _future_version(path):
    _rewrite(path, manifest={**_manifest(path), "version": archive.VERSION + 1})


def _not_an_archive(path):
    path.write_text("hello")


def _manifest_counts_wrong(path):
    manifest = _manifest(path)
    manifest["counts"]["atom_details"] += 1
    _rewrite(path, manifest=manifest)


DAMAGE = [_truncate, _flip_byte, _last_line_changed, _last_line_cut, _line_dropped,
          _value_changed_checksum_kept, _atom_moved_to_other_flow, _no_manifest, _no_records,
          _future_version, _not_an_archive, _manifest_counts_wrong]


@pytest.mark.parametrize("damage", DAMAGE, ids=[d.__name__.strip("_") for d in DAMAGE])
def test_damaged_archive_is_refused_with_a_typed_error_and_nothing_written(exported, damage):
    path, _ = exported
    damage(path)
    with persistence.backend("memory://") as be, be.get_connection() as conn:
        with pytest.raises(archive.ArchiveError) as info:
            archive.import_archive(conn, path)
        assert all_books(conn) == {}
    assert str(path) in str(info.value) or "archive" in str(info.value)
    expected = (archive.UnsupportedArchive if damage is _future_version
                else archive.CorruptArchive)
    assert isinstance(info.value, expected), repr(info.value)


def test_missing_archive_is_a_clear_error(tmp_path):
    with pytest.raises(archive.ArchiveError, match="no archive at"):
        archive.verify_archive(tmp_path / "nope.zip")


def test_any_flipped_byte_is_refused_or_harmless(exported):
    path, books = exported
    original = path.read_bytes()
    step = max(1, len(original) // 150)
    with persistence.backend("memory://") as be, be.get_connection() as conn:
        for at in range(0, len(original), step):
            damaged = bytearray(original)
            damaged[at] ^= 0x55
            path.write_bytes(bytes(damaged))
            try:
                archive.import_archive(conn, path)
            except archive.ArchiveError:
                assert all_books(conn) == {}, at
                continue
            # A byte nothing depends on (a timestamp, an unused header field).
            same_books(all_books(conn), books)
            conn.clear_all()
