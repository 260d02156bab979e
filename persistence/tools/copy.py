"""Copy logbooks from any backend to any other, one logbook at a time.

Memory stays flat in the number of logbooks: the source is listed once (the
uuids only), then each logbook is loaded, written to the destination and
dropped before the next one.  Each logbook is written with one
``save_logbook`` (one transaction where the backend has them), so an
interrupted run leaves whole logbooks, plus at most one that is missing or
incomplete.  Running again finishes the job without duplicates: with the
default ``existing="resume"`` a logbook already in the destination with the
same content is skipped and one that differs (incomplete) is replaced.  At the
end the destination is read back and every logbook compared with what was
copied: its flow and atom counts, and a digest of every field of every record.

Every field of every record is copied, failures included, except
``updated_at``: like every ``save_logbook``, the destination stamps the time
it stored the logbook.

>>> import persistence
>>> from persistence.tools.copy import migrate
>>> with persistence.backend("memory://") as src, persistence.backend("memory://") as dst:
...     with src.get_connection() as s, dst.get_connection() as d:
...         _ = s.save_logbook(persistence.LogBook("nightly"))
...         report = migrate(s, d)
>>> report.copied, report.verified
(1, True)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from ..backends.base import Connection
from ..exceptions import Duplicate, NotFound, StorageFailure
from ..models import encoding as serialization
from ..models import records as models

__all__ = ["migrate", "put_logbook", "logbook_uuids", "select_logbooks", "logbook_digest",
           "verify_logbooks", "verify_counts", "refuse_existing", "MigrationReport",
           "VerificationFailed", "EXISTING", "Progress"]

#: What to do with a logbook that is already in the destination.
#: ``resume``: skip it if identical, replace it if not; ``skip``: keep it as
#: it is; ``replace``: always replace it; ``fail``: raise Duplicate.
EXISTING = ("resume", "skip", "replace", "fail")

CREATED, SKIPPED, REPLACED = "created", "skipped", "replaced"

#: ``progress(stage, done, total)``: called after every logbook of a stage.
Progress = Callable[[str, int, int], None]

class VerificationFailed(StorageFailure):
    """The destination does not hold what was copied into it."""


@dataclasses.dataclass
class MigrationReport:
    """What a migration (or an archive import) did."""

    logbooks: int = 0
    flow_details: int = 0
    atom_details: int = 0
    created: int = 0
    skipped: int = 0
    replaced: int = 0
    verified: bool = False

    @property
    def copied(self) -> int:
        """Logbooks written (created or replaced)."""
        return self.created + self.replaced

    def count(self, book: models.LogBook, outcome: str) -> None:
        self.logbooks += 1
        self.flow_details += len(book)
        self.atom_details += sum(len(fd) for fd in book)
        setattr(self, outcome, getattr(self, outcome) + 1)

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "copied": self.copied}


def logbook_uuids(conn: Connection) -> Iterator[str]:
    """The uuids of every logbook in ``conn``, without loading their flows.

    One pass over ``get_logbooks(lazy=True)``: a snapshot of what to copy in
    O(logbooks) reads.  (Paging ``list_logbooks`` by offset would list the
    store again for every page on backends that cannot page, and newest-first
    pages shift — skipping or repeating logbooks — while the source is written.)
    """
    for book in conn.get_logbooks(lazy=True):
        yield book.uuid


def select_logbooks(conn: Connection, logbooks: Iterable[str] | None) -> list[str]:
    """The uuids to copy, in order and without repeats; NotFound names a missing one."""
    if logbooks is None:
        return list(dict.fromkeys(logbook_uuids(conn)))
    wanted = list(dict.fromkeys(logbooks))
    for uuid in wanted:
        conn.get_logbook(uuid, lazy=True)  # NotFound before anything is written
    return wanted


def logbook_digest(book: models.LogBook) -> str:
    """A digest of everything stored for ``book`` but ``updated_at`` and revisions."""
    record = book.to_dict(marshal_time=True)
    record.pop("updated_at", None)
    flows = []
    for fd in sorted(book, key=lambda f: f.uuid):
        atoms = []
        for ad in sorted(fd, key=lambda a: a.uuid):
            atom = serialization.atom_record(ad, None)
            atom.pop("revision")
            atoms.append(atom)
        flows.append([fd.to_dict(), atoms])
    text = json.dumps([record, flows], sort_keys=True, ensure_ascii=False,
                      separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def put_logbook(dst: Connection, book: models.LogBook, existing: str = "resume") -> str:
    """Write ``book`` (loaded from anywhere) into ``dst``; return created/skipped/replaced."""
    if existing not in EXISTING:
        raise ValueError(f"existing must be one of {', '.join(EXISTING)}, not {existing!r}")
    try:
        current = dst.get_logbook(book.uuid, lazy=existing in ("skip", "fail", "replace"))
    except NotFound:
        current = None
    outcome = CREATED
    if current is not None:
        if existing == "fail":
            raise Duplicate(f"logbook {book.uuid} ({book.name!r}) is already in the destination")
        if existing == "skip" or (existing == "resume"
                                  and logbook_digest(current) == logbook_digest(book)):
            return SKIPPED
        dst.destroy_logbook(book.uuid)
        outcome = REPLACED
    dst.save_logbook(book)
    return outcome


def refuse_existing(dst: Connection, uuids: Iterable[str]) -> None:
    """Raise Duplicate if any of ``uuids`` is already a logbook in ``dst``."""
    present = []
    for uuid in uuids:
        try:
            dst.get_logbook(uuid, lazy=True)
        except NotFound:
            continue
        present.append(uuid)
    if present:
        more = f" and {len(present) - 3} more" if len(present) > 3 else ""
        raise Duplicate(f"{len(present)} logbook(s) are already in the destination "
                        f"({', '.join(present[:3])}{more}); nothing was written")


def verify_logbooks(dst: Connection, expected: Mapping[str, tuple],
                    progress: Progress | None = None) -> None:
    """Check ``dst`` holds what was copied into it, per logbook uuid.

    Each value of ``expected`` is ``(flows, atoms)`` or ``(flows, atoms, digest)``
    with the :func:`logbook_digest` of the copied logbook: then every field of
    every record is compared, not only the counts.
    """
    wrong = []
    for done, (uuid, want) in enumerate(expected.items(), 1):
        try:
            book = dst.get_logbook(uuid)
        except NotFound:
            book = None
        if book is None:
            wrong.append(f"{uuid}: expected {want[0]} flow(s)/{want[1]} atom(s), "
                         f"found no logbook")
        else:
            got = (len(book), sum(len(fd) for fd in book))
            if got != tuple(want[:2]):
                wrong.append(f"{uuid}: expected {want[0]} flow(s)/{want[1]} atom(s), "
                             f"found {got[0]}/{got[1]}")
            elif len(want) > 2 and logbook_digest(book) != want[2]:
                wrong.append(f"{uuid}: its records differ from the ones copied")
        if progress is not None:
            progress("verify", done, len(expected))
    if wrong:
        shown = "; ".join(wrong[:5]) + (f" and {len(wrong) - 5} more" if len(wrong) > 5 else "")
        raise VerificationFailed(f"{len(wrong)} logbook(s) differ in the destination after "
                                 f"copying: {shown}")


#: The former name of :func:`verify_logbooks`.
verify_counts = verify_logbooks


def migrate(src: Connection, dst: Connection, logbooks: Iterable[str] | None = None, *,
            existing: str = "resume", verify: bool = True,
            progress: Progress | None = None) -> MigrationReport:
    """Copy every logbook (or those in ``logbooks``) from ``src`` to ``dst``.

    ``existing`` says what to do with logbooks already in ``dst`` (see
    :data:`EXISTING`).  With ``verify`` the destination is read back at the
    end and VerificationFailed raised if any record differs from its copy.
    """
    if existing not in EXISTING:
        raise ValueError(f"existing must be one of {', '.join(EXISTING)}, not {existing!r}")
    uuids = select_logbooks(src, logbooks)
    if existing == "fail":
        refuse_existing(dst, uuids)
    report = MigrationReport()
    expected: dict[str, tuple[int, int, str]] = {}
    for done, uuid in enumerate(uuids, 1):
        try:
            book = src.get_logbook(uuid)
        except NotFound:  # deleted from the source meanwhile
            continue
        copied = (len(book), sum(len(fd) for fd in book), logbook_digest(book))
        outcome = put_logbook(dst, book, existing)
        report.count(book, outcome)
        if outcome != SKIPPED or existing == "resume":  # "skip" keeps what was there
            expected[uuid] = copied
        del book
        if progress is not None:
            progress("copy", done, len(uuids))
    if verify:
        verify_logbooks(dst, expected, progress)
        report.verified = True
    return report
