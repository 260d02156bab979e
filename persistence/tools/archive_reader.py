"""Reading an archive with bounded memory: members, manifest and records checked as they stream.

A hostile archive can be small on disk and expand to gigabytes (a zip bomb),
so nothing is read whole: the manifest is read up to ``Limits.manifest_bytes``
and the records one line at a time up to ``Limits.line_bytes`` each; past a
limit the archive is refused after reading at most that much.  :func:`scan`
checks everything without building logbooks (what refusing costs is one line);
:func:`books` rebuilds one logbook at a time for writing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import struct
import zipfile
import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO

from ..backends.pathbased.connection import check_component
from ..exceptions import InvalidFormat, PersistenceError, SerializationError
from ..models import encoding as serialization
from ..models import fields
from ..models import records as models
from ..payload import Pipeline, collecting, refs_of

__all__ = ["ArchiveError", "CorruptArchive", "UnsupportedArchive", "Manifest", "Limits",
           "FORMAT", "VERSION", "MANIFEST", "RECORDS", "COUNT_KEYS", "open_archive", "scan",
           "books"]

FORMAT = "persistence-archive"
VERSION = 1
MANIFEST = "manifest.json"
RECORDS = "records.jsonl"
_KINDS = ("logbook", "flow", "atom")
_WHAT = {"logbook": "logbook", "flow": "flow detail", "atom": "atom detail"}
COUNT_KEYS = {"logbook": "logbooks", "flow": "flow_details", "atom": "atom_details"}
# What zipfile and zlib raise on damaged input (flipped flags give the last two).
_DAMAGED = (zipfile.BadZipFile, zlib.error, struct.error, OSError, EOFError, ValueError,
            NotImplementedError, RuntimeError)


class ArchiveError(PersistenceError):
    """An archive cannot be used."""


class CorruptArchive(ArchiveError):
    """The archive is damaged, truncated or not an archive; nothing was imported."""


class UnsupportedArchive(ArchiveError):
    """The archive is of a format or version this version of persistence cannot read."""


@dataclasses.dataclass(frozen=True)
class Limits:
    """How large one record line and the manifest of an archive may be, in bytes.

    The defaults hold any record the backends store well (32 MiB) and any
    manifest this library writes (a few hundred bytes); raise ``line_bytes``
    for a trusted archive with larger values.
    """

    line_bytes: int = 32 * 1024 * 1024
    manifest_bytes: int = 1024 * 1024

    def __post_init__(self) -> None:
        for name in ("line_bytes", "manifest_bytes"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ValueError(f"Limits.{name} must be a positive int, not {value!r}")


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


@contextlib.contextmanager
def open_archive(path: str | os.PathLike,
                 limits: Limits) -> Iterator[tuple[zipfile.ZipFile, Manifest]]:
    """The open zip and its checked manifest; refuses members the manifest does not list."""
    name = os.fspath(path)
    try:
        zf = zipfile.ZipFile(name)
    except FileNotFoundError:
        raise ArchiveError(f"no archive at {name}") from None
    except _DAMAGED as err:
        raise CorruptArchive(f"{name} is not a persistence archive or is truncated: "
                             f"{err}") from err
    with zf:
        manifest = _manifest(zf, name, limits)
        names = zf.namelist()
        unexpected = sorted(set(names) - {MANIFEST, *manifest.members})
        if unexpected or len(names) != len(set(names)):
            what = (f"members the manifest does not list: {', '.join(map(repr, unexpected))}"
                    if unexpected else "a member twice")
            raise CorruptArchive(f"{name} holds {what}; refused (an archive holds only "
                                 f"{MANIFEST} and {RECORDS})")
        if RECORDS not in names:
            raise CorruptArchive(f"{name} has no {RECORDS}")
        yield zf, manifest


def _manifest(zf: zipfile.ZipFile, name: str, limits: Limits) -> Manifest:
    try:
        with zf.open(MANIFEST) as member:
            data = member.read(limits.manifest_bytes + 1)
    except KeyError:
        raise CorruptArchive(f"{name} has no {MANIFEST}: not a persistence archive") from None
    except _DAMAGED as err:
        raise CorruptArchive(f"the manifest of {name} is damaged: {err}") from err
    if len(data) > limits.manifest_bytes:
        raise CorruptArchive(f"the manifest of {name} is larger than {limits.manifest_bytes} "
                             f"bytes: refused (an archive's manifest is a few hundred bytes; "
                             f"Limits.manifest_bytes)")
    try:
        raw = json.loads(data)
    except ValueError as err:
        raise CorruptArchive(f"the manifest of {name} is damaged: {err}") from err
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise UnsupportedArchive(f"{name} is not a {FORMAT} (its manifest says format "
                                 f"{raw.get('format') if isinstance(raw, dict) else None!r})")
    version = raw.get("version")
    if not isinstance(version, int) or version > VERSION or version < 1:
        raise UnsupportedArchive(f"{name} is archive format version {version!r}; this "
                                 f"persistence reads versions 1 to {VERSION}: upgrade it")
    try:
        members = raw["members"]
        if not isinstance(members, dict) or set(members) != {RECORDS}:
            raise CorruptArchive(f"the manifest of {name} lists members "
                                 f"{sorted(members) if isinstance(members, dict) else members!r}"
                                 f"; version {version} archives hold {RECORDS} only")
        manifest = Manifest(version=version, created_at=str(raw["created_at"]),
                            producer=str(raw["producer"]), source=raw.get("source"),
                            counts={k: int(raw["counts"][k]) for k in COUNT_KEYS.values()},
                            members={RECORDS: dict(members[RECORDS])})
        manifest.members[RECORDS]["sha256"] = str(manifest.members[RECORDS]["sha256"])
        manifest.members[RECORDS]["size"] = int(manifest.members[RECORDS]["size"])
    except (KeyError, TypeError, ValueError) as err:
        raise CorruptArchive(f"the manifest of {name} is incomplete: missing or bad "
                             f"{err}") from err
    return manifest


class _Reader:
    """The records member, one bounded line at a time, with its checksum and counts."""

    def __init__(self, member: BinaryIO, name: str, limits: Limits) -> None:
        self.member, self.name, self.limits = member, name, limits
        self.digest, self.size, self.lineno = hashlib.sha256(), 0, 0
        self.counts = dict.fromkeys(COUNT_KEYS.values(), 0)

    def bad(self, why: str) -> CorruptArchive:
        return CorruptArchive(f"{self.name}: {RECORDS} line {self.lineno}: {why}")

    def __iter__(self) -> Iterator[tuple[str, dict[str, Any]]]:
        limit = self.limits.line_bytes
        while True:
            raw = self.member.readline(limit + 1)
            if not raw:
                return
            self.lineno += 1
            if len(raw) > limit:
                raise self.bad(f"a record longer than {limit} bytes: refused (if you trust "
                               f"this archive, raise the limit: --max-line-bytes, "
                               f"Limits(line_bytes=...))")
            self.digest.update(raw)
            self.size += len(raw)
            if not raw.endswith(b"\n"):
                raise self.bad("truncated record (no end of line)")
            try:
                record = serialization.loads(raw, f"{self.name} line {self.lineno}")
            except SerializationError as err:
                raise self.bad(str(err)) from err
            kind = record.get("kind") if isinstance(record, dict) else None
            if kind not in _KINDS:
                raise self.bad(f"unknown record kind {kind!r}")
            self.counts[COUNT_KEYS[kind]] += 1
            yield kind, record

    def load(self, kind: str, record: dict[str, Any], codec: Any = None) -> Any:
        """The record as a model object (its values read through the payload pipeline
        ``codec``), refused here if no backend could store it."""
        where = f"{self.name} line {self.lineno}"
        meta = record.get("meta")
        values = [record.get(n) for n in serialization.ATOM_VALUES]
        if any(refs_of(v) for v in values + list(meta.values() if type(meta) is dict else ())):
            raise self.bad("a reference to an offloaded blob (an archive carries its values "
                           "inline): refused")
        build = {"logbook": serialization.load_logbook, "flow": serialization.load_flow,
                 "atom": serialization.load_atom}[kind]
        try:
            detail = build(record, where, codec)
        except SerializationError as err:
            raise self.bad(str(err)) from err
        try:
            check_component(f"{_WHAT[kind]} uuid", detail.uuid)
            fields.stored_name(detail)
        except (ValueError, InvalidFormat) as err:
            raise ArchiveError(f"{self.name}: {RECORDS} line {self.lineno}: {err}; no "
                               f"backend can store it, nothing was written") from None
        return detail

    def check_end(self, manifest: Manifest) -> None:
        expected = manifest.members[RECORDS]
        if self.size != expected["size"] or self.digest.hexdigest() != expected["sha256"]:
            raise CorruptArchive(f"{self.name}: {RECORDS} does not match the checksum in the "
                                 f"manifest ({self.size} bytes read, {expected['size']} "
                                 f"expected)")
        if self.counts != manifest.counts:
            raise CorruptArchive(f"{self.name}: the manifest counts {manifest.counts} but the "
                                 f"archive holds {self.counts}")


@contextlib.contextmanager
def _records(path: str | os.PathLike, limits: Limits) -> Iterator[tuple[_Reader, Manifest]]:
    name = os.fspath(path)
    with open_archive(path, limits) as (zf, manifest):
        try:
            with zf.open(RECORDS) as member:
                yield _Reader(member, name, limits), manifest
        except _DAMAGED as err:
            raise CorruptArchive(f"{name} is damaged or truncated: {err}") from err


def scan(path: str | os.PathLike, limits: Limits, progress: Any = None,
         codec: Any = None) -> tuple[Manifest, list[str]]:
    """Check the whole archive without building logbooks: its manifest and logbook uuids.

    Every record is decoded and checked (structure, parents, storable uuid
    and name), then checksums and counts; memory is one line at a time.
    Values are read through the payload pipeline ``codec`` (the destination's,
    so a value it cannot read — a key it lacks — fails here, before anything
    is written); without one, envelopes are checked but not opened.
    """
    if codec is None:
        with collecting():
            return _scan(path, limits, progress, Pipeline())
    return _scan(path, limits, progress, codec)


def _scan(path: str | os.PathLike, limits: Limits, progress: Any,
          codec: Any) -> tuple[Manifest, list[str]]:
    with _records(path, limits) as (reader, manifest):
        uuids: list[str] = []
        seen: set[str] = set()
        book = flow = None
        total = manifest.counts["logbooks"]
        for kind, record in reader:
            detail = reader.load(kind, record, codec)
            if kind == "logbook":
                if detail.uuid in seen:
                    raise CorruptArchive(f"{reader.name}: logbook {detail.uuid} appears twice")
                seen.add(detail.uuid)
                uuids.append(detail.uuid)
                if progress is not None and book is not None:
                    progress("verify", len(uuids) - 1, total)
                book, flow = detail.uuid, None
            elif kind == "flow":
                if book is None or record.get("parent_uuid") != book:
                    raise reader.bad("flow detail outside of its logbook")
                flow = detail.uuid
            elif flow is None or record.get("parent_uuid") != flow:
                raise reader.bad("atom detail outside of its flow detail")
        reader.check_end(manifest)
        if progress is not None and uuids:
            progress("verify", len(uuids), total)
        return manifest, uuids


def books(path: str | os.PathLike, limits: Limits,
          codec: Any = None) -> Iterator[models.LogBook]:
    """The archive's logbooks one at a time, values read through ``codec``;
    CorruptArchive at the end if it changed since :func:`scan` (checksums and
    counts are checked again)."""
    with _records(path, limits) as (reader, manifest):
        book = flow = None
        for kind, record in reader:
            detail = reader.load(kind, record, codec)
            if kind == "logbook":
                if book is not None:
                    yield book
                book, flow = detail, None
            elif kind == "flow":
                if book is None or record.get("parent_uuid") != book.uuid:
                    raise reader.bad("flow detail outside of its logbook")
                flow = detail
                book.add(flow)
            else:
                if flow is None or record.get("parent_uuid") != flow.uuid:
                    raise reader.bad("atom detail outside of its flow detail")
                flow.add(detail)
        reader.check_end(manifest)
        if book is not None:
            yield book
