"""One self-describing file holding logbooks from any backend, to import into any other.

An archive is a zip file with two members:

``records.jsonl``
    One JSON object per line: a logbook, then each of its flow details, each
    followed by its atom details.  Every line is the record exactly as
    :mod:`persistence.serialization` builds it (``to_dict`` plus ``type`` and
    ``parent_uuid``; failures as ``Failure.to_dict``) with a ``kind`` key
    (``logbook``, ``flow``, ``atom``).
``manifest.json``
    ``format`` (``persistence-archive``), ``version``, when and by what it was
    written, the record counts, and for every member its size and sha256.

Export streams one logbook at a time and writes the file under a temporary
name, renamed into place at the end: a failed export leaves nothing behind.
Import reads the whole archive once to verify it (zip CRCs, the manifest's
checksums and counts, every record decodes, parents match) before it writes
anything, so a corrupt or truncated archive raises :class:`CorruptArchive`
and leaves the destination untouched; then it reads it again and writes one
logbook at a time (see :func:`persistence.migrate.put_logbook`).

>>> import os, tempfile, persistence
>>> from persistence import archive
>>> path = os.path.join(tempfile.mkdtemp(), "flows.zip")
>>> with persistence.backend("memory://") as src, src.get_connection() as conn:
...     _ = conn.save_logbook(persistence.LogBook("nightly"))
...     archive.export_archive(conn, path).counts
{'logbooks': 1, 'flow_details': 0, 'atom_details': 0}
>>> with persistence.backend("memory://") as dst, dst.get_connection() as conn:
...     archive.import_archive(conn, path).created
1
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import json
import os
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

from . import models, serialization
from .base import Connection
from .exceptions import PersistenceError, SerializationError
from .migrate import (
    EXISTING,
    SKIPPED,
    MigrationReport,
    Progress,
    logbook_digest,
    put_logbook,
    refuse_existing,
    select_logbooks,
    verify_logbooks,
)

__all__ = ["export_archive", "import_archive", "verify_archive", "Manifest", "ArchiveError",
           "CorruptArchive", "UnsupportedArchive", "FORMAT", "VERSION"]

FORMAT = "persistence-archive"
VERSION = 1
MANIFEST = "manifest.json"
RECORDS = "records.jsonl"
_KINDS = ("logbook", "flow", "atom")
# What zipfile and zlib raise on damaged input (flipped flags give the last two).
_DAMAGED = (zipfile.BadZipFile, zlib.error, struct.error, OSError, EOFError, ValueError,
            NotImplementedError, RuntimeError)
_COUNT_KEYS = {"logbook": "logbooks", "flow": "flow_details", "atom": "atom_details"}


class ArchiveError(PersistenceError):
    """An archive cannot be used."""


class CorruptArchive(ArchiveError):
    """The archive is damaged, truncated or not an archive; nothing was imported."""


class UnsupportedArchive(ArchiveError):
    """The archive is of a format or version this version of persistence cannot read."""


@dataclasses.dataclass
class Manifest:
    """What an archive says about itself."""

    version: int
    created_at: str
    producer: str
    source: str | None
    counts: dict[str, int]
    members: dict[str, dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, **dataclasses.asdict(self)}


def _version() -> str:
    from . import __version__
    return f"persistence {__version__}"


# -- export --------------------------------------------------------------------

def _lines(book: models.LogBook) -> Iterator[dict[str, Any]]:
    yield {"kind": "logbook", **serialization.logbook_record(book)}
    for fd in book:
        yield {"kind": "flow", **serialization.flow_record(fd, book.uuid)}
        for ad in fd:
            yield {"kind": "atom", **serialization.atom_record(ad, fd.uuid)}


def export_archive(conn: Connection, path: str | os.PathLike,
                   logbooks: Iterable[str] | None = None, *, source: str | None = None,
                   progress: Progress | None = None) -> Manifest:
    """Write every logbook of ``conn`` (or those in ``logbooks``) to the archive ``path``.

    ``source`` is recorded in the manifest (pass a URI with its password masked).
    """
    uuids = select_logbooks(conn, logbooks)
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    counts = dict.fromkeys(_COUNT_KEYS.values(), 0)
    digest, size = hashlib.sha256(), 0
    fd, tmp = tempfile.mkstemp(prefix=".persistence-export-", suffix=".zip", dir=directory)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            with zf.open(RECORDS, "w", force_zip64=True) as member:
                for done, uuid in enumerate(uuids, 1):
                    book = conn.get_logbook(uuid)
                    for line in _lines(book):
                        data = serialization.dumps(line, f"{line['kind']} {line['uuid']}")
                        data += b"\n"
                        member.write(data)
                        digest.update(data)
                        size += len(data)
                        counts[_COUNT_KEYS[line["kind"]]] += 1
                    if progress is not None:
                        progress("export", done, len(uuids))
            manifest = Manifest(
                version=VERSION, producer=_version(), source=source, counts=counts,
                created_at=datetime.datetime.now(datetime.timezone.utc).isoformat(),
                members={RECORDS: {"sha256": digest.hexdigest(), "size": size}})
            zf.writestr(MANIFEST, json.dumps(manifest.to_dict(), indent=2, sort_keys=True))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return manifest


# -- reading -------------------------------------------------------------------

@contextlib.contextmanager
def _open(path: str | os.PathLike) -> Iterator[tuple[zipfile.ZipFile, Manifest]]:
    name = os.fspath(path)
    try:
        zf = zipfile.ZipFile(name)
    except FileNotFoundError:
        raise ArchiveError(f"no archive at {name}") from None
    except _DAMAGED as err:
        raise CorruptArchive(f"{name} is not a persistence archive or is truncated: "
                             f"{err}") from err
    with zf:
        yield zf, _manifest(zf, name)


def _manifest(zf: zipfile.ZipFile, name: str) -> Manifest:
    try:
        raw = json.loads(zf.read(MANIFEST))
    except KeyError:
        raise CorruptArchive(f"{name} has no {MANIFEST}: not a persistence archive") from None
    except _DAMAGED as err:
        raise CorruptArchive(f"the manifest of {name} is damaged: {err}") from err
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise UnsupportedArchive(f"{name} is not a {FORMAT} (its manifest says format "
                                 f"{raw.get('format') if isinstance(raw, dict) else None!r})")
    version = raw.get("version")
    if not isinstance(version, int) or version > VERSION or version < 1:
        raise UnsupportedArchive(f"{name} is archive format version {version!r}; this "
                                 f"persistence reads versions 1 to {VERSION}: upgrade it")
    try:
        manifest = Manifest(version=version, created_at=str(raw["created_at"]),
                            producer=str(raw["producer"]), source=raw.get("source"),
                            counts={k: int(raw["counts"][k]) for k in _COUNT_KEYS.values()},
                            members={RECORDS: dict(raw["members"][RECORDS])})
        manifest.members[RECORDS]["sha256"] = str(manifest.members[RECORDS]["sha256"])
        manifest.members[RECORDS]["size"] = int(manifest.members[RECORDS]["size"])
    except (KeyError, TypeError, ValueError) as err:
        raise CorruptArchive(f"the manifest of {name} is incomplete: missing or bad "
                             f"{err}") from err
    return manifest


def _books(member: BinaryIO, name: str, checks: dict[str, Any]) -> Iterator[models.LogBook]:
    """Rebuild logbooks from the records member, checking structure on the way."""
    book = flow = None
    lineno = 0

    def bad(why: str) -> CorruptArchive:
        return CorruptArchive(f"{name}: {RECORDS} line {lineno}: {why}")

    for raw in member:
        lineno += 1
        checks["digest"].update(raw)
        checks["size"] += len(raw)
        if not raw.endswith(b"\n"):
            raise bad("truncated record (no end of line)")
        try:
            record = serialization.loads(raw, f"{name} line {lineno}")
        except SerializationError as err:
            raise bad(str(err)) from err
        kind = record.get("kind") if isinstance(record, dict) else None
        if kind not in _KINDS:
            raise bad(f"unknown record kind {kind!r}")
        checks["counts"][_COUNT_KEYS[kind]] += 1
        where = f"{name} line {lineno}"
        try:
            if kind == "logbook":
                if book is not None:
                    yield book
                book, flow = serialization.load_logbook(record, where), None
            elif kind == "flow":
                if book is None or record.get("parent_uuid") != book.uuid:
                    raise bad("flow detail outside of its logbook")
                flow = serialization.load_flow(record, where)
                book.add(flow)
            else:
                if flow is None or record.get("parent_uuid") != flow.uuid:
                    raise bad("atom detail outside of its flow detail")
                flow.add(serialization.load_atom(record, where))
        except SerializationError as err:
            raise bad(str(err)) from err
    if book is not None:
        yield book


def _read(path: str | os.PathLike, verify_only: bool,
          progress: Progress | None = None) -> Iterator[tuple[Manifest, models.LogBook | None]]:
    """Stream (manifest, logbook) pairs, then check checksums and counts at the end."""
    name = os.fspath(path)
    with _open(path) as (zf, manifest):
        checks = {"digest": hashlib.sha256(), "size": 0,
                  "counts": dict.fromkeys(_COUNT_KEYS.values(), 0)}
        seen: set[str] = set()
        total = manifest.counts["logbooks"]
        try:
            with zf.open(RECORDS) as member:
                for done, book in enumerate(_books(member, name, checks), 1):
                    if verify_only:
                        if book.uuid in seen:
                            raise CorruptArchive(f"{name}: logbook {book.uuid} appears twice")
                        seen.add(book.uuid)
                    yield manifest, book
                    if progress is not None:
                        progress("verify" if verify_only else "import", done, total)
        except KeyError:
            raise CorruptArchive(f"{name} has no {RECORDS}") from None
        except _DAMAGED as err:
            raise CorruptArchive(f"{name} is damaged or truncated: {err}") from err
        expected = manifest.members[RECORDS]
        if checks["size"] != expected["size"] or \
                checks["digest"].hexdigest() != expected["sha256"]:
            raise CorruptArchive(f"{name}: {RECORDS} does not match the checksum in the "
                                 f"manifest ({checks['size']} bytes read, "
                                 f"{expected['size']} expected)")
        if checks["counts"] != manifest.counts:
            raise CorruptArchive(f"{name}: the manifest counts {manifest.counts} but the "
                                 f"archive holds {checks['counts']}")
        yield manifest, None


def verify_archive(path: str | os.PathLike, progress: Progress | None = None) -> Manifest:
    """Read the whole archive and check it; CorruptArchive/UnsupportedArchive if unusable."""
    manifests = [m for m, book in _read(path, verify_only=True, progress=progress)
                 if book is None]
    return manifests[0]


def import_archive(conn: Connection, path: str | os.PathLike, *, existing: str = "fail",
                   dry_run: bool = False, progress: Progress | None = None) -> MigrationReport:
    """Verify the archive ``path``, then write its logbooks into ``conn``.

    ``existing`` (see :data:`persistence.migrate.EXISTING`) defaults to
    ``fail``: if any logbook of the archive is already in the destination,
    Duplicate is raised and nothing is written.  ``dry_run`` verifies only.
    """
    if existing not in EXISTING:
        raise ValueError(f"existing must be one of {', '.join(EXISTING)}, not {existing!r}")
    expected: dict[str, tuple[int, int, str]] = {}
    for _, book in _read(path, verify_only=True, progress=progress):
        if book is not None:
            expected[book.uuid] = (len(book), sum(len(fd) for fd in book),
                                   logbook_digest(book))
    if existing == "fail":
        refuse_existing(conn, expected)
    report = MigrationReport()
    if dry_run:
        return report
    for _, book in _read(path, verify_only=False, progress=progress):
        if book is not None:
            outcome = put_logbook(conn, book, existing)
            report.count(book, outcome)
            if outcome == SKIPPED and existing == "skip":
                del expected[book.uuid]   # kept as it was in the destination
    verify_logbooks(conn, expected, progress)
    report.verified = True
    return report
