"""The one place that knows how records are stored as bytes.

Records are JSON objects (UTF-8).  Values stored in results, meta and
injections must therefore be JSON-serializable; tuples come back as lists
and non-string dict keys as strings, as with every JSON store.  A value that
cannot be encoded raises :class:`~persistence.exceptions.SerializationError`
before anything is written; stored bytes that cannot be decoded raise it
too, naming where they came from.
"""

from __future__ import annotations

import json
from typing import Any

from .. import telemetry
from ..exceptions import CorruptRecord, InvalidFormat, SerializationError
from . import fields
from . import records as models

__all__ = ["dumps", "loads", "logbook_record", "flow_record", "atom_record",
           "load_logbook", "load_flow", "load_atom"]

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=True)
_decoder = json.JSONDecoder()


def dumps(value: Any, what: str = "value") -> bytes:
    """Encode ``value`` as JSON bytes; ``what`` names it in the error."""
    try:
        return _encoder.encode(value).encode("utf-8")
    except (TypeError, ValueError, RecursionError) as err:
        raise SerializationError(
            f"cannot store {what}: {err} (stored values must be JSON-serializable: "
            f"dict, list, str, int, float, bool, None)") from err


def loads(data: bytes | str, where: str = "record") -> Any:
    """Decode JSON bytes read from ``where``; corrupt data raises SerializationError."""
    try:
        if isinstance(data, (bytes, bytearray, memoryview)):
            data = bytes(data).decode("utf-8")
        return _decoder.decode(data)
    except (UnicodeDecodeError, ValueError, TypeError) as err:
        raise SerializationError(f"stored data in {where} is corrupt or truncated: {err}") from err


def _describe(detail: models._Record) -> str:
    return f"{type(detail).__name__} {detail.name!r} ({detail.uuid})"


def logbook_record(lb: models.LogBook, revision: int | None = None) -> dict[str, Any]:
    record = lb.to_dict(marshal_time=True)
    record["revision"] = revision
    return record


def flow_record(fd: models.FlowDetail, parent_uuid: str | None,
                revision: int | None = None) -> dict[str, Any]:
    record = fd.to_dict()
    record["parent_uuid"] = parent_uuid
    record["revision"] = revision
    return record


def atom_record(ad: models.AtomDetail, parent_uuid: str | None,
                revision: int | None = None) -> dict[str, Any]:
    record = ad.to_dict()
    record["type"] = models.atom_detail_type(ad)
    record["parent_uuid"] = parent_uuid
    record["revision"] = revision
    return record


def encode_record(record: dict[str, Any], detail: models._Record) -> bytes:
    fields.stored_name(detail)
    data = dumps(record, _describe(detail))
    telemetry.add_bytes(len(data))
    return data


def _load(build, record: Any, where: str):
    try:
        obj = build(record)
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as err:
        raise CorruptRecord(f"stored data in {where} is not a valid record: {err}",
                            location=where) from err
    obj._mark_saved(record.get("revision"))
    return obj


def load_logbook(record: dict[str, Any], where: str = "logbook") -> models.LogBook:
    return _load(models.LogBook.from_dict, record, where)


def load_flow(record: dict[str, Any], where: str = "flow detail") -> models.FlowDetail:
    return _load(models.FlowDetail.from_dict, record, where)


def load_atom(record: dict[str, Any], where: str = "atom detail") -> models.AtomDetail:
    def build(rec):
        kind = rec.get("type")
        if kind not in models.ATOM_TYPES:
            raise InvalidFormat(f"'type' must be one of {', '.join(models.ATOM_TYPES)}, "
                                f"not {kind!r:.60}")
        return models.atom_detail_class(kind).from_dict(rec)
    return _load(build, record, where)
