"""Table rows → records: the read half of :mod:`.codec`.

Each value column holds what the backend's payload pipeline stored for the
value (``encoding.open_values`` opens it); chunked values (see
:func:`.codec.split_large`) are joined back from their chunk rows first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ...exceptions import SerializationError
from ...models import encoding as serialization
from ...models import records as models
from ...models.bookkeeping import loaded
from .codec import CHUNKED

__all__ = ["load_book", "load_flow", "load_atom", "join_chunks"]

_ATOM_CLASSES = {name: models.atom_detail_class(name) for name in ("TASK_DETAIL", "RETRY_DETAIL")}
_loads = serialization.loads


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


#: Short JSON texts that decode to an immutable value (an atom's version, most
#: often the same few), decoded once.  Bounded: cleared when full.
_SCALARS: dict[Any, Any] = {}
_SCALAR_TEXT, _SCALARS_KEPT = 40, 256
_IMMUTABLE = (str, int, float, bool)


def _load_scalar(value: Any, table: str, uuid: Any, column: str) -> Any:
    """:func:`_load_json` of a column that holds a short immutable value most often."""
    if value is None:
        return None
    found = _SCALARS.get(value, _SCALARS) if type(value) is str else _SCALARS
    if found is not _SCALARS:
        return found
    decoded = _load_json(value, table, uuid, column)
    if type(value) is str and len(value) <= _SCALAR_TEXT and type(decoded) in _IMMUTABLE:
        if len(_SCALARS) >= _SCALARS_KEPT:
            _SCALARS.clear()
        _SCALARS[value] = decoded
    return decoded


_holds = serialization.holds_envelope


def _sealed(text: Any) -> bool:
    """Whether the stored ``text`` (a column's) may hold a payload envelope."""
    return text is not None and text != "{}" and _holds(text)


def load_book(row: Sequence[Any], payload: Any = None,
              token: object | None = None) -> models.LogBook:
    """The logbook of a ``logbooks`` row, stamped as read from the store ``token`` names."""
    uuid, name, meta, created_at, updated_at, revision = row
    record = {"uuid": uuid, "name": name,
              "meta": _load_json(meta, "logbooks", uuid, "meta"),
              "created_at": created_at, "updated_at": updated_at, "revision": revision}
    return serialization.load_logbook(record, _where("logbooks", uuid), payload, token=token,
                                      sealed=_sealed(meta))


def load_flow(row: Sequence[Any], payload: Any = None,
              token: object | None = None) -> models.FlowDetail:
    """The flow detail of a ``flowdetails`` row, stamped as read from the store ``token`` names."""
    uuid, name, meta, state, _parent, revision = row
    record = {"uuid": uuid, "name": name, "meta": _load_json(meta, "flowdetails", uuid, "meta"),
              "state": state, "revision": revision}
    return serialization.load_flow(record, _where("flowdetails", uuid), payload, token=token,
                                   sealed=_sealed(meta))


def load_atom(row: Sequence[Any], chunked: dict[str, str] | None = None,
              payload: Any = None, token: object | None = None) -> models.AtomDetail:
    """The atom detail of an ``atomdetails`` row (its chunked values from ``chunked``),
    stamped as read from the store ``token`` names."""
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
    # Inline, as this runs once per atom: most of these columns are NULL.
    sealed = ((results is not None and _holds(results))
              or (failure is not None and _holds(failure))
              or (revert_results is not None and _holds(revert_results))
              or (revert_failure is not None and _holds(revert_failure)) or _sealed(meta))
    results = None if results is None else _load_json(results, t, uuid, "results")
    failure = None if failure is None else _load_json(failure, t, uuid, "failure")
    revert_results = (None if revert_results is None
                      else _load_json(revert_results, t, uuid, "revert_results"))
    revert_failure = (None if revert_failure is None
                      else _load_json(revert_failure, t, uuid, "revert_failure"))
    # An empty meta ("{}", the usual) is left None: every record gets its own empty dict.
    meta = None if meta is None or meta == "{}" else _load_json(meta, t, uuid, "meta")
    version = _load_scalar(version, t, uuid, "version")
    cls = _ATOM_CLASSES.get(atom_type) if type(atom_type) is str else None
    bk = loaded(token, revision, state, {CHUNKED: chunked_fields} if chunked_fields else None)
    if cls is not None and not sealed:
        atom = cls._from_fields(bk, uuid, name, meta, state, intention, results, failure,
                                revert_results, revert_failure, version)
        if atom is not None:
            return atom
    record = {"uuid": uuid, "name": name, "state": state, "intention": intention,
              "results": results, "failure": failure, "revert_results": revert_results,
              "revert_failure": revert_failure, "meta": meta, "version": version}
    if sealed:
        serialization.open_values(record, payload, _where(t, uuid))
    if cls is None:     # raises CorruptRecord, naming the type
        return serialization.load_atom(dict(record, type=atom_type, revision=revision),
                                       _where(t, uuid), sealed=False)
    try:
        return cls.from_stored(record, bk)
    except (TypeError, ValueError, AttributeError) as err:
        raise SerializationError(f"stored data in {_where(t, uuid)} is not a valid record: "
                                 f"{err!r}") from err
