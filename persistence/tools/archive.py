"""One self-describing file holding logbooks from any backend, to import into any other.

An archive is a zip file with two members:

``records.jsonl``
    One JSON object per line: a logbook, then each of its flow details, each
    followed by its atom details.  Every line is the record exactly as
    :mod:`persistence.models.encoding` builds it (``to_dict`` plus ``type`` and
    ``parent_uuid``; failures as ``Failure.to_dict``) with a ``kind`` key
    (``logbook``, ``flow``, ``atom``).
``manifest.json``
    ``format`` (``persistence-archive``), ``version``, when and by what it was
    written, the record counts, and for every member its size and sha256.

Export streams one logbook at a time and writes the file under a temporary
name, renamed into place at the end: a failed export leaves nothing behind.
Import reads the whole archive once to verify it (no member the manifest does
not list, zip CRCs, the manifest's checksums and counts, every record decodes,
parents match, every uuid and name storable) before it writes anything, with
memory bounded by :class:`Limits` (see :mod:`persistence.tools.archive_reader`), so
a corrupt, truncated or hostile archive raises :class:`ArchiveError` and
leaves the destination untouched.  Then it reads it again and writes one
logbook at a time (see :func:`persistence.tools.copy.put_logbook`); if anything
fails on the way (the backend, the archive changed meanwhile, Ctrl-C), the
logbooks it created are deleted and those it replaced are put back, so the
destination holds exactly what it held before (``atomic=False`` keeps what
was written instead).

>>> import os, tempfile, persistence
>>> from persistence.tools import archive
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
import datetime
import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from typing import Any

from ..backends.base import Connection
from ..exceptions import NotFound
from ..models import encoding as serialization
from ..models import records as models
from .archive_reader import (
    COUNT_KEYS,
    FORMAT,
    MANIFEST,
    RECORDS,
    VERSION,
    ArchiveError,
    CorruptArchive,
    Limits,
    Manifest,
    UnsupportedArchive,
    books,
    scan,
)
from .copy import (
    CREATED,
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
           "CorruptArchive", "UnsupportedArchive", "Limits", "FORMAT", "VERSION"]

_COUNT_KEYS = COUNT_KEYS


def _version() -> str:
    from .. import __version__
    return f"persistence {__version__}"


# -- export --------------------------------------------------------------------

def _codec(conn: Connection) -> Any:
    """How an archive holds the values of ``conn``'s store: through its payload
    pipeline without offload (an encrypted store exports encrypted values; blobs
    are carried inline), or as themselves for a store without one."""
    pipeline = getattr(conn.backend, "payload", None)
    return pipeline.inline() if pipeline is not None else None


def _lines(book: models.LogBook, codec: Any = None) -> Iterator[dict[str, Any]]:
    yield {"kind": "logbook", **serialization.logbook_record(book, codec=codec)}
    for fd in book:
        yield {"kind": "flow", **serialization.flow_record(fd, book.uuid, codec=codec)}
        for ad in fd:
            yield {"kind": "atom", **serialization.atom_record(ad, fd.uuid, codec=codec)}


def export_archive(conn: Connection, path: str | os.PathLike,
                   logbooks: Iterable[str] | None = None, *, source: str | None = None,
                   progress: Progress | None = None) -> Manifest:
    """Write every logbook of ``conn`` (or those in ``logbooks``) to the archive ``path``.

    ``source`` is recorded in the manifest (pass a URI with its password masked).
    Values are written as the store's payload pipeline writes them, offloaded
    ones inline (see :doc:`/payloads`).
    """
    codec = _codec(conn)
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
                    for line in _lines(book, codec):
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


# -- import --------------------------------------------------------------------

class _Undo:
    """What an import changed, to put the destination back as it was if it fails.

    Logbooks it created are deleted; logbooks it replaced are first copied to
    a temporary archive-format file (not kept in memory) and saved back.
    """

    def __init__(self, codec: Any = None) -> None:
        #: The destination's pipeline (inline): kept logbooks are spooled through it.
        self.codec = codec
        self.created: list[str] = []
        self.replaced: list[str] = []
        #: A new logbook being written when the import stopped: it may or may not be saved.
        self.pending: models.LogBook | None = None
        self._spool: Any = None

    def keep(self, book: models.LogBook) -> None:
        """Remember ``book`` as it is before the import replaces it."""
        if self._spool is None:
            self._spool = tempfile.TemporaryFile(prefix="persistence-import-undo-")
        for line in _lines(book, self.codec):
            self._spool.write(serialization.dumps(line, f"{line['kind']} {line['uuid']}") + b"\n")
        self.replaced.append(book.uuid)

    def _kept(self) -> Iterator[models.LogBook]:
        self._spool.seek(0)
        book = flow = None
        for raw in self._spool:
            record = serialization.loads(raw)
            kind = record["kind"]
            if kind == "logbook":
                if book is not None:
                    yield book
                book = serialization.load_logbook(record, codec=self.codec)
            elif kind == "flow":
                flow = serialization.load_flow(record, codec=self.codec)
                book.add(flow)
            else:
                flow.add(serialization.load_atom(record, codec=self.codec))
        if book is not None:
            yield book

    def rollback(self, conn: Connection) -> None:
        """Delete what was created and restore what was replaced."""
        if self.pending is not None:
            # Saved whole or not at all; deleted only if it is the archive's logbook
            # (not one another writer created meanwhile).
            with contextlib.suppress(NotFound):
                found = conn.get_logbook(self.pending.uuid)
                if logbook_digest(found) == logbook_digest(self.pending):
                    self.created.append(self.pending.uuid)
        for uuid in reversed(self.created + self.replaced):
            with contextlib.suppress(NotFound):
                conn.destroy_logbook(uuid)
        if self._spool is not None:
            for book in self._kept():
                conn.save_logbook(book)

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()


def _note_before(conn: Connection, book: models.LogBook, existing: str, undo: _Undo) -> None:
    """Tell ``undo`` what writing ``book`` is about to change."""
    try:
        before = None if existing == "fail" else conn.get_logbook(book.uuid,
                                                                  lazy=existing == "skip")
    except NotFound:
        before = None
    if before is None:
        undo.pending = book   # recorded as created once written (see _Undo.rollback)
    elif existing == "replace" or (existing == "resume"
                                   and logbook_digest(before) != logbook_digest(book)):
        undo.keep(before)


def verify_archive(path: str | os.PathLike, progress: Progress | None = None, *,
                   limits: Limits | None = None) -> Manifest:
    """Read the whole archive and check it; ArchiveError (CorruptArchive,
    UnsupportedArchive) if it cannot be imported.  Memory is bounded by ``limits``."""
    return scan(path, limits or Limits(), progress)[0]


def import_archive(conn: Connection, path: str | os.PathLike, *, existing: str = "fail",
                   dry_run: bool = False, progress: Progress | None = None,
                   atomic: bool = True, limits: Limits | None = None) -> MigrationReport:
    """Verify the archive ``path``, then write its logbooks into ``conn``.

    ``existing`` (see :data:`persistence.tools.copy.EXISTING`) defaults to
    ``fail``: if any logbook of the archive is already in the destination,
    Duplicate is raised and nothing is written.  ``dry_run`` verifies only.
    With ``atomic`` (the default) a failure while writing puts the destination
    back as it was (see the module docstring); ``atomic=False`` keeps the
    logbooks written so far (each is whole), for ``existing="resume"`` to finish.
    """
    if existing not in EXISTING:
        raise ValueError(f"existing must be one of {', '.join(EXISTING)}, not {existing!r}")
    limits = limits or Limits()
    codec = _codec(conn)     # values read the way the destination reads its own
    manifest, uuids = scan(path, limits, progress, codec)
    if existing == "fail":
        refuse_existing(conn, uuids)
    report = MigrationReport()
    if dry_run:
        return report
    undo = _Undo(codec) if atomic else None
    expected: dict[str, tuple[int, int, str]] = {}
    try:
        for done, book in enumerate(books(path, limits, codec), 1):
            if undo is not None:
                _note_before(conn, book, existing, undo)
            outcome = put_logbook(conn, book, existing)
            if undo is not None and undo.pending is not None:
                if outcome == CREATED:
                    undo.created.append(book.uuid)
                undo.pending = None
            report.count(book, outcome)
            if not (outcome == SKIPPED and existing == "skip"):   # "skip" keeps what was there
                expected[book.uuid] = (len(book), sum(len(fd) for fd in book),
                                       logbook_digest(book))
            if progress is not None:
                progress("import", done, manifest.counts["logbooks"])
        verify_logbooks(conn, expected, progress)
    except BaseException as err:
        if undo is not None:
            try:
                undo.rollback(conn)
                err.add_note("the destination was put back as it was before the import")
            except Exception as failed:
                err.add_note(f"putting the destination back failed too ({failed}): logbooks "
                             f"{', '.join((undo.created + undo.replaced)[:5])} may be left "
                             f"as written")
        raise
    finally:
        if undo is not None:
            undo.close()
    report.verified = True
    return report
