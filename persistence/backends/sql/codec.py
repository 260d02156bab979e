"""Records ↔ table rows: JSON columns through :mod:`persistence.models.encoding`.

Each value column (results, failures, revert results and failures, each
meta value) holds what the backend's payload pipeline stores for the value:
the value itself by default, or its envelope (``encoding.seal_value``,
``encoding.open_values``).

Uuids are checked as the path-based backends check them (ValueError), so a
record any backend stores can be copied to any other.

Large atom values are moved out of the row into chunk rows (see
:func:`split_large`) so that no single statement exceeds what the server
accepts (MariaDB: 16 MiB per packet).  Reading puts them back
(:mod:`.rows`, the read half).
"""

from __future__ import annotations

from typing import Any

from ...exceptions import SerializationError
from ...models import encoding as serialization
from ...models import records as models
from ...models.fields import stored_name
from ..shared import check_component

__all__ = ["book_params", "flow_params", "atom_params", "split_large", "too_large",
           "LARGE_FIELDS", "CHUNKED"]

#: Atom columns that may hold values of any size.
LARGE_FIELDS = ("results", "revert_results", "failure", "revert_failure", "meta")
_LARGE_KEYS = tuple(f"v_{field}" for field in LARGE_FIELDS)   # their parameters

_dumps = serialization.dumps_text
_encode = serialization.encode_text
_MARKER = serialization.PAYLOAD_MARKER

#: The backend extra (:class:`~persistence.models.bookkeeping.Bookkeeping`)
#: naming the fields of an atom detail stored in chunks rather than inline.
CHUNKED = "sql.chunked"


def _key(kind: str, uuid: Any) -> str:
    """``uuid`` if it is one every backend can store (checked as path_based does)."""
    if (type(uuid) is not str or not uuid or uuid[0] == "." or "/" in uuid or "\\" in uuid
            or "\x00" in uuid):
        return check_component(kind, uuid)  # raises ValueError saying why
    return uuid


def _describe(detail: models._Record) -> str:
    return f"{type(detail).__name__} {detail.name!r} ({detail.uuid})"


def _json(value: Any, what: str, detail: models._Record) -> str | None:
    if value is None:
        return None
    try:   # runs per value column of every write: the encoder itself first
        return _encode(value)
    except (TypeError, ValueError, RecursionError):
        pass   # encoded again below, which raises the error naming record, field, type
    try:
        return _dumps(value, what)
    except SerializationError as err:  # name the record, field and type only when needed
        raise serialization.unserializable({what: value}, detail, err.__cause__) \
            from err.__cause__


def _value(payload: Any, value: Any, what: str, detail: models._Record) -> str | None:
    """A value column: the value through the payload pipeline, as JSON text."""
    if value is None:
        return None
    if (payload is None or payload.is_default) and not (
            type(value) is dict and _MARKER in value):
        return _json(value, what, detail)   # what the default pipeline stores: the value
    return _json(serialization.seal_value(payload, value, what, detail), what, detail)


def _meta(detail: models._Record, payload: Any) -> str:
    meta = detail.meta
    if not meta:
        return "{}"
    sealed = serialization.seal_meta(payload, dict(meta), detail)
    try:
        return _dumps(sealed, "meta")
    except SerializationError as err:
        raise serialization.unserializable({"meta": sealed}, detail,
                                           err.__cause__) from err.__cause__


def book_params(book: models.LogBook, txn: str, payload: Any = None) -> dict[str, Any]:
    return {"v_uuid": _key("logbook uuid", book.uuid), "v_name": stored_name(book),
            "v_meta": _meta(book, payload),
            "v_created_at": book.created_at, "v_updated_at": book.updated_at,
            "v_txn": txn}


def flow_params(flow: models.FlowDetail, parent_uuid: str | None,
                txn: str, payload: Any = None) -> dict[str, Any]:
    return {"v_uuid": _key("flow detail uuid", flow.uuid), "v_name": stored_name(flow),
            "v_meta": _meta(flow, payload),
            "v_state": flow.state, "v_parent_uuid": parent_uuid, "v_txn": txn}


def atom_params(atom: models.AtomDetail, parent_uuid: str | None, txn: str,
                payload: Any = None) -> dict[str, Any]:
    # The fields of AtomDetail.to_dict(), read directly: this runs on every update.
    failure, revert_failure = atom.failure, atom.revert_failure
    return {
        "v_uuid": _key("atom detail uuid", atom.uuid), "v_name": stored_name(atom),
        "v_atom_type": models.atom_detail_type(atom),
        "v_state": atom.state, "v_intention": atom.intention,
        "v_results": _value(payload, atom._results_to_data(), "results", atom),
        "v_failure": (None if failure is None
                      else _value(payload, failure.to_dict(), "failure", atom)),
        "v_revert_results": _value(payload, atom.revert_results, "revert_results", atom),
        "v_revert_failure": (None if revert_failure is None
                             else _value(payload, revert_failure.to_dict(), "revert_failure",
                                         atom)),
        "v_meta": _meta(atom, payload),
        "v_version": _json(atom.version, "version", atom),
        "v_chunked": None, "v_parent_uuid": parent_uuid, "v_txn": txn,
    }


def too_large(params: dict[str, Any], limit: int | None) -> bool:
    """Whether :func:`split_large` would move anything out of the row."""
    if limit is None:
        return False
    chars = 0
    for key in _LARGE_KEYS:   # runs on every update: no list, no key formatting
        value = params[key]
        if value is not None:
            chars += len(value)
    if chars * 4 <= limit:  # UTF-8: at most 4 bytes per character
        return False
    return sum(len(params[key].encode("utf-8")) for key in _LARGE_KEYS
               if params[key] is not None) > limit


def split_large(params: dict[str, Any], limit: int | None,
                chunk_size: int) -> list[dict[str, Any]]:
    """Move the largest values of an atom's ``params`` to chunk rows until the
    rest fits in ``limit`` bytes; return those rows (empty when all fit)."""
    if not too_large(params, limit):
        return []
    encoded = {f: params[f"v_{f}"].encode("utf-8") for f in LARGE_FIELDS
               if params[f"v_{f}"] is not None}
    total = sum(len(b) for b in encoded.values())
    rows: list[dict[str, Any]] = []
    moved = []
    for field in sorted(encoded, key=lambda f: len(encoded[f]), reverse=True):
        if total <= limit:
            break
        data = encoded[field]
        total -= len(data)
        moved.append(field)
        params[f"v_{field}"] = None
        for seq, start in enumerate(range(0, len(data), chunk_size)):
            rows.append({"atom_uuid": params["v_uuid"], "field": field, "seq": seq,
                         "data": data[start:start + chunk_size]})
    params["v_chunked"] = ",".join(moved)
    return rows
