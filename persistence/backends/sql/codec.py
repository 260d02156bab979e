"""Records ↔ table rows: JSON columns through :mod:`persistence.models.encoding`.

Each value column (results, failures, revert results and failures, each
meta value) holds what the backend's payload pipeline stores for the value:
the value itself by default, or its envelope (``encoding.seal_value``,
``encoding.open_values``).

Uuids are checked as the path-based backends check them (ValueError), so a
record any backend stores can be copied to any other.

Large atom values are moved out of the row into chunk rows (see
:func:`split_large`) so that no single statement exceeds what the server
accepts (MariaDB: 16 MiB per packet).  Reading puts them back.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ...exceptions import SerializationError
from ...models import encoding as serialization
from ...models import records as models
from ...models.bookkeeping import bookkeeping
from ...models.fields import stored_name
from ..shared import check_component

__all__ = ["book_params", "flow_params", "atom_params", "split_large", "too_large", "load_book",
           "load_flow", "load_atom", "join_chunks", "LARGE_FIELDS"]

#: Atom columns that may hold values of any size.
LARGE_FIELDS = ("results", "revert_results", "failure", "revert_failure", "meta")
_LARGE_KEYS = tuple(f"v_{field}" for field in LARGE_FIELDS)   # their parameters

_dumps = serialization.dumps_text
_encode = serialization.encode_text
_ATOM_CLASSES = {name: models.atom_detail_class(name) for name in ("TASK_DETAIL", "RETRY_DETAIL")}
_loads = serialization.loads
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


def join_chunks(rows: Iterable[Sequence[Any]]) -> dict[str, dict[str, str]]:
    """Chunk rows (atom_uuid, field, seq, data) ordered by key → {uuid: {field: text}}."""
    parts: dict[tuple[str, str], list[bytes]] = {}
    for atom_uuid, field, _seq, data in rows:
        parts.setdefault((atom_uuid, field), []).append(bytes(data))
    out: dict[str, dict[str, str]] = {}
    for (atom_uuid, field), pieces in parts.items():
        try:
            text = b"".join(pieces).decode("utf-8")
        except UnicodeDecodeError as err:
            raise SerializationError(f"stored data in table atomdetail_chunks, atom uuid "
                                     f"{atom_uuid}, field {field} is corrupt: {err}") from err
        out.setdefault(atom_uuid, {})[field] = text
    return out


def _where(table: str, uuid: Any, column: str | None = None) -> str:
    return f"table {table}, uuid {uuid}" + (f", column {column}" if column else "")


def _load_json(value: Any, table: str, uuid: Any, column: str) -> Any:
    if value is None:
        return None
    if value == "{}":
        return {}
    try:
        return _loads(value, table)
    except SerializationError as err:  # name the row only when it is needed
        raise SerializationError(f"stored data in {_where(table, uuid, column)} is corrupt "
                                 f"or truncated: {err.__cause__}") from err.__cause__


def load_book(row: Sequence[Any], payload: Any = None) -> models.LogBook:
    uuid, name, meta, created_at, updated_at, revision = row
    record = {"uuid": uuid, "name": name,
              "meta": _load_json(meta, "logbooks", uuid, "meta"),
              "created_at": created_at, "updated_at": updated_at, "revision": revision}
    return serialization.load_logbook(record, _where("logbooks", uuid), payload)


def load_flow(row: Sequence[Any], payload: Any = None) -> models.FlowDetail:
    uuid, name, meta, state, _parent, revision = row
    record = {"uuid": uuid, "name": name, "meta": _load_json(meta, "flowdetails", uuid, "meta"),
              "state": state, "revision": revision}
    return serialization.load_flow(record, _where("flowdetails", uuid), payload)


def load_atom(row: Sequence[Any], chunked: dict[str, str] | None = None,
              payload: Any = None) -> models.AtomDetail:
    (uuid, name, meta, atom_type, state, intention, results, failure, revert_results,
     revert_failure, version, chunked_fields, _parent, revision) = row
    if chunked_fields:
        found = chunked or {}
        values = {"results": results, "failure": failure, "revert_results": revert_results,
                  "revert_failure": revert_failure, "meta": meta}
        for field in chunked_fields.split(","):
            if field not in found:
                raise SerializationError(f"stored data in {_where('atomdetails', uuid)} "
                                         f"is incomplete: chunks of {field} are missing")
            values[field] = found[field]
        results, failure = values["results"], values["failure"]
        revert_results, revert_failure = values["revert_results"], values["revert_failure"]
        meta = values["meta"]
    t = "atomdetails"
    record = {"uuid": uuid, "name": name, "state": state, "intention": intention,
              "results": None if results is None else _load_json(results, t, uuid, "results"),
              "failure": None if failure is None else _load_json(failure, t, uuid, "failure"),
              "revert_results": (None if revert_results is None else
                                 _load_json(revert_results, t, uuid, "revert_results")),
              "revert_failure": (None if revert_failure is None else
                                 _load_json(revert_failure, t, uuid, "revert_failure")),
              "meta": None if meta is None else _load_json(meta, t, uuid, "meta"),
              "version": None if version is None else _load_json(version, t, uuid, "version")}
    serialization.open_values(record, payload, _where(t, uuid))
    # models' own from_dict, without serialization.load_atom's wrapper (this runs
    # once per atom of every load); its errors are reported the same way.
    try:
        atom = _ATOM_CLASSES[atom_type].from_dict(record)
    except KeyError:
        atom = serialization.load_atom(dict(record, type=atom_type, revision=revision),
                                       _where(t, uuid))
    except (TypeError, ValueError, AttributeError) as err:
        raise SerializationError(f"stored data in {_where(t, uuid)} is not a valid record: "
                                 f"{err!r}") from err
    bk = bookkeeping(atom)
    bk.mark_saved(revision)
    bk.set_extra(CHUNKED, chunked_fields or None)
    return atom
